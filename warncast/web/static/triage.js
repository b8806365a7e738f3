// Live triage board: on each server-sent `board` event, reload the incident list in place, keeping
// the rows the officer opened and the control they were on; count down every deadline.
(function () {
  "use strict";
  var list = document.getElementById("incident-list");
  if (!list) { return; }
  function countdown() {
    var now = Date.now();
    list.querySelectorAll("[data-deadline]").forEach(function (cell) {
      var left = Math.round((Date.parse(cell.getAttribute("data-deadline")) - now) / 60000);
      var label = left >= 0 ? cell.getAttribute("data-left") : cell.getAttribute("data-over");
      cell.textContent = label.replace("{min}", String(Math.abs(left)));
      cell.classList.toggle("overdue", left < 0);
    });
  }
  countdown();
  setInterval(countdown, 30000);
  if (!window.EventSource) { return; }
  var pending = null;
  function reload() {
    pending = null;
    var query = list.getAttribute("data-query");
    var open = Array.prototype.map.call(list.querySelectorAll("details[open]"), function (d) { return d.getAttribute("data-incident"); });
    var focused = document.activeElement && list.contains(document.activeElement) ? document.activeElement : null;
    var focusRow = focused && focused.closest("[data-incident]") ? focused.closest("[data-incident]").getAttribute("data-incident") : null;
    var focusAction = focused ? (focused.getAttribute("data-action") || focused.tagName) : null;
    fetch("/console/triage?fragment=list" + (query ? "&" + query : ""), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        list.innerHTML = html;
        open.forEach(function (id) {
          var d = list.querySelector('details[data-incident="' + id + '"]');
          if (d) { d.open = true; }
        });
        if (focusRow) {
          var row = list.querySelector('article[data-incident="' + focusRow + '"]');
          var target = row && (row.querySelector('[data-action="' + focusAction + '"]') || row.querySelector(focusAction === "SUMMARY" ? "summary" : "button, summary"));
          if (target) { target.focus(); }
        }
        countdown();
      });
  }
  var source = new EventSource("/console/triage/events");
  source.addEventListener("board", function () {
    if (!pending) { pending = setTimeout(reload, 300); }
  });
})();
