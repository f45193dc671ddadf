// Kanban board (core/apps/board): drag a card to another column, or pick a column in its
// "Move to…" select; either way the move is posted (CSRF) and the server's record service
// decides. A refused move puts the card back where it was and says why. Dragging is
// SortableJS's (static/vendor/sortablejs): mouse, pen and touch. On a touch screen a card
// is dragged by its grip, so a finger elsewhere scrolls the columns as a phone user expects.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const board = document.querySelector("[data-board]");
  if (!board) return;
  const status = document.querySelector("[data-board-status]");
  const editable = board.dataset.editable === "1";

  const say = (text, error) => {
    status.textContent = text || "";
    status.hidden = !text;
    status.classList.toggle("error", Boolean(error));
  };

  const columnOf = (value) => board.querySelector(`.board-column[data-column="${CSS.escape(value)}"]`);

  // the headers' figures, as the server counted them after the move
  const showFigures = (columns) => {
    board.querySelectorAll(".board-column").forEach((section) => {
      const fig = columns[section.dataset.column] || { count: "0", n: 0, face: "", weighted: "" };
      section.querySelector("[data-count]").textContent = fig.count;
      const face = section.querySelector("[data-face]");
      if (face) face.textContent = fig.face;
      const weighted = section.querySelector("[data-weighted]");
      if (weighted) weighted.textContent = fig.weighted;
    });
  };

  // each card's select offers every column but its own
  const refreshSelect = (card) => {
    const select = card.querySelector("select[name=to]");
    if (!select) return;
    const here = card.closest("[data-cards]").dataset.column;
    const columns = [...board.querySelectorAll(".board-column")]
      .filter((s) => s.dataset.column !== "");
    select.replaceChildren(select.options[0],
      ...columns.filter((s) => s.dataset.column !== here).map((s) => {
        const option = document.createElement("option");
        option.value = s.dataset.column;
        option.textContent = s.querySelector("h2").textContent;
        return option;
      }));
    select.selectedIndex = 0;
  };

  const post = async (card, to) => {
    const body = new URLSearchParams({ _csrf: board.dataset.csrf, id: card.dataset.id,
      version: card.dataset.version, to, back: board.dataset.back });
    let data;
    try {
      const response = await fetch(board.dataset.move, { method: "POST", body,
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRF-Token": board.dataset.csrf } });
      data = await response.json();
    } catch (error) {
      data = { ok: false, error: board.dataset.failed };
    }
    if (!data.ok) throw new Error(data.error || board.dataset.failed);
    card.dataset.version = data.version;
    const version = card.querySelector("input[name=version]");
    if (version) version.value = data.version;
    if (data.card) {  // drawn again: the save may have changed what it shows
      const drawn = document.createElement("template");
      drawn.innerHTML = data.card;
      const fresh = drawn.content.querySelector("[data-card]");
      if (fresh) {
        card.replaceChildren(...fresh.childNodes);
        card.querySelectorAll("[data-move-form] button").forEach((b) => { b.hidden = true; });
      }
    }
    showFigures(data.columns);
  };

  // a move from wherever it started; on refusal the card goes back there
  const move = async (card, from, index, to) => {
    card.setAttribute("aria-busy", "true");
    say(board.dataset.moving);
    try {
      await post(card, to);
      say("");
    } catch (error) {
      const cards = [...from.querySelectorAll("[data-card]")].filter((c) => c !== card);
      from.insertBefore(card, cards[index] || from.querySelector("[data-more]"));
      say(error.message, true);
    } finally {
      card.removeAttribute("aria-busy");
      refreshSelect(card);
    }
  };

  const touch = window.matchMedia("(pointer: coarse)").matches;
  const sortable = (list) => {
    if (!editable || typeof Sortable === "undefined") return;
    Sortable.create(list, {
      group: "board",
      draggable: "[data-card]",
      handle: touch ? ".board-grip" : null,
      filter: "select, button, input, label",
      preventOnFilter: false,
      animation: 150,
      ghostClass: "board-ghost",
      chosenClass: "board-chosen",
      forceFallback: touch, // the same drag on every touch browser, with auto-scroll
      fallbackTolerance: 3,
      scroll: true,
      onEnd: (event) => {
        if (event.from === event.to) return;
        // the card now sits in its new column; keep "More" last there
        const more = event.to.querySelector("[data-more]");
        if (more) event.to.appendChild(more);
        move(event.item, event.from, event.oldDraggableIndex, event.to.dataset.column);
      },
    });
  };
  board.querySelectorAll("[data-cards]").forEach(sortable);

  // keyboard (and no-drag) alternative: the card's own select
  board.addEventListener("change", (event) => {
    const select = event.target.closest("[data-move-form] select[name=to]");
    if (!select || !select.value) return;
    const card = select.closest("[data-card]");
    const from = card.closest("[data-cards]");
    const index = [...from.querySelectorAll("[data-card]")].indexOf(card);
    const target = columnOf(select.value).querySelector("[data-cards]");
    target.insertBefore(card, target.querySelector("[data-card]"));
    move(card, from, index, select.value).then(() => card.querySelector("select, a").focus());
  });
  board.addEventListener("submit", (event) => {  // with JavaScript, the select has moved it
    if (event.target.matches("[data-move-form]")) event.preventDefault();
  });
  board.querySelectorAll("[data-move-form] button").forEach((b) => { b.hidden = true; });

  // "More": the column's next cards in place
  board.addEventListener("click", async (event) => {
    const more = event.target.closest("[data-more]");
    if (!more) return;
    event.preventDefault();
    const response = await fetch(more.dataset.fragment, { credentials: "same-origin" });
    if (!response.ok) { say(board.dataset.failed, true); return; }
    const template = document.createElement("template");
    template.innerHTML = await response.text();
    more.replaceWith(template.content);
  });
});
