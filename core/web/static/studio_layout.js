// Studio Layout Editor (core/web/studio_layout.py). The staged layout lives here, in
// `state`; every change re-renders the staging area and the Available Fields list from it
// and writes it, as JSON, into the hidden inputs the Save form posts. The server checks
// everything again. Drag and drop (HTML5) has a non-drag twin for every move: selects in
// empty positions, Add buttons, up/down and remove buttons — for keyboards and phones.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("studio-layout");
  const dataNode = document.getElementById("studio-data");
  if (root && dataNode) layoutEditor(root, JSON.parse(dataNode.textContent));
});

function layoutEditor(root, data) {
  const text = data.text;
  const fields = data.fields;           // name -> {label, custom, label_editable}
  const order = data.order;             // custom first, then standard
  const sections = data.kind === "sections";
  const state = {
    layout: JSON.parse(JSON.stringify(data.layout)),
    labels: Object.assign({}, data.labels || {}),  // name -> changed label
  };
  const initial = JSON.stringify([state.layout, state.labels]);
  const stage = root.querySelector("[data-stage]");
  const available = root.querySelector("[data-available]");
  const form = document.getElementById("studio-save");
  const dialog = document.getElementById("studio-edit");
  let dragging = null;  // {field, from: "available" | slot id | list index}
  let focusKey = null;  // the control to focus after the next render

  // -- small helpers -------------------------------------------------------------------
  const fmt = (template, values) =>
    template.replace(/\{(\w+)\}/g, (m, key) => (key in values ? String(values[key]) : m));
  const labelOf = (name) =>
    (name in state.labels ? state.labels[name] : (fields[name] || { label: name }).label);

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "className") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "value") node.value = value;
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) {
        node.append(child instanceof Node ? child : document.createTextNode(String(child)));
      }
    }
    return node;
  }

  function placedNames() {
    if (!sections) return state.layout.slice();
    const out = [];
    state.layout.forEach((s) => s.rows.forEach((row) => row.forEach((n) => n && out.push(n))));
    return out;
  }

  function unplaced() {
    const placed = new Set(placedNames());
    return order.filter((name) => !placed.has(name));
  }

  function fieldOptions(names, first) {
    const custom = names.filter((n) => fields[n] && fields[n].custom);
    const standard = names.filter((n) => !(fields[n] && fields[n].custom));
    const group = (label, list) => list.length
      ? h("optgroup", { label }, list.map((n) => h("option", { value: n, text: labelOf(n) })))
      : null;
    return [first, group(text.customFields, custom), group(text.standardFields, standard)];
  }

  // slot ids: "s<section>r<row>c<column>"
  const parseSlot = (id) => id.match(/^s(\d+)r(\d+)c(\d+)$/).slice(1).map(Number);
  const slotId = (s, r, c) => `s${s}r${r}c${c}`;
  const getSlot = (id) => { const [s, r, c] = parseSlot(id); return state.layout[s].rows[r][c]; };
  const setSlot = (id, name) => { const [s, r, c] = parseSlot(id); state.layout[s].rows[r][c] = name; };

  // -- changes -------------------------------------------------------------------------
  function change(fn, key) {
    fn();
    focusKey = key !== undefined ? key
      : (document.activeElement && document.activeElement.dataset.key) || null;
    render();
  }

  // put `name` (from the available list) at slot `id`; whatever was there goes back
  function place(id, name) { setSlot(id, name); }

  // a placed field dragged onto another position: the two swap (or it simply moves)
  function swap(from, to) {
    const a = getSlot(from), b = getSlot(to);
    setSlot(to, a);
    setSlot(from, b);
  }

  function removeFrom(id) {
    if (sections) setSlot(id, null);
    else state.layout.splice(Number(id), 1);
  }

  function addAnywhere(name) {
    if (!sections) { state.layout.push(name); return; }
    for (let s = 0; s < state.layout.length; s++) {
      const rows = state.layout[s].rows;
      for (let r = 0; r < rows.length; r++) {
        for (let c = 0; c < 2; c++) if (!rows[r][c]) { rows[r][c] = name; return; }
      }
    }
    if (!state.layout.length) state.layout.push({ label: "", rows: [] });
    state.layout[state.layout.length - 1].rows.push([name, null]);
  }

  function moveItem(from, to) {  // list views: move item `from` to index `to`
    const [name] = state.layout.splice(from, 1);
    state.layout.splice(from < to ? to - 1 : to, 0, name);
  }

  // -- rendering -----------------------------------------------------------------------
  function chipTools(name, key) {
    return h("button", { type: "button", className: "chip-remove", "data-action": "remove-field",
                         "data-key": `${key}:remove`, "aria-label": fmt(text.remove, { name: labelOf(name) }),
                         title: fmt(text.remove, { name: labelOf(name) }) }, "×");
  }

  function placedChip(name, id) {
    return h("div", { className: `chip placed${fields[name] && fields[name].custom ? " custom" : ""}`,
                      draggable: "true", "data-field": name, "data-from": id },
      h("button", { type: "button", className: "chip-label", "data-action": "edit", "data-key": `${id}:edit`,
                    "aria-haspopup": "dialog", title: text.edit }, labelOf(name)),
      chipTools(name, id));
  }

  function renderSlot(s, r, c, name, free) {
    const id = slotId(s, r, c);
    if (name) return h("div", { className: "slot", "data-slot": id }, placedChip(name, id));
    const select = h("select", { "data-action": "place", "data-key": `${id}:place`,
                                 "aria-label": fmt(text.fieldFor, { section: s + 1, row: r + 1, position: c + 1 }) },
      fieldOptions(free, h("option", { value: "", text: text.emptyChoice })));
    return h("div", { className: "slot empty", "data-slot": id }, select);
  }

  function renderSections(free) {
    const out = [];
    state.layout.forEach((section, s) => {
      const name = section.label || text.untitled;
      const rows = section.rows.map((row, r) => h("div", { className: "studio-row", "data-row": `s${s}r${r}` },
        renderSlot(s, r, 0, row[0], free), renderSlot(s, r, 1, row[1], free),
        h("div", { className: "row-tools" },
          h("button", { type: "button", className: "icon", "data-action": "row-above", "data-key": `s${s}r${r}:above`,
                        "aria-label": fmt(text.rowAbove, { row: r + 1 }), title: fmt(text.rowAbove, { row: r + 1 }) }, "+"),
          h("button", { type: "button", className: "icon danger", "data-action": "remove-row", "data-key": `s${s}r${r}:remove`,
                        "aria-label": fmt(text.removeRow, { row: r + 1 }), title: fmt(text.removeRow, { row: r + 1 }) }, "−"))));
      out.push(h("section", { className: "studio-section", "data-section": String(s), "aria-label": fmt(text.sectionTitle, { name }) },
        h("div", { className: "section-head" },
          h("div", { className: "section-move" },
            h("button", { type: "button", className: "icon", "data-action": "section-up", "data-key": `s${s}:up`,
                          disabled: s === 0, "aria-label": fmt(text.sectionUp, { name }), title: fmt(text.sectionUp, { name }) }, "↑"),
            h("button", { type: "button", className: "icon", "data-action": "section-down", "data-key": `s${s}:down`,
                          disabled: s === state.layout.length - 1,
                          "aria-label": fmt(text.sectionDown, { name }), title: fmt(text.sectionDown, { name }) }, "↓")),
          h("input", { type: "text", className: "section-name", value: section.label, maxlength: "100",
                       "data-action": "rename", "data-key": `s${s}:name`, "aria-label": text.sectionName,
                       placeholder: text.untitled }),
          h("div", { className: "section-tools" },
            h("button", { type: "button", "data-action": "add-row", "data-key": `s${s}:add-row` }, `+ ${text.addRow}`),
            h("button", { type: "button", className: "danger", "data-action": "remove-section", "data-key": `s${s}:remove` },
              text.removeSection))),
        section.rows.length ? h("div", { className: "studio-rows" }, rows)
          : h("p", { className: "muted small no-rows" }, text.noRows)));
    });
    if (!state.layout.length) out.push(h("p", { className: "muted" }, text.noSections));
    return out;
  }

  function renderList(free) {
    const last = state.layout.length - 1;
    const items = state.layout.map((name, i) => h("li", {
      className: `chip placed${fields[name] && fields[name].custom ? " custom" : ""}`,
      draggable: "true", "data-field": name, "data-index": String(i) },
      h("span", { className: "chip-grip", "aria-hidden": "true" }, "⠿"),
      h("span", { className: "chip-label" }, labelOf(name)),
      h("span", { className: "chip-tools" },
        h("button", { type: "button", className: "icon", "data-action": "item-up", "data-key": `i${i}:up`, disabled: i === 0,
                      "aria-label": fmt(text.moveUp, { name: labelOf(name) }), title: fmt(text.moveUp, { name: labelOf(name) }) }, "↑"),
        h("button", { type: "button", className: "icon", "data-action": "item-down", "data-key": `i${i}:down`, disabled: i === last,
                      "aria-label": fmt(text.moveDown, { name: labelOf(name) }), title: fmt(text.moveDown, { name: labelOf(name) }) }, "↓"),
        chipTools(name, `i${i}`))));
    return [
      h("ol", { className: "studio-list" }, items),
      h("div", { className: "list-end", "data-drop": "end" }, text.dropEnd),
      h("label", { className: "add-field" }, text.addField,
        h("select", { "data-action": "append", "data-key": "append" },
          fieldOptions(free, h("option", { value: "", text: text.chooseField })))),
    ];
  }

  function renderAvailable(free) {
    const group = (custom, title, empty) => {
      const names = free.filter((n) => Boolean(fields[n] && fields[n].custom) === custom);
      return h("div", { className: "available-group", "data-group": custom ? "custom" : "standard" },
        h("h3", {}, title),
        names.length ? h("ul", { className: "chips" }, names.map((n) => h("li", {
          className: `chip${custom ? " custom" : ""}`, draggable: "true", "data-field": n },
          h("span", { className: "chip-label" }, labelOf(n)),
          h("button", { type: "button", className: "chip-add", "data-action": "add", "data-key": `add:${n}`,
                        "aria-label": fmt(text.add, { name: labelOf(n) }), title: fmt(text.add, { name: labelOf(n) }) }, "+"))))
          : h("p", { className: "muted small" }, empty));
    };
    return [group(true, text.customFields, text.noCustom), group(false, text.standardFields, text.noStandard)];
  }

  function render() {
    const free = unplaced();
    stage.replaceChildren(...(sections ? renderSections(free) : renderList(free)));
    available.replaceChildren(...renderAvailable(free));
    form.elements.layout.value = JSON.stringify(state.layout);
    if (form.elements.labels) form.elements.labels.value = JSON.stringify(state.labels);
    const dirty = JSON.stringify([state.layout, state.labels]) !== initial;
    root.querySelectorAll("[data-status]").forEach((node) => { node.textContent = dirty ? text.unsaved : ""; });
    if (focusKey !== null) {  // keyboard users stay where they were
      const target = focusKey && root.querySelector(`[data-key="${CSS.escape(focusKey)}"]`);
      if (target && !target.disabled) target.focus();
      else stage.focus({ preventScroll: true });
      focusKey = null;
    }
  }

  // -- clicks and selects (the non-drag way) ------------------------------------------
  root.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button || !root.contains(button)) return;
    const action = button.dataset.action;
    const chip = button.closest("[data-field]");
    const sectionNode = button.closest("[data-section]");
    const s = sectionNode ? Number(sectionNode.dataset.section) : -1;
    const rowNode = button.closest("[data-row]");
    const r = rowNode ? parseSlot(`${rowNode.dataset.row}c0`)[1] : -1;
    switch (action) {
      case "add": {  // then the next field's Add button, to add several in a row
        const free = unplaced();
        const at = free.indexOf(chip.dataset.field);
        const next = free[at + 1] || free[at - 1];
        change(() => addAnywhere(chip.dataset.field), next ? `add:${next}` : "");
        break;
      }
      case "remove-field": {
        const from = chip.dataset.from !== undefined ? chip.dataset.from : chip.dataset.index;
        change(() => removeFrom(from), sections ? `${from}:place` : `i${from}:remove`);
        break;
      }
      case "edit":
        openEditor(chip.dataset.from);
        break;
      case "add-section":
        change(() => state.layout.push({ label: "", rows: [[null, null]] }), `s${state.layout.length}:name`);
        break;
      case "remove-section":
        change(() => state.layout.splice(s, 1), "add-section");
        break;
      case "section-up":
      case "section-down": {
        const t = action === "section-up" ? s - 1 : s + 1;
        change(() => { const [moved] = state.layout.splice(s, 1); state.layout.splice(t, 0, moved); },
               `s${t}:${action === "section-up" ? "up" : "down"}`);
        break;
      }
      case "add-row":
        change(() => state.layout[s].rows.push([null, null]), `s${s}r${state.layout[s].rows.length}c0:place`);
        break;
      case "row-above":
        change(() => state.layout[s].rows.splice(r, 0, [null, null]), `s${s}r${r}c0:place`);
        break;
      case "remove-row":
        change(() => state.layout[s].rows.splice(r, 1), `s${s}:add-row`);
        break;
      case "item-up":
      case "item-down": {
        const i = Number(chip.dataset.index);
        const t = action === "item-up" ? i - 1 : i + 1;
        change(() => { const [moved] = state.layout.splice(i, 1); state.layout.splice(t, 0, moved); },
               `i${t}:${action === "item-up" ? "up" : "down"}`);
        break;
      }
      default:
    }
  });

  root.addEventListener("change", (event) => {
    const select = event.target.closest("select[data-action]");
    if (!select || !select.value) return;
    if (select.dataset.action === "place") {
      const id = select.closest("[data-slot]").dataset.slot;
      change(() => place(id, select.value), `${id}:edit`);
    } else if (select.dataset.action === "append") {
      change(() => state.layout.push(select.value), "append");
    }
  });

  root.addEventListener("input", (event) => {
    const input = event.target.closest("input[data-action=rename]");
    if (!input) return;
    const sectionNode = input.closest("[data-section]");
    const s = Number(sectionNode.dataset.section);
    state.layout[s].label = input.value;
    const name = input.value || text.untitled;  // what screen readers call the section
    sectionNode.setAttribute("aria-label", fmt(text.sectionTitle, { name }));
    for (const [action, template] of [["section-up", text.sectionUp], ["section-down", text.sectionDown]]) {
      const button = sectionNode.querySelector(`[data-action="${action}"]`);
      button.setAttribute("aria-label", fmt(template, { name }));
      button.title = fmt(template, { name });
    }
    form.elements.layout.value = JSON.stringify(state.layout);
    const dirty = JSON.stringify([state.layout, state.labels]) !== initial;
    root.querySelectorAll("[data-status]").forEach((node) => { node.textContent = dirty ? text.unsaved : ""; });
  });
  // Enter in a section name must not submit the Save form (it is outside it, but be sure)
  root.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target.matches("input[data-action=rename]")) {
      event.preventDefault();
      event.target.blur();
    }
  });

  // -- drag and drop -------------------------------------------------------------------
  root.addEventListener("dragstart", (event) => {
    const chip = event.target.closest && event.target.closest("[data-field][draggable]");
    if (!chip) return;
    const from = chip.dataset.from !== undefined ? chip.dataset.from
      : chip.dataset.index !== undefined ? `i${chip.dataset.index}` : "available";
    dragging = { field: chip.dataset.field, from };
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", chip.dataset.field);
    root.classList.add("dragging");
    chip.classList.add("drag-source");
  });

  root.addEventListener("dragend", () => {
    dragging = null;
    root.classList.remove("dragging");
    root.querySelectorAll(".drag-over, .drag-source").forEach((n) => n.classList.remove("drag-over", "drag-source"));
  });

  function dropTarget(event) {
    if (!dragging) return null;
    const node = event.target.closest ? event.target : event.target.parentElement;
    if (!node) return null;
    if (sections) {
      const slot = node.closest("[data-slot]");
      if (slot && stage.contains(slot)) return slot;
    } else {
      const item = node.closest("li[data-index]");
      if (item && stage.contains(item)) return item;
      const end = node.closest("[data-drop=end], .studio-list");
      if (end && stage.contains(end)) return end;
    }
    const back = node.closest("[data-drop=available]");
    if (back && dragging.from !== "available") return back;
    return null;
  }

  root.addEventListener("dragover", (event) => {
    const target = dropTarget(event);
    if (!target) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    root.querySelectorAll(".drag-over").forEach((n) => n !== target && n.classList.remove("drag-over"));
    target.classList.add("drag-over");
  });

  root.addEventListener("dragleave", (event) => {
    const target = dropTarget(event);
    if (target && !target.contains(event.relatedTarget)) target.classList.remove("drag-over");
  });

  root.addEventListener("drop", (event) => {
    const target = dropTarget(event);
    if (!target) return;
    event.preventDefault();
    const { field, from } = dragging;
    dragging = null;
    root.classList.remove("dragging");
    if (target.dataset.drop === "available") {
      change(() => removeFrom(from.startsWith("i") ? from.slice(1) : from), null);
    } else if (sections) {
      const to = target.dataset.slot;
      if (from === to) return render();
      change(() => (from === "available" ? place(to, field) : swap(from, to)), `${to}:edit`);
    } else {
      const to = target.dataset.index !== undefined ? Number(target.dataset.index) : state.layout.length;
      change(() => {
        if (from === "available") state.layout.splice(to, 0, field);
        else moveItem(Number(from.slice(1)), to);
      }, null);
    }
  });

  // -- the Edit Element dialog ---------------------------------------------------------
  let editing = null;
  const fieldSelect = dialog ? dialog.querySelector("select[name=field]") : null;
  const labelInput = dialog ? dialog.querySelector("input[name=label]") : null;
  const labelNote = dialog ? dialog.querySelector("[data-label-note]") : null;
  const labelFixed = dialog ? dialog.querySelector("[data-label-fixed]") : null;

  function showLabelOf(name) {
    const editable = Boolean(fields[name] && fields[name].label_editable);
    labelInput.value = labelOf(name);
    labelInput.disabled = !editable;
    labelNote.hidden = !editable;
    labelFixed.hidden = editable;
  }

  function openEditor(id) {
    if (!dialog || !sections) return;
    editing = id;
    const current = getSlot(id);
    fieldSelect.replaceChildren(...fieldOptions([current, ...unplaced()], null));
    fieldSelect.value = current;
    showLabelOf(current);
    dialog.returnValue = "";
    dialog.showModal();
    labelInput.disabled ? fieldSelect.focus() : labelInput.focus();
  }

  if (dialog) {
    fieldSelect.addEventListener("change", () => showLabelOf(fieldSelect.value));
    dialog.addEventListener("close", () => {
      const id = editing;
      editing = null;
      if (dialog.returnValue !== "apply" || id === null) { focusKey = `${id}:edit`; render(); return; }
      const name = fieldSelect.value;
      const label = labelInput.value.trim().replace(/\s+/g, " ");
      change(() => {
        setSlot(id, name);
        if (fields[name] && fields[name].label_editable && label) {
          if (label === fields[name].label) delete state.labels[name];
          else state.labels[name] = label;
        }
      }, `${id}:edit`);
    });
  }

  form.addEventListener("submit", () => {
    form.elements.layout.value = JSON.stringify(state.layout);
    if (form.elements.labels) form.elements.labels.value = JSON.stringify(state.labels);
  });

  stage.setAttribute("tabindex", "-1");
  render();
}
