// The Print link prints the confirmation (without script it reloads the page, harmlessly).
(function () {
  var link = document.querySelector(".print-page"); if (!link) return;
  link.addEventListener("click", function (e) { e.preventDefault(); window.print(); });
})();
