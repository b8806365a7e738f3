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
      var badge = card.querySelector('[data-out="grade"]');
      badge.textContent = selectedText("grade");
      badge.className = "badge grade-" + grade;
      card.querySelector('[data-out="event"]').textContent = selectedText("event");
      card.querySelector(".drill").hidden = !drill;
      var total = 0;
      ["headline", "description", "instruction"].forEach(function (part) {
        var input = form.elements[lang + "." + part];
        var value = input ? input.value : "";
        total += value.length;
        card.querySelector('[data-out="' + part + '"]').textContent = value;
      });
      var chars = card.querySelector('[data-out="chars"]');
      chars.textContent = chars.getAttribute("data-label").replace("{count}", total);
    });
  }
  form.addEventListener("input", update);
  form.addEventListener("change", update);
  update();
})();
