// Composing on the map: a click picks an area at the chosen level (a district covers its streets and
// communities; shift-click picks the one community), a search box finds areas by name or code from
// the keyboard, and polygons and circles are drawn, edited and deleted. The list (#areas) stays the
// record and the no-JS path: the map only sets its options and follows its changes. Drawn shapes
// live in the hidden fields `polygons` and `circles` (JSON, the API's shape) and each is checked by
// the server's own validation (POST /api/v1/warnings/preview) before it is kept.
(function () {
  "use strict";
  var form = document.getElementById("compose");
  var el = document.getElementById("compose-map");
  var select = document.getElementById("areas");
  if (!form || !el || !select || !window.L || !window.WarncastMap) { return; }
  var tools = document.getElementById("map-tools");
  var errorBox = document.getElementById("shape-error");
  var shapeList = document.getElementById("shape-list");
  var polygonsField = form.elements["polygons"];
  var circlesField = form.elements["circles"];
  tools.hidden = false;
  el.hidden = false;

  function selected() {
    var out = {};
    Array.prototype.forEach.call(select.options, function (o) { if (o.selected) { out[o.value] = true; } });
    return out;
  }
  function option(code) {
    return Array.prototype.filter.call(select.options, function (o) { return o.value === code; })[0];
  }
  function toggle(code) {
    var o = option(code);
    if (!o) { return; }
    o.selected = !o.selected;
    chosen = selected();
    select.dispatchEvent(new Event("change", { bubbles: true }));
    announce(o.selected ? tools.getAttribute("data-added") : tools.getAttribute("data-removed"), o.text);
  }
  function announce(template, text) {
    document.getElementById("map-status").textContent = template.replace("{area}", text);
  }

  var chosen = selected(); // read once per change, not once per area drawn
  var coverage = {}; // the communities the live preview says the warning reaches
  var wc = WarncastMap.create(el, {
    style: function (p) {
      var edge = coverage[p.code] ? { color: "#b45309", weight: 2 } : { color: "#ffffff", weight: 0.8 };
      if (chosen[p.code]) { return L.extend({ fillColor: "#1d4ed8", fillOpacity: 0.7 }, edge); }
      var covered = wc && wc.ancestors(p.code).some(function (c) { return chosen[c]; });
      var fill = covered ? { fillColor: "#60a5fa", fillOpacity: 0.6 }
        : coverage[p.code] ? { fillColor: "#fde68a", fillOpacity: 0.6 } : { fillColor: "#e5e7eb", fillOpacity: 0.5 };
      return L.extend(fill, edge);
    },
    onClick: function (code, event) {
      if (drawing) { return; } // the map's own click handler adds the point
      var level = event.shiftKey ? "community" : form.querySelector("input[name=pick_level]:checked").value;
      var target = code;
      if (wc.features[code].properties.level !== level) {
        target = wc.ancestors(code).filter(function (c) { return wc.features[c].properties.level === level; })[0] || code;
      }
      toggle(target);
    },
    onReady: function () { drawShapes(); }
  });
  select.addEventListener("change", function () { chosen = selected(); wc.restyle(); });
  form.addEventListener("warncast:preview", function (event) {
    coverage = {};
    ((event.detail && event.detail.coverage) || []).forEach(function (code) { coverage[code] = true; });
    el.setAttribute("data-coverage", String(Object.keys(coverage).length));
    wc.restyle();
  });

  // Search by name or code: a combobox over the list's own options (works before the map loads).
  var search = document.getElementById("area-search");
  var results = document.getElementById("area-results");
  var active = -1;
  function matches(query) {
    query = query.trim().toLowerCase();
    if (!query) { return []; }
    return Array.prototype.filter.call(select.options, function (o) {
      return o.text.toLowerCase().indexOf(query) >= 0;
    }).slice(0, 12);
  }
  function showResults() {
    results.textContent = "";
    active = -1;
    matches(search.value).forEach(function (o, i) {
      var li = document.createElement("li");
      li.id = "area-result-" + i;
      li.setAttribute("role", "option");
      li.setAttribute("data-code", o.value);
      li.setAttribute("aria-selected", "false");
      li.textContent = o.text.trim() + (o.selected ? " \u2713" : "");
      li.addEventListener("mousedown", function (event) { event.preventDefault(); choose(o.value); });
      results.appendChild(li);
    });
    results.hidden = !results.children.length;
    search.setAttribute("aria-expanded", results.hidden ? "false" : "true");
    search.removeAttribute("aria-activedescendant");
  }
  function move(step) {
    var items = results.children;
    if (!items.length) { return; }
    if (active >= 0) { items[active].setAttribute("aria-selected", "false"); }
    active = (active + step + items.length) % items.length;
    items[active].setAttribute("aria-selected", "true");
    search.setAttribute("aria-activedescendant", items[active].id);
  }
  function choose(code) {
    toggle(code);
    wc.focus(code);
    showResults();
  }
  search.addEventListener("input", showResults);
  search.addEventListener("keydown", function (event) {
    if (event.key === "ArrowDown") { move(1); event.preventDefault(); }
    else if (event.key === "ArrowUp") { move(-1); event.preventDefault(); }
    else if (event.key === "Enter") {
      event.preventDefault(); // Enter here picks an area; it must not submit the warning
      var item = results.children[active >= 0 ? active : 0];
      if (item) { choose(item.getAttribute("data-code")); }
    } else if (event.key === "Escape") { results.hidden = true; search.setAttribute("aria-expanded", "false"); }
  });
  search.addEventListener("blur", function () { results.hidden = true; search.setAttribute("aria-expanded", "false"); });

  // Drawn shapes: [lat, lon] rings closed on their first point; circles {lat, lon, radius_km}.
  function parse(field) { try { return JSON.parse(field.value || "[]") || []; } catch (e) { return []; } }
  var polygons = parse(polygonsField), circles = parse(circlesField);
  var shapeLayer = L.layerGroup().addTo(wc.map), editLayer = L.layerGroup().addTo(wc.map);
  var drawing = null; // {kind: "polygon", points: [...]} or {kind: "circle", centre}
  var sketch = L.layerGroup().addTo(wc.map);

  function save() {
    polygonsField.value = polygons.length ? JSON.stringify(polygons) : "";
    circlesField.value = circles.length ? JSON.stringify(circles) : "";
    form.dispatchEvent(new Event("change", { bubbles: true })); // the live preview follows
  }
  function radiusKm(centre, edge) { return Math.round(wc.map.distance(centre, edge)) / 1000; }

  function check(nextPolygons, nextCircles) {
    // The server's own rules, so the map refuses exactly what the API would.
    return fetch("/api/v1/warnings/preview", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": form.elements["csrf_token"].value },
      body: JSON.stringify({ polygons: nextPolygons, circles: nextCircles })
    }).then(function (r) { return r.json(); }).then(function (body) {
      var fields = (body.error && body.error.fields) || [];
      return fields.filter(function (f) { return /^(polygons|circles)/.test(f.field); });
    }).catch(function () { return []; }); // unreachable: the submit is checked again anyway
  }
  function commit(nextPolygons, nextCircles) {
    return check(nextPolygons, nextCircles).then(function (problems) {
      if (problems.length) {
        errorBox.textContent = problems.map(function (p) { return p.message; }).join(" ");
        errorBox.hidden = false;
        drawShapes();
        return false;
      }
      errorBox.hidden = true;
      errorBox.textContent = "";
      polygons = nextPolygons; circles = nextCircles;
      save();
      drawShapes();
      return true;
    });
  }

  function drawShapes() {
    shapeLayer.clearLayers();
    editLayer.clearLayers();
    shapeList.textContent = "";
    polygons.forEach(function (ring, i) {
      shapeLayer.addLayer(L.polygon(ring.slice(0, -1), { color: "#b91c1c", weight: 2, fillOpacity: 0.15, interactive: false }));
      shapeList.appendChild(item(tools.getAttribute("data-polygon").replace("{n}", i + 1).replace("{count}", ring.length - 1), "polygon", i));
    });
    circles.forEach(function (c, i) {
      shapeLayer.addLayer(L.circle([c.lat, c.lon], { radius: c.radius_km * 1000, color: "#b91c1c", weight: 2, fillOpacity: 0.15, interactive: false }));
      shapeList.appendChild(item(tools.getAttribute("data-circle").replace("{n}", i + 1), "circle", i, c));
    });
  }
  function button(text, handler) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "secondary";
    b.textContent = text;
    b.addEventListener("click", handler);
    return b;
  }
  function item(text, kind, index, circle) {
    var li = document.createElement("li");
    li.setAttribute("data-shape", kind);
    li.appendChild(document.createTextNode(text + " "));
    if (circle) {
      var label = document.createElement("label");
      label.textContent = tools.getAttribute("data-radius") + " ";
      var input = document.createElement("input");
      input.type = "number"; input.step = "0.001"; input.min = "0.001"; input.max = "500";
      input.value = String(circle.radius_km);
      input.name = "";
      input.setAttribute("data-radius-of", String(index));
      var typed = function () {
        var next = circles.slice();
        next[index] = { lat: circle.lat, lon: circle.lon, radius_km: Number(input.value) };
        commit(polygons, next);
      };
      input.addEventListener("change", typed);
      input.addEventListener("keydown", function (event) {
        if (event.key === "Enter") { event.preventDefault(); input.blur(); } // blur commits; no submit
      });
      label.appendChild(input);
      li.appendChild(label);
    }
    li.appendChild(button(tools.getAttribute("data-edit"), function () { edit(kind, index); }));
    li.appendChild(button(tools.getAttribute("data-delete"), function () {
      commit(kind === "polygon" ? polygons.filter(function (_, i) { return i !== index; }) : polygons,
             kind === "circle" ? circles.filter(function (_, i) { return i !== index; }) : circles);
    }));
    return li;
  }
  function handle(latlng, onEnd) {
    var marker = L.marker(latlng, { draggable: true, keyboard: true,
      icon: L.divIcon({ className: "wc-map-handle", iconSize: [14, 14] }) });
    marker.on("dragend", function () { onEnd(marker.getLatLng()); });
    editLayer.addLayer(marker);
  }
  function edit(kind, index) {
    editLayer.clearLayers();
    if (kind === "polygon") {
      polygons[index].slice(0, -1).forEach(function (point, j) {
        handle(point, function (moved) {
          var ring = polygons[index].map(function (p) { return p.slice(); });
          ring[j] = [round(moved.lat), round(moved.lng)];
          if (j === 0) { ring[ring.length - 1] = ring[0].slice(); }
          var next = polygons.slice(); next[index] = ring;
          commit(next, circles).then(function () { edit(kind, index); });
        });
      });
    } else {
      var c = circles[index];
      handle([c.lat, c.lon], function (moved) {
        var next = circles.slice();
        next[index] = { lat: round(moved.lat), lon: round(moved.lng), radius_km: c.radius_km };
        commit(polygons, next).then(function () { edit(kind, index); });
      });
    }
  }
  function round(x) { return Math.round(x * 1e6) / 1e6; }

  function setDrawing(next) {
    drawing = next;
    sketch.clearLayers();
    el.classList.toggle("drawing", !!next);
    document.getElementById("draw-finish").hidden = !(next && next.kind === "polygon");
    document.getElementById("draw-cancel").hidden = !next;
    document.getElementById("map-hint").textContent = next ? tools.getAttribute("data-hint-" + next.kind) : "";
  }
  function addPoint(latlng) {
    if (drawing.kind === "polygon") {
      drawing.points.push([round(latlng.lat), round(latlng.lng)]);
      sketch.clearLayers();
      sketch.addLayer(L.polyline(drawing.points, { color: "#b91c1c", dashArray: "4 4", interactive: false }));
      drawing.points.forEach(function (p) { sketch.addLayer(L.circleMarker(p, { radius: 4, color: "#b91c1c", interactive: false })); });
    } else if (!drawing.centre) {
      drawing.centre = latlng;
      sketch.addLayer(L.circleMarker(latlng, { radius: 4, color: "#b91c1c", interactive: false }));
    } else {
      var circle = { lat: round(drawing.centre.lat), lon: round(drawing.centre.lng), radius_km: radiusKm(drawing.centre, latlng) };
      setDrawing(null);
      commit(polygons, circles.concat([circle]));
    }
  }
  function finishPolygon() {
    var points = drawing.points;
    setDrawing(null);
    var ring = points.length ? points.concat([points[0].slice()]) : [];
    commit(polygons.concat([ring]), circles);
  }
  wc.map.on("click", function (event) { if (drawing) { addPoint(event.latlng); } });
  wc.map.on("mousemove", function (event) {
    if (drawing && drawing.kind === "circle" && drawing.centre) {
      sketch.clearLayers();
      sketch.addLayer(L.circle(drawing.centre, { radius: wc.map.distance(drawing.centre, event.latlng), color: "#b91c1c", dashArray: "4 4", interactive: false }));
    }
  });
  document.getElementById("draw-polygon").addEventListener("click", function () { setDrawing({ kind: "polygon", points: [] }); });
  document.getElementById("draw-circle").addEventListener("click", function () { setDrawing({ kind: "circle", centre: null }); });
  document.getElementById("draw-finish").addEventListener("click", finishPolygon);
  document.getElementById("draw-cancel").addEventListener("click", function () { setDrawing(null); });
  drawShapes();
})();
