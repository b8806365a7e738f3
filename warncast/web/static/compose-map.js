// Composing on the map: a click picks an area at the chosen level (a district covers its streets and
// communities; shift-click picks the one community), a search box finds areas by name or code from
// the keyboard, and polygons and circles are drawn, edited and deleted. The list (#areas) stays the
// record and the no-JS path: the map only sets its options and follows its changes. Shapes live in
// the coordinates fields `polygons` and `circles` (CAP text, one per line), typed or drawn, and each
// is checked by the server's own validation (POST /api/v1/warnings/preview) before it is drawn.
(function () {
  "use strict";
  var form = document.getElementById("compose");
  var el = document.getElementById("compose-map");
  var select = document.getElementById("areas");
  if (!form || !el || !select || !window.L || !window.WarncastMap) { return; }
  var tools = document.getElementById("map-tools");
  var errorBox = document.getElementById("shape-error");
  var shapeList = document.getElementById("shape-list");
  var polygonsField = document.getElementById("polygons-text");
  var circlesField = document.getElementById("circles-text");
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

  // Shapes live in the two coordinates fields, in CAP's own text, one per line (the record on
  // submit, typed or drawn); the map draws every line the server accepts. polygons[i] and circles[i]
  // are line i's shape ([lat, lon] ring closed on its first point; {lat, lon, radius_km}), or null.
  var fields = { polygons: polygonsField, circles: circlesField };
  var polygons = [], circles = [];
  var shapeLayer = L.layerGroup().addTo(wc.map), editLayer = L.layerGroup().addTo(wc.map);
  var drawing = null; // {kind: "polygon", points: [...]} or {kind: "circle", centre}
  var sketch = L.layerGroup().addTo(wc.map);

  function lines(field) {
    return field.value.split(/\r?\n/).map(function (l) { return l.trim(); }).filter(Boolean);
  }
  // Reads a line the server accepted, tidied as publisher/cap_shapes.py does (full-width commas, ", ").
  function tidy(line) { return line.replace(/\uff0c/g, ",").replace(/\u3000/g, " ").replace(/\s*,\s*/g, ",").trim(); }
  function finite(numbers) { return numbers.every(function (x) { return isFinite(x); }) ? numbers : null; }
  function readPolygon(line) {
    var ring = tidy(line).split(/\s+/).map(function (pair) { return finite(pair.split(",").map(Number)); });
    return ring.every(Boolean) ? ring : null;
  }
  function readCircle(line) {
    var parts = tidy(line).replace(/\s*km\s*$/i, "").split(/\s+/);
    var n = finite(parts[0].split(",").concat([parts[1]]).map(Number));
    return n && n.length === 3 ? { lat: n[0], lon: n[1], radius_km: n[2] } : null;
  }
  function polygonText(ring) { return ring.map(function (p) { return p[0] + "," + p[1]; }).join(" "); }
  function circleText(c) { return c.lat + "," + c.lon + " " + c.radius_km; }
  function radiusKm(centre, edge) { return Math.round(wc.map.distance(centre, edge)) / 1000; }

  function check(nextPolygons, nextCircles) {
    // The server's own rules on the lines themselves, so the map refuses exactly what the API would.
    return fetch("/api/v1/warnings/preview", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": form.elements["csrf_token"].value },
      body: JSON.stringify({ polygons: nextPolygons, circles: nextCircles })
    }).then(function (r) { return r.json(); }).then(function (body) {
      var problems = (body.error && body.error.fields) || [];
      return problems.filter(function (f) { return /^(polygons|circles)/.test(f.field); });
    }).catch(function () { return []; }); // unreachable: the submit is checked again anyway
  }
  // Which field, line and point a problem is about: "polygons[2][1]" -> ["polygons", 2, 1].
  function where(field) {
    var m = /^(polygons|circles)\[(\d+)\](?:\[(\d+)\])?/.exec(field);
    return m ? [m[1], Number(m[2]), m[3] === undefined ? null : Number(m[3])] : [field.split(".")[0], null, null];
  }
  // The problems under each field, naming the line as the drafter sees it (blank lines counted),
  // in the words console.py's shape_errors uses without JavaScript.
  function showProblems(problems) {
    Object.keys(fields).forEach(function (name) {
      var field = fields[name], box = document.getElementById(name + "-error");
      var typed = [];
      field.value.split(/\r?\n/).forEach(function (l, n) { if (l.trim()) { typed.push(n + 1); } });
      box.textContent = "";
      problems.forEach(function (p) {
        var w = where(p.field);
        if (w[0] !== name) { return; }
        var text = p.message;
        if (w[1] !== null) {
          var template = w[2] === null ? tools.getAttribute("data-line") : tools.getAttribute("data-line-point");
          text = template.replace("{line}", w[1] < typed.length ? typed[w[1]] : w[1] + 1)
            .replace("{point}", w[2] + 1).replace("{reason}", p.message);
        }
        var span = document.createElement("span");
        span.textContent = text;
        box.appendChild(span);
      });
      if (box.children.length) { field.setAttribute("aria-invalid", "true"); } else { field.removeAttribute("aria-invalid"); }
    });
    if (problems.length) { document.getElementById("shape-text").open = true; } // a refused line is never out of sight
  }
  function apply(problems) {
    var bad = {};
    problems.forEach(function (p) { var w = where(p.field); bad[w[0] + (w[1] === null ? "" : w[1])] = true; });
    polygons = lines(polygonsField).map(function (l, i) { return bad.polygons || bad["polygons" + i] ? null : readPolygon(l); });
    circles = lines(circlesField).map(function (l, i) { return bad.circles || bad["circles" + i] ? null : readCircle(l); });
    showProblems(problems);
    drawShapes();
  }
  // Typed: the field is checked when the drafter leaves it, and what the server accepts is drawn.
  function sync() { return check(lines(polygonsField), lines(circlesField)).then(apply); }
  polygonsField.addEventListener("change", sync);
  circlesField.addEventListener("change", sync);

  // Drawn, moved or deleted on the map: the field's lines become `next`, unless the server refuses
  // the shape at line `index` (null: a deletion, never refused).
  function propose(name, next, index) {
    var p = name === "polygons" ? next : lines(polygonsField), c = name === "circles" ? next : lines(circlesField);
    return check(p, c).then(function (problems) {
      var own = problems.filter(function (x) { var w = where(x.field); return w[0] === name && (w[1] === index || w[1] === null); });
      if (index !== null && own.length) {
        errorBox.textContent = own.map(function (x) { return x.message; }).join(" ");
        errorBox.hidden = false;
        drawShapes();
        return false;
      }
      errorBox.hidden = true;
      errorBox.textContent = "";
      fields[name].value = next.join("\n");
      apply(problems);
      form.dispatchEvent(new Event("change", { bubbles: true })); // the live preview follows
      return true;
    });
  }
  function replaced(name, index, text) {
    var next = lines(fields[name]);
    next[index] = text;
    return next;
  }

  function drawShapes() {
    shapeLayer.clearLayers();
    editLayer.clearLayers();
    shapeList.textContent = "";
    polygons.forEach(function (ring, i) {
      if (!ring) { return; }
      shapeLayer.addLayer(L.polygon(ring.slice(0, -1), { color: "#b91c1c", weight: 2, fillOpacity: 0.15, interactive: false }));
      shapeList.appendChild(item(tools.getAttribute("data-polygon").replace("{n}", i + 1).replace("{count}", ring.length - 1), "polygon", i));
    });
    circles.forEach(function (c, i) {
      if (!c) { return; }
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
        propose("circles", replaced("circles", index, circleText({ lat: circle.lat, lon: circle.lon, radius_km: input.value })), index);
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
      var name = kind + "s";
      propose(name, lines(fields[name]).filter(function (_, i) { return i !== index; }), null);
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
          propose("polygons", replaced("polygons", index, polygonText(ring)), index).then(function () { edit(kind, index); });
        });
      });
    } else {
      var c = circles[index];
      handle([c.lat, c.lon], function (moved) {
        var centre = { lat: round(moved.lat), lon: round(moved.lng), radius_km: c.radius_km };
        propose("circles", replaced("circles", index, circleText(centre)), index).then(function () { edit(kind, index); });
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
      var drawn = lines(circlesField);
      propose("circles", drawn.concat([circleText(circle)]), drawn.length);
    }
  }
  function finishPolygon() {
    var points = drawing.points;
    setDrawing(null);
    var ring = points.length ? points.concat([points[0].slice()]) : [];
    var drawn = lines(polygonsField);
    propose("polygons", drawn.concat([polygonText(ring)]), drawn.length);
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
  if (lines(polygonsField).length || lines(circlesField).length) { sync(); } else { drawShapes(); }
})();
