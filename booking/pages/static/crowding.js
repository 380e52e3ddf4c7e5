// Progressive: the crowding pages and the call screen work without it (they reload themselves
// every minute). With it, the figures come from the JSON every few seconds and change in place.
// Only numbers and the ward's own words from the JSON are written, always as text.
(function () {
  var root = document.querySelector("[data-poll]"); if (!root || !window.fetch) return;
  var url = root.dataset.poll;
  var every = Math.max(parseInt(root.dataset.seconds, 10) || 15, 2) * 1000;
  // The page's language code (the JSON's keys: "easy" is one) and its BCP 47 tag for the clock
  // ("zh-Hans"; やさしい日本語 writes times as Japanese does).
  var language = root.dataset.language || document.documentElement.lang || "ja";
  var clock = new Intl.DateTimeFormat(document.documentElement.lang || "ja", { hour: "numeric",
    minute: "2-digit", timeZone: "Asia/Tokyo" });
  function field(scope, name) { return scope.querySelector('[data-field="' + name + '"]'); }
  function put(scope, name, text) { var el = field(scope, name); if (el) el.textContent = text; }
  function venue(scope, v) {
    put(scope, "waiting", String(v.waiting));
    put(scope, "estimated_wait_minutes", String(v.estimated_wait_minutes));
    put(scope, "remaining_walk_in_seats", String(v.remaining_walk_in_seats));
    var band = field(scope, "band");
    if (band) band.className = "band band-" + v.band;
    if (v.band_label && v.band_label[language]) put(scope, "band_label", v.band_label[language]);
    var calling = field(scope, "now_calling");
    if (!calling) return;
    if (calling.tagName === "OL") {  // the call screen: the latest first, largest
      var numbers = v.now_calling;
      var items = numbers.map(function (n, i) {
        var li = document.createElement("li"); li.textContent = String(n);
        if (i === 0) li.className = "latest";
        return li;
      });
      if (calling.textContent !== numbers.join("")) calling.replaceChildren.apply(calling, items);
      var none = field(scope, "none"); if (none) none.hidden = numbers.length > 0;
    } else {
      calling.textContent = v.now_calling.length ? v.now_calling.join(", ") : "\u2014";
    }
  }
  function stamp(when) {
    var el = field(document, "updated_at"); if (!el || !when) return;
    el.setAttribute("datetime", when); el.textContent = clock.format(new Date(when));
  }
  function apply(data) {
    var list = data.venues || [data];
    list.forEach(function (v) {
      var scope = root.dataset.signage ? root : root.querySelector('[data-venue="' + v.venue_id + '"]');
      if (scope) venue(scope, v);
    });
    stamp(data.updated_at);
  }
  function poll() {
    fetch(url, { headers: { accept: "application/json" }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) apply(data); })
      .catch(function () {})
      .then(function () { setTimeout(poll, every); });
  }
  setTimeout(poll, every);
})();
