// postdesk's own small script: keyboard navigation for lists (j/k, Enter) and a few helpers. No inline scripts anywhere.
(function () {
  "use strict";
  function rows() { return Array.from(document.querySelectorAll("table.list.keyboard tbody tr[data-href]")); }
  function select(index) {
    const all = rows();
    if (!all.length) return;
    index = Math.max(0, Math.min(index, all.length - 1));
    all.forEach((r, i) => r.classList.toggle("selected", i === index));
    all[index].scrollIntoView({ block: "nearest" });
  }
  function current() { return rows().findIndex((r) => r.classList.contains("selected")); }
  document.addEventListener("keydown", function (event) {
    const target = event.target;
    if (target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const all = rows();
    if (event.key === "j") { select(current() + 1); event.preventDefault(); }
    else if (event.key === "k") { select(current() <= 0 ? 0 : current() - 1); event.preventDefault(); }
    else if (event.key === "Enter" && all.length && current() >= 0) { window.location = all[current()].dataset.href; }
    else if (event.key === "r") {
      const reply = document.querySelector("[data-shortcut='reply']");
      if (reply) { reply.click(); event.preventDefault(); }
      else if (all.length && current() >= 0) { window.location = all[current()].dataset.href + "?reply=1"; }
    }
  });
  document.addEventListener("click", function (event) {
    const row = event.target.closest("tr[data-href]");
    if (row && !event.target.closest("a, button, input, label")) window.location = row.dataset.href;
  });
  document.addEventListener("htmx:afterSwap", function () {
    if (current() < 0 && rows().length) select(0);
  });
  document.addEventListener("DOMContentLoaded", function () { if (rows().length) select(0); });
})();
