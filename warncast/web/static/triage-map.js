// The triage map (static/map.js): the board's incidents as points coloured by priority, clustered
// when zoomed out (Leaflet.markercluster). It asks for the board's own filters
// (/console/triage?fragment=points&<the board's query>) and again whenever the live board reloads
// its list; a click on a point opens that incident on the board, a click on an area filters by it.
(function () {
  "use strict";
  var el = document.getElementById("triage-map");
  var list = document.getElementById("incident-list");
  if (!el || !list || !window.L || !L.markerClusterGroup || !window.WarncastMap) { return; }
  el.hidden = false;
  var wc = WarncastMap.create(el, {
    style: function () { return { fillColor: "#e5e7eb", fillOpacity: 0.5 }; },
    // As on the SVG it replaces: a click on an area filters the board by it.
    onClick: function (code) { location.href = "/console/triage?area=" + encodeURIComponent(code); },
    onReady: function () { el.parentNode.classList.add("has-live-map"); }
  });
  var cluster = L.markerClusterGroup({ maxClusterRadius: 40 }).addTo(wc.map);

  function open(id) {
    var card = document.getElementById("incident-" + id);
    location.hash = "incident-" + id;
    if (card) { card.setAttribute("tabindex", "-1"); card.focus(); }
  }
  function draw(points) {
    cluster.clearLayers();
    points.forEach(function (p) {
      var marker = L.marker([p.lat, p.lon], {
        title: document.getElementById("triage-map-strings").getAttribute("data-point").replace("{priority}", p.priority).replace("{id}", p.id),
        icon: L.divIcon({ className: "triage-dot prio-" + p.priority, iconSize: [16, 16] })
      });
      marker.on("click", function () { open(p.id); });
      marker.on("add", function () { marker.getElement().setAttribute("data-incident", p.id); });
      cluster.addLayer(marker);
    });
  }
  function reload() {
    var query = list.getAttribute("data-query");
    fetch("/console/triage?fragment=points" + (query ? "&" + query : ""), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) { if (body) { draw(body.incidents); } })
      .catch(function () {});
  }
  new MutationObserver(reload).observe(list, { childList: true });
  reload();
})();
