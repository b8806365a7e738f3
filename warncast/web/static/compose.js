// Live preview of the compose form, one card per language. Text is set with textContent only,
// so whatever is typed is shown, never interpreted.
(function () {
  "use strict";
  var form = document.getElementById("compose");
  if (!form) return;
  function selectedText(id) {
    var el = document.getElementById(id);
    return el && el.selectedIndex >= 0 ? el.options[el.selectedIndex].text : "";
  }
  function update() {
    var grade = form.elements["grade"].value;
    var drill = form.elements["status"].value !== "Actual";
    document.querySelectorAll("[data-preview-lang]").forEach(function (card) {
      var lang = card.getAttribute("data-preview-lang");
      card.className = "warning-card preview-card grade-border-" + grade;
      // Labels in the card's language (data-grades, data-events), not the console's.
      var grades = JSON.parse(card.getAttribute("data-grades") || "{}");
      var events = JSON.parse(card.getAttribute("data-events") || "{}");
      var badge = card.querySelector('[data-out="grade"]');
      badge.textContent = grades[grade] || selectedText("grade");
      badge.className = "badge grade-" + grade;
      card.querySelector('[data-out="event"]').textContent = events[form.elements["event"].value] || selectedText("event");
      card.querySelector(".drill").hidden = !drill;
      var total = 0;
      ["headline", "description", "instruction"].forEach(function (part) {
        var input = form.elements[lang + "." + part];
        var value = input ? input.value : "";
        total += value.length;
        var out = card.querySelector('[data-out="' + part + '"]');
        out.textContent = value || out.getAttribute("data-empty") || "";
      });
      var chars = card.querySelector('[data-out="chars"]');
      chars.textContent = chars.getAttribute("data-label").replace("{count}", total);
    });
  }
  form.addEventListener("input", update);
  form.addEventListener("change", update);
  update();
})();

// Every channel's exact text, SMS segments and reach, rendered by the server from the unsaved
// form (POST /api/v1/warnings/preview), a moment after typing stops.
(function () {
  "use strict";
  var form = document.getElementById("compose");
  var box = document.getElementById("channel-preview");
  var hint = document.getElementById("channel-preview-hint");
  if (!form || !box) return;
  var timer = null;
  function body() {
    var data = { areas: [], info: {} };
    ["grade", "event", "status", "urgency", "certainty", "effective", "onset", "expires"].forEach(function (name) {
      var el = form.elements[name];
      if (el && el.value) data[name] = el.value;
    });
    var areas = form.elements["areas"];
    if (areas) Array.prototype.forEach.call(areas.selectedOptions, function (o) { data.areas.push(o.value); });
    ["polygons", "circles"].forEach(function (name) { // CAP text, one shape per line (typed or drawn)
      var el = form.elements[name];
      var lines = el ? el.value.split(/\r?\n/).map(function (l) { return l.trim(); }).filter(Boolean) : [];
      if (lines.length) data[name] = lines;
    });
    document.querySelectorAll("fieldset.lang").forEach(function (fs) {
      var lang = fs.getAttribute("data-lang");
      data.info[lang] = {};
      ["headline", "description", "instruction"].forEach(function (part) {
        data.info[lang][part] = form.elements[lang + "." + part].value;
      });
    });
    return data;
  }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function show(result) {
    var target = box.querySelector(".channel-preview-body");
    target.textContent = "";
    Object.keys(result.channels).forEach(function (name) {
      var ch = result.channels[name];
      var title = (name === "sms" ? "SMS" : "Telegram") + " \u00b7 " + box.getAttribute("data-reach").replace("{count}", ch.reach);
      if (ch.policy === "off") title += " \u00b7 " + box.getAttribute("data-off");
      target.appendChild(el("h3", "", title));
      Object.keys(ch.texts).forEach(function (tag) {
        var r = ch.texts[tag];
        var label = tag;
        if (r.segments) label += " \u00b7 " + box.getAttribute("data-segments").replace("{count}", r.segments).replace("{encoding}", r.encoding);
        target.appendChild(el("p", "lang-label", label));
        var pre = el("pre", "message-text", r.text);
        pre.setAttribute("data-channel", name);
        pre.setAttribute("data-lang", tag);
        target.appendChild(pre);
      });
    });
    showImpact(target, result.impact);
    box.hidden = false;
    hint.hidden = true;
  }
  // Residents, screens and partners reached, and communities alerted whole though only partly inside
  // a drawn shape (over-alerting), from the area registry's populations.
  function showImpact(target, impact) {
    if (!impact) return;
    function say(name, values) {
      var text = box.getAttribute("data-" + name);
      Object.keys(values).forEach(function (k) { text = text.replace("{" + k + "}", values[k]); });
      return text;
    }
    var count = function (n) { return Number(n).toLocaleString(document.documentElement.lang || undefined); };
    var section = el("section", "impact");
    section.appendChild(el("h3", "", box.getAttribute("data-impact")));
    var list = el("ul", "impact-figures");
    list.appendChild(el("li", "", say("residents", { count: count(impact.residents) })));
    if (impact.residents_inside !== impact.residents) {
      list.appendChild(el("li", "", say("inside", { count: count(impact.residents_inside) })));
    }
    list.appendChild(el("li", "", say("screens", { count: count(impact.screens || 0) })));
    list.appendChild(el("li", "", say("partners", { count: count(impact.partners || 0) })));
    section.appendChild(list);
    var partly = impact.communities.filter(function (c) { return c.covered < 1; });
    if (partly.length) {
      var over = el("ul", "impact-partly");
      partly.forEach(function (c) {
        var option = form.querySelector('select[name="areas"] option[value="' + c.code + '"]');
        var name = option ? option.textContent.trim() : c.code;
        over.appendChild(el("li", "", say("partly", { name: name, share: Math.round(c.covered * 100) + "%" })));
      });
      section.appendChild(over);
    }
    target.appendChild(section);
  }
  // Only a form with what a preview needs is sent: an empty one would only be refused (422).
  function ready(data) {
    var headline = Object.keys(data.info).some(function (lang) { return data.info[lang].headline.trim(); });
    var where = data.areas.length > 0 || !!data.polygons || !!data.circles;
    return where && !!data.expires && headline;
  }
  function refresh() {
    var data = body();
    if (!ready(data)) { box.hidden = true; hint.hidden = false; return; }
    fetch("/api/v1/warnings/preview", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": form.elements["csrf_token"].value },
      body: JSON.stringify(data)
    }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (result) {
        if (result) { show(result); } else { box.hidden = true; hint.hidden = false; }
        // The map shows the warning's coverage from the same answer (compose-map.js).
        form.dispatchEvent(new CustomEvent("warncast:preview", { detail: result }));
      }).catch(function () {});
  }
  function later() { window.clearTimeout(timer); timer = window.setTimeout(refresh, 500); }
  form.addEventListener("input", later);
  form.addEventListener("change", later);
  refresh();
})();
