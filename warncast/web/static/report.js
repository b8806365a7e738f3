// The report form works without this file; with it, "Use my location" fills the hidden lat/lon.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var button = document.getElementById("locate");
  if (!button || !navigator.geolocation) { return; }
  var status = document.getElementById("locate-status");
  button.addEventListener("click", function () {
    status.textContent = "…";
    navigator.geolocation.getCurrentPosition(function (pos) {
      document.getElementById("lat").value = pos.coords.latitude.toFixed(6);
      document.getElementById("lon").value = pos.coords.longitude.toFixed(6);
      status.textContent = "✓ " + pos.coords.latitude.toFixed(4) + ", " + pos.coords.longitude.toFixed(4);
    }, function (err) {
      status.textContent = "✗ " + err.message;
    }, { enableHighAccuracy: true, timeout: 15000 });
  });
})();
