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
      // The device's point is where the hazard is: a list pick would only contradict it.
      var area = document.getElementById("area");
      if (area && area.value) {
        area.value = "";
        status.textContent += " · " + (button.getAttribute("data-replaces") || "");
      }
    }, function (err) {
      status.textContent = "✗ " + err.message;
    }, { enableHighAccuracy: true, timeout: 15000 });
  });
})();
