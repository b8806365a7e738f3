// Live delivery progress on a warning's console page: poll the statistics every two seconds while
// anything is still planned but not finished. Numbers only, set with textContent.
(function () {
  "use strict";
  var box = document.getElementById("delivery");
  if (!box || box.getAttribute("data-state") !== "published") return;
  var url = "/api/v1/warnings/" + encodeURIComponent(box.getAttribute("data-id")) + "/deliveries";
  function refresh() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (!body || !body.planned) { window.setTimeout(refresh, 2000); return; }
        var busy = false;
        Object.keys(body.channels).forEach(function (name) {
          var row = box.querySelector('tr[data-channel="' + name + '"]');
          var data = body.channels[name];
          if (data.pending > 0 || data.retrying > 0) busy = true;
          if (!row) return;
          row.querySelectorAll("td[data-col]").forEach(function (cell) {
            var value = data[cell.getAttribute("data-col")];
            cell.textContent = value === null || value === undefined ? "\u2013" : String(value);
          });
        });
        if (busy) window.setTimeout(refresh, 2000);
      })
      .catch(function () { window.setTimeout(refresh, 5000); });
  }
  refresh();
})();
