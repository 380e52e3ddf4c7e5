// Progressive: counts down the kept time; the page works the same without it. The words come
// from the page (data-gone, data-left), in the visitor's language. When the time runs out, the
// whole "kept until" sentence gives way to the lapsed one: the page never says both. The time
// left is read from the clock each tick, so a tab put in the background (where timers slow
// down) is still right when it comes back.
(function () {
  var el = document.querySelector(".countdown"); if (!el) return;
  var seconds = parseInt(el.dataset.seconds, 10);
  var deadline = Date.now() + (seconds > 0 ? seconds : 0) * 1000;
  var sentence = el.closest(".kept") || el.parentNode;
  function show() {
    var left = Math.ceil((deadline - Date.now()) / 1000);
    if (!(left > 0)) {
      sentence.textContent = el.dataset.gone;
      sentence.classList.add("lapsed");
      return;
    }
    var m = Math.floor(left / 60), s = left % 60;
    el.textContent = el.dataset.left.replace("{m}", m).replace("{s}", s < 10 ? "0" + s : s);
    var untilNext = (deadline - Date.now()) % 1000;  // to the next whole second left
    setTimeout(show, untilNext > 0 ? untilNext + 20 : 1000);
  }
  show();
})();
