// The day view's change panel: says which slots are chosen, and offers a chosen slot's
// capacity as the starting point. Without JavaScript the form works the same.
(function () {
  "use strict";
  var panel = document.getElementById("change");
  var picked = document.getElementById("picked");
  if (!panel || !picked) return;
  var boxes = Array.prototype.slice.call(document.querySelectorAll('input[name="slot"]'));
  var capacity = panel.querySelector('input[name="capacity"]');
  var suggested = "";
  var empty = picked.textContent;

  function update() {
    var chosen = boxes.filter(function (b) { return b.checked; });
    boxes.forEach(function (b) {
      b.closest("tr").classList.toggle("picked-row", b.checked);
    });
    if (chosen.length === 0) {
      picked.textContent = empty;
    } else {
      var names = chosen.slice(0, 3).map(function (b) { return b.getAttribute("aria-label"); });
      picked.textContent = chosen.length + "枠を選択中：" + names.join("、") +
        (chosen.length > 3 ? " ほか" + (chosen.length - 3) + "枠" : "");
    }
    // The chosen slot's capacity to start from, unless the manager typed their own.
    if (capacity && (capacity.value === "" || capacity.value === suggested)) {
      suggested = chosen.length === 1 ? chosen[0].closest("tr").dataset.capacity : "";
      capacity.value = suggested;
    }
  }
  boxes.forEach(function (b) { b.addEventListener("change", update); });
  update();
})();
