// Live triage board: on each server-sent `board` event, reload the incident list in place.
(function () {
  "use strict";
  var list = document.getElementById("incident-list");
  if (!list || !window.EventSource) { return; }
  var pending = null;
  function reload() {
    pending = null;
    var query = list.getAttribute("data-query");
    fetch("/console/triage?fragment=list" + (query ? "&" + query : ""), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { list.innerHTML = html; } });
  }
  var source = new EventSource("/console/triage/events");
  source.addEventListener("board", function () {
    if (!pending) { pending = setTimeout(reload, 300); }
  });
})();
