// Studio: the Dropdowns Editor and the tab groups (core/web/studio_lists.py).
// Without this script every button is a submit button the server applies to the form (the
// page comes back unsaved, changed); with it the same buttons act in the page, and rows and
// modules can be dragged by their handle (HTML5 drag and drop). The server checks all again.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  autosubmit(document);
  filterRows(document);
  document.querySelectorAll("[data-dropdown-editor]").forEach(dropdownEditor);
  document.querySelectorAll("[data-tab-groups]").forEach(tabGroups);
});

// A language select shows the page in that language at once.
function autosubmit(root) {
  root.querySelectorAll("select[data-autosubmit]").forEach((select) => {
    select.addEventListener("change", () => select.form.submit());
  });
}

// "Find a list": hide the rows whose text does not contain what is typed.
function filterRows(root) {
  root.querySelectorAll("input[data-filter-rows]").forEach((input) => {
    const table = root.querySelector(input.dataset.filterRows);
    if (!table) return;
    input.addEventListener("input", () => {
      const wanted = input.value.trim().toLowerCase();
      table.querySelectorAll("tbody tr").forEach((row) => {
        row.hidden = wanted !== "" && !row.textContent.toLowerCase().includes(wanted);
      });
    });
  });
}

// Leaving a page with unsaved changes asks first (the browser words the question).
function guardUnsaved(form) {
  let dirty = false;
  const mark = () => { dirty = true; };
  form.addEventListener("input", mark);
  form.addEventListener("change", mark);
  form.addEventListener("submit", () => { dirty = false; });
  window.addEventListener("beforeunload", (e) => {
    if (dirty) { e.preventDefault(); e.returnValue = ""; }
  });
  return mark;
}

// Drag and drop of items by their handle: an item becomes draggable only while the
// pointer is down on its handle, so text in its inputs can still be selected.
// `zones`: the containers items may be dropped in; `onMove(item)` after each drop.
function draggable({ root, itemSelector, zoneSelector, onMove }) {
  let dragged = null;
  const clearMarks = () => root.querySelectorAll(".drop-before, .drop-after, .drop-target")
    .forEach((el) => el.classList.remove("drop-before", "drop-after", "drop-target"));
  root.addEventListener("pointerdown", (e) => {
    const handle = e.target.closest("[data-drag-handle]");
    const item = handle && handle.closest(itemSelector);
    if (item) item.draggable = true;
  });
  root.addEventListener("pointerup", () => {  // a click on the handle, not a drag
    if (!dragged) root.querySelectorAll("[draggable=true]").forEach((el) => { el.draggable = false; });
  });
  root.addEventListener("dragstart", (e) => {
    const item = e.target.closest && e.target.closest(itemSelector);
    if (!item || !item.draggable) return;
    dragged = item;
    item.classList.add("is-dragging");
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", item.dataset.module || "");
  });
  root.addEventListener("dragend", () => {
    if (dragged) {
      dragged.classList.remove("is-dragging");
      dragged.draggable = false;
    }
    dragged = null;
    clearMarks();
  });
  const place = (e) => {  // where the dragged item would go: [zone, item to insert before]
    const zone = e.target.closest && e.target.closest(zoneSelector);
    if (!zone) return null;
    const list = zone.matches("[data-module-list], [data-rows]") ? zone
      : zone.querySelector("[data-module-list], [data-rows]");
    const over = e.target.closest(itemSelector);
    if (over && over !== dragged && list.contains(over)) {
      const box = over.getBoundingClientRect();
      const after = e.clientY > box.top + box.height / 2;
      return [list, after ? over.nextElementSibling : over, over, after];
    }
    return [list, null, null, false];
  };
  root.addEventListener("dragover", (e) => {
    if (!dragged) return;
    const target = place(e);
    if (!target) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "move";
    clearMarks();
    const [list, , over, after] = target;
    if (over) over.classList.add(after ? "drop-after" : "drop-before");
    else list.closest(zoneSelector).classList.add("drop-target");
  });
  root.addEventListener("drop", (e) => {
    if (!dragged) return;
    const target = place(e);
    if (!target) return;
    e.preventDefault();
    const [list, before] = target;
    if (before !== dragged) list.insertBefore(dragged, before);
    const moved = dragged;
    clearMarks();
    onMove(moved);
  });
}

// -- the Dropdowns Editor ---------------------------------------------------------------------

