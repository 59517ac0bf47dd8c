// The reports' small script: choosing another project in a report's filter form shows that project at once.
// No inline scripts anywhere; the monitoring page refreshes through htmx (from django-htmx) alone.
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    const select = event.target.closest("form[data-autosubmit-project] select[name=project]");
    if (!select) return;
    const form = select.form;
    // the queue, agent and labels belong to the previous project
    form.querySelectorAll("select[name=queue], select[name=agent]").forEach((s) => { s.value = ""; });
    form.querySelectorAll("input[name=types]").forEach((c) => { c.checked = false; });
    form.requestSubmit();
  });
})();
