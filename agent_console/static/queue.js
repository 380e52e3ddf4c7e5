// The queue updates itself (server-sent events); a signed-out session goes to the login page.
(function () {
  if (!window.EventSource) return;
  var source = new EventSource("/console/queue/stream");
  source.addEventListener("queue", function (e) { document.getElementById("queue").innerHTML = e.data; });
  source.addEventListener("signed-out", function (e) { source.close(); window.location = e.data; });
  source.addEventListener("pop", function (e) { source.close(); window.location = e.data; });
})();
