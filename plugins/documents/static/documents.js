// Files dropped on a record's Documents subpanel (or on the "Add documents" card) become
// documents related to the record (plugins/documents/web.py checks them: size, programs).
// A file over the limit is refused here before any byte is sent; the server refuses it
// again. Without JavaScript the card's form posts the same files.
(function () {
  "use strict";
  function setUp() {
    const card = document.querySelector("[data-document-drop]");
    if (!card || card.dataset.ready) return;
    card.dataset.ready = "1";
    const config = JSON.parse(card.dataset.documentDrop);
    const csrf = card.querySelector("input[name=_csrf]").value;
    const status = document.createElement("p");
    status.className = "drop-status";
    // announced when it changes, but not a page "status" of its own: the page's flash is that
    status.setAttribute("aria-live", "polite");
    status.textContent = card.dataset.dropHint || "";
    card.appendChild(status);
    const targets = [card, document.getElementById(config.panel)].filter(Boolean);
    targets.forEach((target) => {
      target.addEventListener("dragover", (e) => {
        if (![...e.dataTransfer.types].includes("Files")) return;
        e.preventDefault();
        target.classList.add("drop-over");
      });
      target.addEventListener("dragleave", (e) => {
        if (!target.contains(e.relatedTarget)) target.classList.remove("drop-over");
      });
      target.addEventListener("drop", async (e) => {
        if (!e.dataTransfer.files.length) return;
        e.preventDefault();
        target.classList.remove("drop-over");
        const chosen = [...e.dataTransfer.files];
        const big = chosen.find((file) => file.size > config.limit);
        if (big) {
          status.className = "drop-status error";
          status.textContent = (card.dataset.tooLarge || "").replace("{file}", big.name);
          return;
        }
        const body = new FormData();
        body.append("_csrf", csrf);
        chosen.forEach((file) => body.append("file", file, file.name));
        status.className = "drop-status";
        status.textContent = card.dataset.dropBusy || "…";
        try {
          const response = await fetch(config.url, { method: "POST", body, credentials: "same-origin",
                                                     headers: { Accept: "application/json" } });
          const answer = await response.json().catch(() => ({}));
          if (!response.ok) throw new Error(answer.error || response.statusText);
          status.textContent = card.dataset.dropDone || "";
          const panel = document.getElementById(config.panel);
          if (panel) {
            const count = panel.querySelector(".count[data-count]");
            if (count) {
              const n = Number(count.dataset.count) + answer.documents.length;
              count.dataset.count = String(n);
              count.textContent = n.toLocaleString(document.documentElement.lang || undefined);
            }
            panel.open = true;
            if (panel.reload) panel.reload();
          }
        } catch (error) {
          status.className = "drop-status error";
          status.textContent = error.message;
        }
      });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
