// Progressive: counts down the kept time; the page works the same without it. The words come
// from the page (data-gone, data-left), in the visitor's language.
(function () {
  var el = document.querySelector(".countdown"); if (!el) return;
  var left = parseInt(el.dataset.seconds, 10);
  function show() {
    if (left <= 0) { el.textContent = el.dataset.gone; return; }
    var m = Math.floor(left / 60), s = left % 60;
    el.textContent = el.dataset.left.replace("{m}", m).replace("{s}", s < 10 ? "0" + s : s);
    left -= 1; setTimeout(show, 1000);
  }
  show();
})();
