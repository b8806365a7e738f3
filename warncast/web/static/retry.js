// The error page of a refused or briefly unavailable GET (429, 503): try again once Retry-After has
// passed, so a kiosk behind a shared address recovers by itself. A timed reload must be one the
// reader can stop (WCAG 2.2.1), so the page says when it will reload and offers a button to stop;
// without JavaScript nothing reloads and the "Try again" link is the way.
(function () {
  "use strict";
  var box = document.getElementById("retry");
  if (!box) return;
  var left = parseInt(box.getAttribute("data-seconds"), 10) || 1;
  var line = box.querySelector("[data-countdown]");
  var stop = document.getElementById("retry-stop");
  var timer = null;
  function show() { line.textContent = box.getAttribute("data-countdown-text").replace("{seconds}", String(left)); }
  function tick() {
    if (left <= 0) { window.location.reload(); return; }
    show();
    left -= 1;
    timer = window.setTimeout(tick, 1000);
  }
  stop.hidden = false;
  stop.addEventListener("click", function () {
    window.clearTimeout(timer);
    stop.hidden = true;
    line.textContent = box.getAttribute("data-stopped-text");
  });
  tick();
})();
