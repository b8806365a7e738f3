// The public map (static/map.js): communities coloured by the highest grade in force there
// (GET /map/warnings.json), zoomable and pannable by touch; a tap lists the area's warnings below the
// map. Without JavaScript the page keeps its SVG map, which this map replaces once it has loaded.
(function () {
  "use strict";
  var el = document.getElementById("public-map");
  var box = document.getElementById("map-warnings");
  if (!el || !box || !window.L || !window.WarncastMap) { return; }
  var inForce = {};
  el.hidden = false; // shown before Leaflet measures it
  var wc = WarncastMap.create(el, {
    style: function (p) {
      var here = inForce[p.code];
      return here ? { fillColor: here.colour, fillOpacity: 0.85 } : { fillColor: "#e5e7eb", fillOpacity: 0.6 };
    },
    onClick: function (code) { show(code); },
    onReady: function () { el.parentNode.classList.add("has-live-map"); }
  });

  function show(code) {
    var here = inForce[code];
    var names = [wc.name(code)].concat(wc.ancestors(code).map(wc.name)).slice(0, 2);
    box.textContent = "";
    var heading = document.createElement("h3");
    heading.textContent = names.join(" \u00b7 ");
    box.appendChild(heading);
    if (!here) {
      var none = document.createElement("p");
      none.textContent = box.getAttribute("data-none");
      box.appendChild(none);
      return;
    }
    var list = document.createElement("ul");
    here.warnings.forEach(function (w) {
      var li = document.createElement("li");
      var badge = document.createElement("span");
      badge.className = "badge grade-" + w.grade;
      badge.textContent = box.getAttribute("data-grade-" + w.grade) || w.grade;
      var link = document.createElement("a");
      link.href = "/warnings/" + encodeURIComponent(w.id);
      link.textContent = w.headline;
      li.appendChild(badge);
      li.appendChild(document.createTextNode(" "));
      li.appendChild(link);
      list.appendChild(li);
    });
    box.appendChild(list);
  }
  function load() {
    fetch("/map/warnings.json", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { areas: {} }; })
      .then(function (body) { inForce = body.areas || {}; wc.restyle(); })
      .catch(function () {});
  }
  load();
  // public.js brought the latest warnings in (the map itself stays, with its zoom): recolour it.
  document.addEventListener("warncast:live", load);
})();
