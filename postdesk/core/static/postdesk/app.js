// postdesk's own small script: keyboard navigation for lists (j/k, Enter, r), shortcuts on the email and ticket pages
// (r reply, / search), keeping the selected row when htmx refreshes a list. No inline scripts anywhere.
(function () {
  "use strict";
  function rows() { return Array.from(document.querySelectorAll("table.list.keyboard tbody tr[data-href]")); }
  function select(index, quiet) {
    const all = rows();
    if (!all.length) return;
    index = Math.max(0, Math.min(index, all.length - 1));
    all.forEach((r, i) => r.classList.toggle("selected", i === index));
    if (!quiet) all[index].scrollIntoView({ block: "nearest" });
  }
  function current() { return rows().findIndex((r) => r.classList.contains("selected")); }
  function focusReply() {
    const body = document.querySelector("[data-reply-body]");
    if (!body) return false;
    body.scrollIntoView({ block: "center" });
    body.focus();
    return true;
  }
  document.addEventListener("keydown", function (event) {
    const target = event.target;
    if (target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const all = rows();
    if (event.key === "j") { select(current() + 1); event.preventDefault(); }
    else if (event.key === "k") { select(current() <= 0 ? 0 : current() - 1); event.preventDefault(); }
    else if (event.key === "Enter" && all.length && current() >= 0) { window.location = all[current()].dataset.href; }
    else if (event.key === "r") {
      if (focusReply()) { event.preventDefault(); }
      else if (all.length && current() >= 0) { window.location = all[current()].dataset.href + "?reply=1"; }
    }
    else if (event.key === "/") {
      const search = document.querySelector("[data-shortcut='search']");
      if (search) { search.focus(); search.select(); event.preventDefault(); }
    }
  });
  document.addEventListener("click", function (event) {
    const reply = event.target.closest("[data-shortcut='reply']");
    if (reply && focusReply()) { event.preventDefault(); return; }
    const row = event.target.closest("tr[data-href]");
    if (row && !event.target.closest("a, button, input, label")) window.location = row.dataset.href;
  });
  // A refreshed list keeps the selected email selected (by its id), or the same position if it left the list.
  let kept = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    const xhr = event.detail.xhr;
    if (xhr && xhr.responseURL && new URL(xhr.responseURL).pathname.startsWith("/login/")) {
      event.detail.shouldSwap = false;  // the session ended: show the login page, not a login form in a table
      window.location = xhr.responseURL;
      return;
    }
    const index = current();
    kept = index >= 0 ? { id: rows()[index].dataset.id, index: index } : null;
  });
  document.addEventListener("htmx:afterSwap", function () {
    const all = rows();
    if (!all.length) return;
    if (kept) {
      const same = all.findIndex((r) => r.dataset.id && r.dataset.id === kept.id);
      select(same >= 0 ? same : kept.index, true);
    } else if (current() < 0) {
      select(0, true);
    }
    kept = null;
  });
  document.addEventListener("DOMContentLoaded", function () {
    if (rows().length) select(0);
    if (new URLSearchParams(window.location.search).get("reply") === "1") focusReply();
  });
})();
