// The supervisor console's small script: ask before destructive actions (forms marked data-confirm). No inline
// scripts anywhere; htmx (from django-htmx) does the rest.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    const form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });
})();
