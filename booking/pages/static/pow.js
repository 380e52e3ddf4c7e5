// The proof of work of the "one moment" page (booking/proof_of_work.py): find the number whose
// SHA-256 with the salt is the challenge, put the altcha payload in the form and send it. Pages
// work without this script: the resident waits a few seconds and presses Continue instead.
(function () {
  "use strict";
  var form = document.getElementById("pow-form");
  if (!form || !window.crypto || !window.crypto.subtle || !window.TextEncoder) { return; }
  var c = JSON.parse(form.getAttribute("data-challenge"));
  var encoder = new TextEncoder();
  function hex(buffer) {
    return Array.prototype.map.call(new Uint8Array(buffer), function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }
  function send(n) {
    form.elements.altcha.value = btoa(JSON.stringify({
      algorithm: c.algorithm, challenge: c.challenge, number: n, salt: c.salt,
      signature: c.signature
    }));
    form.submit();
  }
  // A batch of digests at a time: the browser hashes them in parallel.
  function attempt(start) {
    if (start > c.maxNumber) { return; }
    var batch = [];
    for (var n = start; n < start + 500 && n <= c.maxNumber; n += 1) {
      batch.push(window.crypto.subtle.digest("SHA-256", encoder.encode(c.salt + n)));
    }
    Promise.all(batch).then(function (digests) {
      for (var i = 0; i < digests.length; i += 1) {
        if (hex(digests[i]) === c.challenge) { send(start + i); return; }
      }
      attempt(start + batch.length);
    });
  }
  attempt(0);
})();
