// A page that keeps itself current: every data-refresh seconds the same address is fetched
// and the sections marked data-live are replaced by their fresh copies. The forms inside keep
// working (the session's CSRF token comes with them). No refresh while the tab is hidden or
// while the manager is using a form in a section, and none after the session has ended (the
// address then answers with the sign-in page). No dependencies.
"use strict";

(function () {
  const root = document.querySelector("[data-refresh]");
  if (!root) return;
  const seconds = Math.max(1, parseFloat(root.dataset.refresh) || 30);
  const stamp = document.getElementById("refreshed");
  let stopped = false;

  function busy(section) {
    const active = document.activeElement;
    if (active && active !== document.body && section.contains(active) && active.form) return true;
    return section.querySelector("details[open]") !== null;
  }

  async function refresh() {
    if (stopped || document.hidden) return;
    let response;
    try {
      response = await fetch(window.location.href, {
        credentials: "same-origin",
        headers: { "X-Requested-With": "refresh" },
      });
    } catch (err) {
      if (stamp) stamp.textContent = "нет связи с сервером, повторим";
      return;
    }
    if (!response.ok || new URL(response.url).pathname !== window.location.pathname) {
      stopped = true;  // signed out or an error page: keep what is shown, say why
      if (stamp) stamp.textContent = "обновление остановлено: обновите страницу";
      return;
    }
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const section of document.querySelectorAll("[data-live]")) {
      const next = fresh.getElementById(section.id);
      if (next && !busy(section)) section.replaceWith(document.importNode(next, true));
    }
    if (stamp) stamp.textContent = "обновлено " + new Date().toLocaleTimeString("ru-RU");
  }

  setInterval(refresh, seconds * 1000);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });
})();
