// The public page without a timed refresh: the live stream (/live) says when what is published
// changes, and the reader is offered the latest (a button) instead of a reload under them. Without
// JavaScript the page says when it was shown and the reader reloads when they choose.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var live = document.getElementById("live");
  var news = document.getElementById("news");
  var show = document.getElementById("show-news");
  if (!live || !news || !show || !window.EventSource || !window.DOMParser) return;
  var latest = live.getAttribute("data-version");
  var stream = new EventSource("/live");
  stream.addEventListener("version", function (event) {
    // A page served stale (the service had lost its data) is renewed as soon as the stream is back.
    var stale = document.querySelector(".stale-notice");
    if (event.data && (event.data !== live.getAttribute("data-version") || stale)) {
      latest = event.data;
      news.hidden = false;
    }
  });
  show.addEventListener("click", function () {
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        if (!fresh) return;
        ["live-content", "shown-at"].forEach(function (id) {
          var now = fresh.querySelector("#" + id);
          var old = document.getElementById(id);
          if (!now || !old) return;
          var imported = document.importNode(now, true);
          // The zoomable map stays as the reader left it (public-map.js recolours it).
          var liveMap = document.getElementById("public-map");
          var mapSection = liveMap && liveMap.closest("section.map");
          var freshSection = imported.querySelector("section.map");
          if (mapSection && freshSection && old.contains(mapSection)) freshSection.replaceWith(mapSection);
          old.replaceWith(imported);
        });
        document.dispatchEvent(new CustomEvent("warncast:live"));
        live.setAttribute("data-version", fresh.getAttribute("data-version") || latest);
        var stale = document.querySelector(".stale-notice");
        if (stale && !fresh.ownerDocument.querySelector(".stale-notice")) stale.remove();
        news.hidden = true;
        var heading = document.getElementById("list-title");
        if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus(); }
      })
      .catch(function () { window.location.reload(); });
  });
})();
