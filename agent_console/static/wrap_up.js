// The wrap-up's countdown on the call screen: the page says the deadline and the time left
// when it was drawn; this counts the time left down (from the server's figure, so a desk
// computer's clock being off does not matter).
(function () {
  var box = document.getElementById("wrap-countdown");
  if (!box) return;
  var left = parseInt(box.getAttribute("data-left"), 10);
  var shown = box.querySelector(".wrap-left");
  var started = Date.now();
  function tick() {
    var now = Math.max(0, left - Math.floor((Date.now() - started) / 1000));
    var seconds = now % 60;
    shown.textContent = Math.floor(now / 60) + "分" + (seconds < 10 ? "0" : "") + seconds + "秒";
    if (now > 0) window.setTimeout(tick, 1000);
    else shown.textContent = "0分00秒（時間切れ）";
  }
  tick();
})();
