// The import's progress bar: polls the session's status until it is no longer running,
// then reloads the page for the summary (core/apps/imports/web.py).
(function () {
  const box = document.getElementById("import-progress");
  if (!box || !box.dataset.running) return;
  const bar = document.getElementById("import-bar");
  const count = document.getElementById("import-count");
  async function poll() {
    try {
      const response = await fetch(box.dataset.statusUrl, {headers: {Accept: "application/json"}});
      if (response.ok) {
        const s = await response.json();
        if (s.total) bar.max = s.total;
        bar.value = s.processed;
        for (const key of ["processed", "created", "updated", "skipped"]) {
          const cell = box.querySelector(`[data-count="${key}"]`);
          if (cell) cell.textContent = s[key].toLocaleString(document.documentElement.lang);
        }
        if (count) count.textContent = count.dataset.template
          .replace("%(done)s", s.processed.toLocaleString(document.documentElement.lang))
          .replace("%(total)s", (s.total || 0).toLocaleString(document.documentElement.lang));
        if (s.status !== "queued" && s.status !== "running") { location.reload(); return; }
      }
    } catch (e) { /* a dropped poll: try again */ }
    setTimeout(poll, 1000);
  }
  setTimeout(poll, 500);
})();
