// Kiosk screen: draws /screens/{id}.json, follows /screens/{id}/events (server-sent events), and
// falls back to polling the JSON when the stream cannot be held. Rotates through the warnings and
// the screen's languages; drops a warning by itself once it expires. Text goes in via textContent
// only, so nothing a drafter typed is ever interpreted as markup. When the server cannot reach its
// data it sends its last state with "stale": true; the screen keeps the last known warnings and
// says so (labels.lost), as it does when it cannot reach the server at all (labels.stale).
(function () {
  "use strict";
  var body = document.body;
  var id = body.getAttribute("data-screen");
  var el = function (name) { return document.getElementById(name); };
  var state = null;
  var slot = 0; // counts rotation steps: language changes fastest, then the warning
  var source = null;
  var pollTimer = null;
  var retryTimer = null;
  var unreachable = false; // this screen cannot reach the server
  var POLL_MS = 15000;
  var RETRY_STREAM_MS = 60000;

  function inForce() {
    var now = Date.now();
    return state ? state.warnings.filter(function (w) { return Date.parse(w.expires) > now; }) : [];
  }

  function languages() {
    return state && state.screen.languages.length ? state.screen.languages : ["zh-CN"];
  }

  function set(name, text) {
    var node = el(name);
    node.textContent = text || "";
    node.hidden = !text;
  }

  function draw() {
    var langs = languages();
    var lang = langs[slot % langs.length];
    var warnings = inForce();
    document.documentElement.lang = lang;
    body.setAttribute("data-warning-count", String(warnings.length));
    var labels = (state && state.labels[lang]) || {};
    if (!warnings.length) {
      body.className = body.className.replace(/grade-\w+/, "grade-none");
      body.removeAttribute("data-warning");
      ["grade", "headline", "instruction", "areas", "until", "issuer", "drill", "pager"].forEach(function (n) { set(n, ""); });
      set("none", labels.none || el("none").textContent);
      return;
    }
    var warning = warnings[Math.floor(slot / langs.length) % warnings.length];
    var texts = warning.texts[lang] || warning.texts[Object.keys(warning.texts)[0]];
    body.className = body.className.replace(/grade-\w+/, "grade-" + warning.grade);
    body.setAttribute("data-warning", warning.id);
    set("none", "");
    set("drill", texts.drill);
    set("grade", texts.grade + " · " + texts.event);
    set("headline", texts.headline);
    set("instruction", texts.instruction ? (labels.todo || "") + ": " + texts.instruction : "");
    set("areas", (labels.areas || "") + ": " + texts.areas);
    set("until", texts.until);
    set("issuer", texts.issuer || "");  // the issuing unit, once units are configured
    set("pager", warnings.length > 1 ? (warnings.indexOf(warning) + 1) + " / " + warnings.length : "");
  }

  function clock() {
    var lang = languages()[slot % languages().length];
    // The city's time (a kiosk's own zone is often UTC), on the 24-hour clock in every language.
    var zone = (state && state.screen.time_zone) || body.getAttribute("data-time-zone") || undefined;
    var options = { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZone: zone };
    var node = el("clock");
    node.textContent = new Date().toLocaleTimeString(lang, options);
    node.setAttribute("data-time-zone", zone || "");
  }

  function apply(next) {
    var changed = !state || JSON.stringify(state.warnings) !== JSON.stringify(next.warnings);
    state = next;
    if (changed) { slot = 0; }
    draw();
    status();
  }

  function status() {
    var labels = (state && state.labels[languages()[0]]) || {};
    var text = "";
    if (unreachable) {
      text = labels.stale || "…";
    } else if (state && state.stale) {
      text = labels.lost || labels.stale || "…";
    }
    if (text) { body.setAttribute("data-stale", "1"); } else { body.removeAttribute("data-stale"); }
    set("status", text);
  }

  function stale(on) {
    unreachable = on;
    status();
  }

  function poll() {
    fetch("/screens/" + id + ".json", { cache: "no-cache" })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (next) { apply(next); stale(false); })
      .catch(function () { stale(true); });
  }

  function startPolling() {
    if (!pollTimer) { poll(); pollTimer = setInterval(poll, POLL_MS); }
  }

  function stopPolling() {
    if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
  }

  function connect() {
    retryTimer = null;
    if (!window.EventSource) { startPolling(); return; }
    source = new EventSource("/screens/" + id + "/events");
    source.addEventListener("state", function (event) { apply(JSON.parse(event.data)); });
    source.onopen = function () { stopPolling(); stale(false); };
    source.onerror = function () {
      // The browser reconnects by itself; poll meanwhile, and start over if it gave up.
      startPolling();
      if (source.readyState === EventSource.CLOSED && !retryTimer) {
        retryTimer = setTimeout(connect, RETRY_STREAM_MS);
      }
    };
  }

  function rotate() {
    slot += 1;
    draw();
    setTimeout(rotate, 1000 * ((state && state.screen.rotate_seconds) || 8));
  }
  setTimeout(rotate, 8000);
  setInterval(function () { clock(); if (state && inForce().length !== state.warnings.length) { draw(); } }, 1000);
  clock();
  poll();
  connect();
}());
