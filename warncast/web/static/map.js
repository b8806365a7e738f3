// One map for the console and the public pages, on Leaflet served by this server. The base layer is
// the registry's own area polygons (GET /api/v1/areas.geojson?zoom=N, thinned for the zoom shown and
// fetched again, finer, as one zooms in); raster tiles only when the deployment set a tile URL
// (data-tiles), so by default no request leaves this origin. Names are set as text, never as HTML.
// A page makes one with WarncastMap.create(element, {style, onClick, ...}).
(function () {
  "use strict";
  var LABEL_LEVEL = [[14, "community"], [12, "street"], [0, "district"]]; // from which zoom a level is named
  var MAX_LABELS = 120;
  var FINEST = 14; // ~10 m a pixel: finer rings than this add bytes, not legibility

  function create(el, options) {
    options = options || {};
    var tiles = el.getAttribute("data-tiles") || "";
    var map = L.map(el, { attributionControl: !!tiles, zoomSnap: 0.5, zoomDelta: 0.5, minZoom: 3, maxZoom: 18 });
    if (tiles) {
      // Leaflet writes attributions as HTML: the configured credit is escaped to stay text.
      var credit = document.createElement("span");
      credit.textContent = el.getAttribute("data-tiles-attribution") || "";
      L.tileLayer(tiles, { attribution: credit.innerHTML }).addTo(map);
      map.attributionControl.setPrefix(false); // Leaflet's prefix carries inline-styled SVG the CSP refuses
    }
    var renderer = L.canvas({ padding: 0.3 });
    var api = {
      map: map, element: el, features: {}, children: {}, leaves: null, outlines: null,
      labels: L.layerGroup().addTo(map), loadedZoom: null, ready: null,
      restyle: restyle, feature: function (code) { return api.features[code]; },
      ancestors: ancestors, descendants: descendants, focus: focus, name: name
    };

    function name(code) {
      var f = api.features[code];
      return f ? f.properties.name : code;
    }
    function ancestors(code) {
      var out = [], f = api.features[code];
      while (f && f.properties.parent) { out.push(f.properties.parent); f = api.features[f.properties.parent]; }
      return out;
    }
    function descendants(code) {
      var out = [], queue = (api.children[code] || []).slice();
      while (queue.length) { var c = queue.shift(); out.push(c); queue = queue.concat(api.children[c] || []); }
      return out;
    }
    function leafStyle(feature) {
      var style = { renderer: renderer, weight: 0.8, color: "#ffffff", fillColor: "#e5e7eb", fillOpacity: 0.75 };
      if (options.style) { L.extend(style, options.style(feature.properties) || {}); }
      return style;
    }
    function outlineStyle(feature) {
      var district = feature.properties.level === "district";
      return { renderer: renderer, fill: false, interactive: false, color: district ? "#374151" : "#6b7280",
               weight: district ? 2.2 : 1, opacity: district ? 1 : 0.7 };
    }
    function restyle() {
      if (api.leaves) { api.leaves.setStyle(leafStyle); }
    }
    function focus(code) {
      var f = api.features[code];
      if (f) { map.fitBounds(L.geoJSON(f).getBounds(), { maxZoom: 15, padding: [20, 20] }); }
    }

    function draw(collection) {
      api.features = {};
      api.children = {};
      collection.features.forEach(function (f) {
        api.features[f.properties.code] = f;
        if (f.properties.parent) { (api.children[f.properties.parent] = api.children[f.properties.parent] || []).push(f.properties.code); }
      });
      var leafFeatures = collection.features.filter(function (f) { return !api.children[f.properties.code]; });
      var outlineFeatures = collection.features.filter(function (f) {
        return api.children[f.properties.code] && f.properties.level !== "city";
      });
      if (api.leaves) { map.removeLayer(api.leaves); map.removeLayer(api.outlines); }
      api.leaves = L.geoJSON(leafFeatures, { renderer: renderer, style: leafStyle, onEachFeature: function (feature, layer) {
        layer.on("click", function (event) {
          if (options.onClick) { options.onClick(feature.properties.code, event.originalEvent || {}, event); }
        });
      } }).addTo(map);
      api.outlines = L.geoJSON(outlineFeatures, { renderer: renderer, style: outlineStyle }).addTo(map);
      label();
    }

    function label() {
      api.labels.clearLayers();
      var zoom = map.getZoom(), bounds = map.getBounds(), level = "district", shown = 0;
      for (var i = 0; i < LABEL_LEVEL.length; i++) { if (zoom >= LABEL_LEVEL[i][0]) { level = LABEL_LEVEL[i][1]; break; } }
      Object.keys(api.features).forEach(function (code) {
        var p = api.features[code].properties;
        if (p.level !== level || shown >= MAX_LABELS || !bounds.contains(p.label)) { return; }
        var text = document.createElement("span");
        text.textContent = p.name;
        api.labels.addLayer(L.marker(p.label, { interactive: false, keyboard: false,
          icon: L.divIcon({ className: "wc-map-label wc-map-label-" + level, html: text, iconSize: null }) }));
        shown += 1;
      });
    }

    function load(zoom) {
      var url = el.getAttribute("data-geojson") + "?zoom=" + Math.max(0, Math.round(zoom));
      return fetch(url, { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
        .then(function (collection) { api.loadedZoom = Math.round(zoom); draw(collection); return api; });
    }

    var startZoom = Number(el.getAttribute("data-zoom") || 10);
    map.setView([0, 0], startZoom); // replaced by the areas' bounds as soon as they arrive
    api.ready = load(startZoom).then(function () {
      if (api.leaves.getLayers().length) { map.fitBounds(api.leaves.getBounds(), { padding: [8, 8] }); }
      map.on("zoomend", function () {
        var wanted = Math.min(FINEST, Math.round(map.getZoom()));
        if (wanted > api.loadedZoom || wanted < api.loadedZoom - 2) { load(wanted).then(restyle); }
      });
      map.on("moveend", label);
      el.setAttribute("data-ready", String(Math.round(performance.now())));
      if (options.onReady) { options.onReady(api); }
      return api;
    }).catch(function () {
      el.setAttribute("data-ready", "failed");
      var note = el.parentNode.querySelector("[data-map-failed]");
      if (note) { note.hidden = false; }
    });
    (window.warncastMaps = window.warncastMaps || {})[el.id] = api;
    return api;
  }

  window.WarncastMap = { create: create };
})();