function dropdownEditor(form) {
  const body = form.querySelector("[data-rows]");
  const template = form.querySelector("#option-row-template");
  const changed = guardUnsaved(form);
  const renumber = () => {
    [...body.querySelectorAll("[data-option-row]")].forEach((row, i) => {
      row.querySelector("[data-row-number]").textContent = String(i + 1);
      row.querySelectorAll("button[data-op]").forEach((b) => { b.value = `${b.dataset.op}:${i}`; });
      const [value, label] = row.querySelectorAll("input[name=value], input[name=label]");
      const labels = row.querySelectorAll("label.phone-label");
      value.id = `v-${i}`;
      label.id = `l-${i}`;
      if (labels[0]) labels[0].htmlFor = value.id;
      if (labels[1]) labels[1].htmlFor = label.id;
    });
  };
  const newRow = () => template.content.firstElementChild.cloneNode(true);
  const focusRow = (row, which = "input[name=value]") => {
    const input = row && row.querySelector(which);
    if (input) input.focus();
  };
  form.addEventListener("click", (e) => {
    const button = e.target.closest("button[data-op]");
    if (!button) return;
    e.preventDefault();
    const op = button.dataset.op;
    const row = button.closest("[data-option-row]");
    if (op === "append") {
      const added = newRow();
      body.append(added);
      renumber();
      focusRow(added);
    } else if (op === "add") {
      const added = newRow();
      row.after(added);
      renumber();
      focusRow(added);
    } else if (op === "remove") {
      const next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      renumber();
      if (next) focusRow(next, "button[data-op=remove]");
    } else if (op === "up" && row.previousElementSibling) {
      row.previousElementSibling.before(row);
      renumber();
      button.focus();
    } else if (op === "down" && row.nextElementSibling) {
      row.nextElementSibling.after(row);
      renumber();
      button.focus();
    }
    changed();
  });
  form.addEventListener("change", (e) => {  // a row's colour swatch follows its select
    if (!e.target.matches("select[name=color]")) return;
    const swatch = e.target.closest("[data-option-row]").querySelector("[data-swatch]");
    if (swatch) swatch.dataset.color = e.target.value;
  });
  draggable({ root: body, itemSelector: "[data-option-row]", zoneSelector: "[data-rows]",
              onMove: () => { renumber(); changed(); } });
}

// -- tab groups ---------------------------------------------------------------------------------

function tabGroups(form) {
  const boxes = form.querySelector("[data-group-boxes]");
  const template = form.querySelector("#group-template");
  const addButton = form.querySelector("[data-add-group]");
  const newLabel = form.dataset.newLabel || "";
  const changed = guardUnsaved(form);
  const groupOf = (item) => item.closest("[data-group]");
  const boxFor = (key) => boxes.querySelector(`[data-group="${CSS.escape(key)}"]`);
  const labelOf = (box) => box.querySelector("[data-group-label]").value.trim() || newLabel;
  // every module's select offers every group, named as its box names it now
  const syncSelects = () => {
    const groups = [...boxes.querySelectorAll("[data-group]")].map((b) => [b.dataset.group, labelOf(b)]);
    form.querySelectorAll("select[data-group-select]").forEach((select) => {
      const item = select.closest("[data-module]");
      const current = groupOf(item).dataset.group;
      select.replaceChildren(...groups.map(([key, label]) => new Option(label, key, false, key === current)));
      select.value = current;
    });
  };
  const moved = (item) => {
    const select = item.querySelector("select[data-group-select]");
    select.value = groupOf(item).dataset.group;
    changed();
  };
  form.addEventListener("click", (e) => {
    const button = e.target.closest("button[data-op]");
    if (!button) return;
    e.preventDefault();
    const item = button.closest("[data-module]");
    if (button.dataset.op === "up" && item.previousElementSibling) {
      item.previousElementSibling.before(item);
    } else if (button.dataset.op === "down" && item.nextElementSibling) {
      item.nextElementSibling.after(item);
    }
    button.focus();
    changed();
  });
  form.addEventListener("change", (e) => {
    if (e.target.matches("select[data-group-select]")) {
      const item = e.target.closest("[data-module]");
      const box = boxFor(e.target.value);
      if (box) {
        box.querySelector("[data-module-list]").append(item);
        e.target.focus();
      }
    } else if (e.target.matches("input[data-hidden-box]")) {
      e.target.closest("[data-module]").classList.toggle("is-hidden", e.target.checked);
    }
  });
  form.addEventListener("input", (e) => {
    if (e.target.matches("[data-group-label]")) syncSelects();
  });
  let count = 0;
  if (addButton && template) {
    addButton.hidden = false;
    addButton.addEventListener("click", () => {
      let key;
      do { key = `add${++count}`; } while (boxFor(key));
      const holder = document.createElement("div");
      holder.innerHTML = template.innerHTML.replaceAll("__key__", key);
      const box = holder.firstElementChild;
      boxes.append(box);
      syncSelects();
      box.querySelector("[data-group-label]").focus();
    });
  }
  draggable({ root: boxes, itemSelector: "[data-module]", zoneSelector: "[data-group]",
              onMove: moved });
}
