// A kiosk's small map (a screen with show_map): the screen's area, its communities coloured by the
// highest grade of the warnings the screen shows (/screens/{id}.json, read again every 30 s; the
// text beside it comes live from screens.js). No controls: nobody touches a street screen.
(function () {
  "use strict";
  var el = document.getElementById("kiosk-map");
  var screenId = document.body.getAttribute("data-screen");
  if (!el || !screenId || !window.L || !window.WarncastMap) { return; }
  var RANK = { blue: 1, yellow: 2, orange: 3, red: 4 };
  var fills = {}, home = null;
  el.hidden = false;
  var wc = WarncastMap.create(el, {
    style: function (p) {
      var f = fills[p.code];
      return f ? { fillColor: f.colour, fillOpacity: 0.85 } : { fillColor: "#e5e7eb", fillOpacity: 0.5 };
    },
    onReady: function () { refresh(); }
  });
  wc.map.zoomControl.remove();
  ["dragging", "scrollWheelZoom", "doubleClickZoom", "touchZoom", "boxZoom", "keyboard"].forEach(function (h) { wc.map[h].disable(); });

  function refresh() {
    fetch("/screens/" + encodeURIComponent(screenId) + ".json", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (state) {
        if (!state) { return; }
        fills = {};
        state.warnings.forEach(function (w) {
          (w.area_codes || []).forEach(function (code) {
            [code].concat(wc.descendants(code)).forEach(function (c) {
              if (!fills[c] || RANK[w.grade] > RANK[fills[c].grade]) { fills[c] = { grade: w.grade, colour: w.colour }; }
            });
          });
        });
        wc.restyle();
        if (home !== state.screen.area.code) { home = state.screen.area.code; wc.focus(home); }
      }).catch(function () {});
  }
  window.setInterval(refresh, 30000);
})();
