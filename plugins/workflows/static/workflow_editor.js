// Workflow editor (plugins/workflows/web.py, implementation guide §7.5.5): the conditions
// as a tree of filters and groups, the actions as an ordered list of cards. The page's
// JSON data block (#wf-data) carries the trigger module's fields, the operators, the
// action types and every word, already translated; this script builds the controls with
// textContent only (no markup from data) and writes the two JSON values into the save and
// test forms after every change. The server checks everything again.
//
// Moving conditions: drag a row by its handle (HTML5 drag and drop) up or down, and right
// or left to indent it into the group above or out of its group — the guide's way — or use
// the row's buttons (up, down, indent, outdent), which work the same on a phone.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("wf-editor");
  const dataNode = document.getElementById("wf-data");
  if (root && dataNode) workflowEditor(root, JSON.parse(dataNode.textContent));
});

function workflowEditor(root, data) {
  const text = data.text;
  const fields = Object.fromEntries(data.fields.map((f) => [f.name, f]));
  const dateFields = data.fields.filter((f) => f.family === "date");
  const state = {
    root: normalizeGroup(JSON.parse(JSON.stringify(data.conditions))),
    actions: JSON.parse(JSON.stringify(data.actions)),
    problems: data.problems.slice(),
  };
  const tree = root.querySelector("[data-conditions]");
  const actionList = root.querySelector("[data-actions]");
  const status = root.querySelector("[data-status]");
  const dialog = document.getElementById("wf-action-dialog");
  const ids = new WeakMap();
  let nextId = 1;
  let focusKey = null;
  let dragging = null;  // {node, startX} or {action: index}
  const idOf = (node) => {
    if (!ids.has(node)) ids.set(node, `n${nextId++}`);
    return ids.get(node);
  };

  // -- helpers ------------------------------------------------------------------------
  const fmt = (template, values) =>
    template.replace(/\{(\w+)\}/g, (m, key) => (key in values ? String(values[key]) : m));

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "className") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "value") node.value = value;
      else if (key === "checked") node.checked = Boolean(value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) {
        node.append(child instanceof Node ? child : document.createTextNode(String(child)));
      }
    }
    return node;
  }

  function select(options, current, attrs) {
    const node = h("select", attrs || {}, options.map(([value, label]) =>
      h("option", { value: String(value), text: label })));
    node.value = current === undefined || current === null ? "" : String(current);
    if (node.selectedIndex < 0 && node.options.length) node.selectedIndex = 0;
    return node;
  }

  function iconButton(symbol, label, action, key, disabled) {
    return h("button", { type: "button", className: "icon", "data-action": action, "data-key": key,
                         "aria-label": label, title: label, disabled }, symbol);
  }

  function normalizeGroup(node) {
    if (!node || typeof node !== "object" || !("group" in node)) return { group: "all_of", conditions: [] };
    if (!Array.isArray(node.conditions)) node.conditions = [];
    node.conditions.forEach((c) => { if (c && typeof c === "object" && "group" in c) normalizeGroup(c); });
    return node;
  }

  const isGroup = (node) => node && typeof node === "object" && "group" in node;
  const today = () => new Date().toISOString().slice(0, 10);

  // -- the tree: parents, moves -------------------------------------------------------
  function parentOf(node, group = state.root) {
    for (const child of group.conditions) {
      if (child === node) return group;
      if (isGroup(child)) {
        const found = parentOf(node, child);
        if (found) return found;
      }
    }
    return null;
  }
  const contains = (group, node) => isGroup(group) &&
    group.conditions.some((c) => c === node || contains(c, node));
  function detach(node) {
    const parent = parentOf(node);
    parent.conditions.splice(parent.conditions.indexOf(node), 1);
    return parent;
  }
  function moveUp(node) {
    const parent = parentOf(node);
    const i = parent.conditions.indexOf(node);
    if (i > 0) {
      [parent.conditions[i - 1], parent.conditions[i]] = [parent.conditions[i], parent.conditions[i - 1]];
    } else if (parent !== state.root) {
      const grand = parentOf(parent);
      detach(node);
      grand.conditions.splice(grand.conditions.indexOf(parent), 0, node);
    }
  }
  function moveDown(node) {
    const parent = parentOf(node);
    const i = parent.conditions.indexOf(node);
    if (i < parent.conditions.length - 1) {
      [parent.conditions[i + 1], parent.conditions[i]] = [parent.conditions[i], parent.conditions[i + 1]];
    } else if (parent !== state.root) {
      const grand = parentOf(parent);
      detach(node);
      grand.conditions.splice(grand.conditions.indexOf(parent) + 1, 0, node);
    }
  }
  function canIndent(node) {
    const parent = parentOf(node);
    const i = parent.conditions.indexOf(node);
    return i > 0 && isGroup(parent.conditions[i - 1]);
  }
  function indent(node) {
    if (!canIndent(node)) return false;
    const parent = parentOf(node);
    const group = parent.conditions[parent.conditions.indexOf(node) - 1];
    detach(node);
    group.conditions.push(node);
    return true;
  }
  function outdent(node) {
    const parent = parentOf(node);
    if (!parent || parent === state.root) return false;
    const grand = parentOf(parent);
    detach(node);
    grand.conditions.splice(grand.conditions.indexOf(parent) + 1, 0, node);
    return true;
  }

  // -- filters: defaults when the field or operator changes ----------------------------
  const VALUE_KEYS = ["value", "period", "date", "from", "to", "anchor", "amount", "unit", "direction"];
  function operatorsOf(field) {
    return field ? data.operators[field.family] || [] : [];
  }
  function shapeOf(field, operator) {
    const found = operatorsOf(field).find(([op]) => op === operator);
    return found ? found[2] : null;
  }
  function resetValue(spec) {
    VALUE_KEYS.forEach((k) => delete spec[k]);
    const field = fields[spec.field];
    const shape = shapeOf(field, spec.operator);
    if (field && (field.family === "date" || field.family === "datetime")) {
      if (spec.operator === "month") spec.value = new Date().getMonth() + 1;
      else if (spec.operator === "current") spec.period = "month";
      else if (["before", "after", "on"].includes(spec.operator)) spec.date = { kind: "today" };
      else if (spec.operator === "between") {
        spec.from = { kind: "date", date: today() };
        spec.to = { kind: "today" };
      } else if (spec.operator === "within") {
        Object.assign(spec, { amount: 1, unit: "weeks", direction: "range", anchor: { kind: "today" } });
      }
      return;
    }
    if (shape === "one") spec.value = field && field.family === "choice" && field.options.length
      ? field.options[0][0] : "";
    else if (shape === "many") spec.value = [];
    else if (shape === "range") spec.value = ["", ""];
  }
  function setField(spec, name) {
    spec.field = name;
    const ops = operatorsOf(fields[name]);
    if (!data.noOperator.includes(spec.when)) {
      const keep = ops.find(([op]) => op === spec.operator);
      spec.operator = keep ? keep[0] : (ops.find(([op]) => op === "is") || ops[0] || [null])[0];
    }
    resetValue(spec);
  }
  function newFilter() {
    const first = data.fields[0];
    const spec = { field: first ? first.name : "", when: "current" };
    if (first) setField(spec, first.name);
    return spec;
  }

  // -- drawing the conditions ---------------------------------------------------------
  function problemsAt(scope, path) {
    const key = path.join(".");
    return state.problems.filter((p) => p.scope === scope && p.path.join(".") === key);
  }
  function problemNote(scope, path) {
    const found = problemsAt(scope, path);
    return found.length ? h("div", { className: "wf-problem error-text", role: "alert" },
      found.map((p) => h("p", { text: p.text }))) : null;
  }

  function renderTree() {
    const rows = [];
    const top = problemNote("conditions", []);
    if (top) rows.push(top);
    const walk = (group, path, depth) => {
      group.conditions.forEach((node, i) => {
        const here = [...path, i];
        rows.push(isGroup(node) ? groupRow(node, group, here, depth, i)
                                : filterRow(node, group, here, depth, i));
        const note = problemNote("conditions", here);
        if (note) { note.classList.add("wf-indented"); note.style.setProperty("--depth", depth); rows.push(note); }
        if (isGroup(node)) {
          if (!node.conditions.length) {
            const empty = h("p", { className: "muted small wf-empty wf-indented", text: text.emptyGroup });
            empty.style.setProperty("--depth", depth + 1);
            rows.push(empty);
          }
          walk(node, here, depth + 1);
        }
      });
    };
    walk(state.root, [], 0);
    if (!state.root.conditions.length) rows.push(h("p", { className: "muted wf-empty", text: text.noConditions }));
    tree.replaceChildren(...rows);
  }

  function rowShell(node, parent, path, depth, index, kind, body) {
    const id = idOf(node);
    const last = index === parent.conditions.length - 1;
    const atRoot = parent === state.root;
    const name = (isGroup(node) ? text.groupN : text.conditionN).replace("{number}", path.map((p) => p + 1).join("."));
    const row = h("div", { className: `wf-row wf-${kind}`, "data-node": id, role: "group", "aria-label": name },
      h("span", { className: "wf-handle", draggable: "true", title: text.drag, "aria-hidden": "true" }, "⠿"),
      h("div", { className: "wf-body" }, body),
      h("div", { className: "wf-row-buttons" },
        iconButton("↑", text.moveUp, "up", `${id}:up`, index === 0 && atRoot),
        iconButton("↓", text.moveDown, "down", `${id}:down`, last && atRoot),
        iconButton("⇤", text.outdent, "outdent", `${id}:outdent`, atRoot),
        iconButton("⇥", text.indent, "indent", `${id}:indent`, !canIndent(node)),
        iconButton("×", fmt(text.removeNamed, { name }), "remove", `${id}:remove`, false)));
    row.style.setProperty("--depth", depth);
    if (problemsAt("conditions", path).length) row.classList.add("invalid");
    row.wfNode = node;
    return row;
  }

  function groupRow(node, parent, path, depth, index) {
    const id = idOf(node);
    const body = [
      h("label", { className: "wf-group-label" }, text.group + " ",
        select(data.groups, node.group, { "data-key": `${id}:group`, "data-change": "group" })),
      h("span", { className: "wf-group-add" },
        h("button", { type: "button", className: "small", "data-action": "add-condition", "data-key": `${id}:add-condition` }, `+ ${text.addCondition}`),
        h("button", { type: "button", className: "small", "data-action": "add-group", "data-key": `${id}:add-group` }, `+ ${text.addGroup}`)),
    ];
    return rowShell(node, parent, path, depth, index, "group", body);
  }

  function filterRow(spec, parent, path, depth, index) {
    const id = idOf(spec);
    const field = fields[spec.field];
    const fieldOptions = [["", text.chooseField], ...data.fields.map((f) => [f.name, f.label])];
    if (spec.field && !field) fieldOptions.push([spec.field, spec.field]);  // a vanished field
    const controls = [
      labelled(text.field, select(fieldOptions, spec.field, { "data-key": `${id}:field`, "data-change": "field" })),
      labelled(text.when, select(data.when, spec.when || "current", { "data-key": `${id}:when`, "data-change": "when" })),
    ];
    if (field && !data.noOperator.includes(spec.when || "current")) {
      controls.push(labelled(text.operator, select(operatorsOf(field).map(([op, label]) => [op, label]), spec.operator,
        { "data-key": `${id}:operator`, "data-change": "operator" })));
      controls.push(...valueControls(spec, field, id));
    }
    return rowShell(spec, parent, path, depth, index, "filter", h("div", { className: "wf-controls" }, controls));
  }

  function labelled(label, control, className) {
    return h("label", { className: `wf-control${className ? ` ${className}` : ""}` },
      h("span", { className: "wf-control-label", text: label }), control);
  }

  // the value controls: each writes into `spec` through its data-set path ("value",
  // "value.0", "date.kind", "from.amount"...) and data-type (text, int, month)
  function input(spec, path, type, attrs) {
    const value = getPath(spec, path);
    return h("input", Object.assign({ type: type === "int" ? "number" : type, value: value === undefined || value === null ? "" : String(value),
                                       "data-set": path, "data-type": type === "number" ? "text" : type }, attrs));
  }
  function setSelect(spec, path, options, attrs, type) {
    return select(options, getPath(spec, path), Object.assign({ "data-set": path, "data-type": type || "text" }, attrs));
  }
  function getPath(spec, path) {
    return path.split(".").reduce((obj, key) => (obj === undefined || obj === null ? undefined : obj[key]), spec);
  }
  function setPath(spec, path, value) {
    const keys = path.split(".");
    let obj = spec;
    keys.slice(0, -1).forEach((k, i) => {
      if (obj[k] === undefined || obj[k] === null || typeof obj[k] !== "object") obj[k] = /^\d+$/.test(keys[i + 1]) ? [] : {};
      obj = obj[k];
    });
    obj[keys[keys.length - 1]] = value;
  }

  function valueControls(spec, field, id) {
    const shape = shapeOf(field, spec.operator);
    const fam = field.family;
    if (!shape) return [];
    if (fam === "date" || fam === "datetime") return dateControls(spec, id);
    if (fam === "choice" || fam === "multi") {
      if (shape === "one") return [labelled(text.value, setSelect(spec, "value", field.options, { "data-key": `${id}:value` }))];
      const chosen = new Set(Array.isArray(spec.value) ? spec.value : []);
      return [h("fieldset", { className: "wf-checks" }, h("legend", { text: text.value }),
        field.options.map(([value, label], i) => h("label", { className: "check" },
          h("input", { type: "checkbox", value, checked: chosen.has(value), "data-many": "value", "data-key": `${id}:v${i}` }), ` ${label}`)))];
    }
    if (fam === "link" && field.pick) {
      if (shape === "one") return [labelled(text.value, picker(field.pick, spec.value, "value", `${id}:value`))];
      const values = Array.isArray(spec.value) ? spec.value : [];
      return [h("div", { className: "wf-chips" },
        values.map((v, i) => h("span", { className: "wf-chip" }, data.labels[v] || v,
          h("button", { type: "button", className: "link", "data-action": "remove-value", "data-index": String(i),
                        "aria-label": fmt(text.removeNamed, { name: data.labels[v] || v }), "data-key": `${id}:rm${i}` }, "×"))),
        labelled(text.value, picker(field.pick, "", "value+", `${id}:add`)))];
    }
    const type = fam === "number" ? "number" : "text";
    const attrs = fam === "number" ? { inputmode: "decimal" } : {};
    if (shape === "range") {
      return [labelled(text.from, input(spec, "value.0", type, Object.assign({ "data-key": `${id}:low` }, attrs)), "wf-short"),
              labelled(text.to, input(spec, "value.1", type, Object.assign({ "data-key": `${id}:high` }, attrs)), "wf-short")];
    }
    if (shape === "many") {  // a link without a picker: ids, one per line
      return [labelled(text.value, h("textarea", { rows: "2", "data-set": "value", "data-type": "lines",
        "data-key": `${id}:value`, value: (spec.value || []).join("\n") }))];
    }
    return [labelled(text.value, input(spec, "value", "text", Object.assign({ "data-key": `${id}:value` }, attrs)))];
  }

  function picker(source, value, setPathName, key) {
    return h("div", { className: "picker wf-picker", "data-picker": true, "data-source": source, "data-pick-into": setPathName },
      h("input", { type: "hidden", value: value || "" }),
      h("input", { type: "search", autocomplete: "off", placeholder: text.typeToSearch, "data-key": key,
                   value: value ? data.labels[value] || value : "", "aria-autocomplete": "list" }),
      h("ul", { className: "picker-results", role: "listbox", hidden: true }));
  }

  function dateControls(spec, id) {
    const op = spec.operator;
    if (op === "month") return [labelled(text.month, setSelect(spec, "value", data.months, { "data-key": `${id}:month` }, "int"))];
    if (op === "current") return [labelled(text.period, setSelect(spec, "period", data.periods, { "data-key": `${id}:period` }))];
    if (["before", "after", "on"].includes(op)) return pointControls(spec, "date", id, text.date);
    if (op === "between") return [...pointControls(spec, "from", id, text.from), ...pointControls(spec, "to", id, text.to)];
    if (op === "within") {
      return [
        labelled(text.amount, input(spec, "amount", "int", { min: "0", max: "1000", "data-key": `${id}:amount` }), "wf-short"),
        labelled(text.unit, setSelect(spec, "unit", data.units, { "data-key": `${id}:unit` })),
        labelled(text.direction, setSelect(spec, "direction", data.directions, { "data-key": `${id}:direction` })),
        ...pointControls(spec, "anchor", id, text.anchor),
      ];
    }
    return [];
  }

  function pointControls(spec, key, id, label) {
    const point = spec[key] || { kind: "today" };
    spec[key] = point;
    const kinds = data.points.filter(([kind]) => kind !== "field" || dateFields.length);
    const out = [labelled(label, setSelect(spec, `${key}.kind`, kinds, { "data-key": `${id}:${key}-kind`, "data-reset-point": key }), "wf-point")];
    if (point.kind === "date") out.push(labelled(text.date, input(spec, `${key}.date`, "date", { "data-key": `${id}:${key}-date` })));
    if (point.kind === "field") out.push(labelled(text.field, setSelect(spec, `${key}.field`, dateFields.map((f) => [f.name, f.label]), { "data-key": `${id}:${key}-field` })));
    if (point.kind === "start_of" || point.kind === "end_of") {
      out.push(labelled(text.period, setSelect(spec, `${key}.period`, data.periods, { "data-key": `${id}:${key}-period` })));
    }
    if (point.kind === "offset") {
      const amount = Number(point.amount) || 0;
      out.push(labelled(text.direction, select([["+", text.after], ["-", text.before]], amount < 0 ? "-" : "+",
        { "data-sign": `${key}.amount`, "data-key": `${id}:${key}-sign` }), "wf-short"));
      out.push(labelled(text.amount, h("input", { type: "number", min: "0", max: "1000", value: String(Math.abs(amount)),
        "data-set": `${key}.amount`, "data-type": "signed", "data-key": `${id}:${key}-amount` }), "wf-short"));
      out.push(labelled(text.unit, setSelect(spec, `${key}.unit`, data.units, { "data-key": `${id}:${key}-unit` })));
    }
    return out;
  }

  function pointDefaults(point) {
    const kind = point.kind;
    Object.keys(point).forEach((k) => { if (k !== "kind") delete point[k]; });
    if (kind === "date") point.date = today();
    if (kind === "field") point.field = dateFields.length ? dateFields[0].name : "";
    if (kind === "start_of" || kind === "end_of") point.period = "month";
    if (kind === "offset") Object.assign(point, { amount: 1, unit: "days" });
  }

  // -- events on the tree --------------------------------------------------------------
  function nodeOfEvent(event) {
    const row = event.target.closest("[data-node]");
    return row ? row.wfNode : null;
  }

  tree.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const node = nodeOfEvent(event);
    const action = button.dataset.action;
    if (action === "remove-value") {
      node.value.splice(Number(button.dataset.index), 1);
      return changed(false, true);
    }
    focusKey = button.dataset.key;
    if (action === "add-condition" || action === "add-group") return add(node, action);
    if (action === "up") moveUp(node);
    else if (action === "down") moveDown(node);
    else if (action === "indent") indent(node);
    else if (action === "outdent") outdent(node);
    else if (action === "remove") {
      detach(node);
      focusKey = "root:add-condition";
    }
    changed(true);
    announce(text.moved);
  });

  root.querySelectorAll(".wf-add [data-action]").forEach((button) => button.addEventListener("click", () => {
    const action = button.dataset.action;
    if (action === "add-action") return openDialog(null);
    add(state.root, action);
  }));

  function add(group, action) {
    const node = action === "add-group" ? { group: "all_of", conditions: [newFilter()] } : newFilter();
    group.conditions.push(node);
    focusKey = `${idOf(isGroup(node) ? node.conditions[0] : node)}:field`;
    changed(true);
  }

  tree.addEventListener("change", (event) => {
    const target = event.target;
    const node = nodeOfEvent(event);
    if (!node) return;
    focusKey = target.dataset.key || null;
    const kind = target.dataset.change;
    if (kind === "group") node.group = target.value;
    else if (kind === "field") setField(node, target.value);
    else if (kind === "when") {
      node.when = target.value;
      if (data.noOperator.includes(node.when)) {
        delete node.operator;
        VALUE_KEYS.forEach((k) => delete node[k]);
      } else if (!node.operator) setField(node, node.field);
    } else if (kind === "operator") {
      node.operator = target.value;
      resetValue(node);
    } else if (target.dataset.many) {
      const values = new Set(Array.isArray(node.value) ? node.value : []);
      if (target.checked) values.add(target.value); else values.delete(target.value);
      const order = (fields[node.field].options || []).map(([v]) => v);
      node.value = order.filter((v) => values.has(v));
      return changed(false);
    } else if (target.dataset.sign) {
      const amount = Math.abs(Number(getPath(node, target.dataset.sign)) || 0);
      setPath(node, target.dataset.sign, target.value === "-" ? -amount : amount);
      return changed(false);
    } else if (target.dataset.set) {
      writeInput(node, target);
      if (target.dataset.resetPoint) pointDefaults(node[target.dataset.resetPoint]);
      else return changed(false);
    } else return;
    changed(false, true);
  });
  tree.addEventListener("input", (event) => {
    const node = nodeOfEvent(event);
    if (node && event.target.dataset.set && event.target.tagName !== "SELECT") {
      writeInput(node, event.target);
      sync();
    }
  });
  tree.addEventListener("picker:chosen", (event) => {
    const node = nodeOfEvent(event);
    const into = event.target.closest("[data-pick-into]").dataset.pickInto;
    data.labels[event.detail.id] = event.detail.label;
    if (into === "value+") {
      node.value = Array.isArray(node.value) ? node.value : [];
      if (!node.value.includes(event.detail.id)) node.value.push(event.detail.id);
      focusKey = `${idOf(node)}:add`;
      changed(false, true);
    } else {
      node[into] = event.detail.id;
      sync();
    }
  });

  function writeInput(node, target) {
    const type = target.dataset.type;
    let value = target.value;
    if (type === "int" || type === "month") value = value === "" ? null : Number(value);
    if (type === "signed") {
      const sign = target.closest(".wf-body").querySelector(`[data-sign="${target.dataset.set}"]`);
      value = (sign && sign.value === "-" ? -1 : 1) * Math.abs(Number(value) || 0);
    }
    if (type === "lines") value = value.split("\n").map((s) => s.trim()).filter(Boolean);
    setPath(node, target.dataset.set, value);
  }

  // drag and drop (pointer devices): rows move before or after the row dropped on; a row
  // dropped on a group's lower half goes first into it; moving the pointer right or left
  // while dragging indents or outdents it, one level per INDENT_PX
  const INDENT_PX = 32;
  tree.addEventListener("dragstart", (event) => {
    const handle = event.target.closest && event.target.closest(".wf-handle");
    if (!handle) return;
    const row = handle.closest("[data-node]");
    dragging = { node: row.wfNode, startX: event.clientX };
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", "condition");
    try { event.dataTransfer.setDragImage(row, 12, 12); } catch (e) { /* older browsers */ }
    row.classList.add("drag-source");
  });
  tree.addEventListener("dragend", () => {
    dragging = null;
    tree.querySelectorAll(".drag-source, .drop-before, .drop-after").forEach((n) =>
      n.classList.remove("drag-source", "drop-before", "drop-after"));
  });
  tree.addEventListener("dragover", (event) => {
    if (!dragging || !dragging.node) return;
    const row = event.target.closest("[data-node]");
    event.preventDefault();
    tree.querySelectorAll(".drop-before, .drop-after").forEach((n) => n.classList.remove("drop-before", "drop-after"));
    if (!row) return;
    const box = row.getBoundingClientRect();
    row.classList.add(event.clientY < box.top + box.height / 2 ? "drop-before" : "drop-after");
  });
  tree.addEventListener("drop", (event) => {
    if (!dragging || !dragging.node) return;
    event.preventDefault();
    const node = dragging.node;
    const row = event.target.closest("[data-node]");
    const target = row ? row.wfNode : null;
    if (target && target !== node && !contains(node, target)) {
      const box = row.getBoundingClientRect();
      const after = event.clientY >= box.top + box.height / 2;
      detach(node);
      if (after && isGroup(target)) target.conditions.unshift(node);
      else {
        const parent = parentOf(target);
        parent.conditions.splice(parent.conditions.indexOf(target) + (after ? 1 : 0), 0, node);
      }
    }
    const steps = Math.trunc((event.clientX - dragging.startX) / INDENT_PX);
    for (let i = 0; i < Math.abs(steps); i++) if (!(steps > 0 ? indent(node) : outdent(node))) break;
    dragging = null;
    changed(true);
    announce(text.moved);
  });

  // -- actions ------------------------------------------------------------------------
  const typesByName = Object.fromEntries(data.actionTypes.map((t) => [t.name, t]));
  const choiceLabel = (kind, value) => {
    const found = (data.choices[kind] || []).find(([v]) => v === value);
    return found ? found[1] : value;
  };

  function describeParam(param, value) {
    if (value === undefined || value === null || value === "" ||
        (Array.isArray(value) && !value.length)) return null;
    let shown;
    if (param.kind === "field_values" && typeof value === "object") {
      shown = Object.entries(value).map(([k, v]) => `${(fields[k] || { label: k }).label} = ${v}`).join(", ");
    } else if (param.kind === "recipients" && Array.isArray(value)) {
      shown = value.map((r) => r.address || (r.field && (fields[r.field] || { label: r.field }).label) ||
        (data.recipientKinds.find(([k]) => k === r.kind) || [null, r.kind])[1]).join(", ");
    } else if (param.kind === "choice") {
      shown = (param.choices.find(([v]) => v === String(value)) || [null, String(value)])[1];
    } else if (param.kind === "field") {
      shown = (fields[value] || { label: value }).label;
    } else if (param.kind === "user") {
      shown = data.labels[value] || value;
    } else if (["team", "module", "template", "workflow"].includes(param.kind)) {
      shown = choiceLabel(param.kind, value);
    } else shown = String(value);
    return h("li", {}, h("span", { className: "muted", text: `${param.label}: ` }), shown);
  }

  function delayText(action) {
    if (!action.delay) return text.atOnce;
    const unit = (data.delayUnits.find(([k]) => k === action.delay.unit) || [null, action.delay.unit])[1];
    return fmt(text.delayIs, { amount: action.delay.amount, unit }) + (action.unique ? ` · ${text.uniqueShort}` : "");
  }

  function renderActions() {
    const top = problemNote("actions", []);
    const items = state.actions.map((action, i) => {
      const type = typesByName[action.type];
      const name = fmt(text.actionN, { number: i + 1 });
      const card = h("li", { className: "wf-action card", "data-index": String(i), draggable: "true", "aria-label": name },
        h("div", { className: "wf-action-head" },
          h("span", { className: "wf-handle", "aria-hidden": "true", title: text.drag }, "⠿"),
          h("strong", { className: "wf-action-title", text: type ? type.label : String(action.type) }),
          h("span", { className: "badge", text: delayText(action) }),
          h("span", { className: "wf-row-buttons" },
            iconButton("↑", text.moveUp, "action-up", `a${i}:up`, i === 0),
            iconButton("↓", text.moveDown, "action-down", `a${i}:down`, i === state.actions.length - 1),
            h("button", { type: "button", className: "small", "data-action": "action-edit", "data-key": `a${i}:edit`,
                          "aria-haspopup": "dialog" }, text.editAction),
            iconButton("×", fmt(text.removeNamed, { name }), "action-remove", `a${i}:remove`, false))),
        type ? h("ul", { className: "wf-action-params" }, type.params.map((p) => describeParam(p, action[p.name]))) : null,
        problemNote("actions", [i]));
      if (problemsAt("actions", [i]).length) card.classList.add("invalid");
      return card;
    });
    actionList.replaceChildren(...(top ? [h("li", { className: "wf-problem-item" }, top)] : []), ...items);
    if (!state.actions.length) actionList.append(h("li", { className: "muted wf-empty", text: text.noActions }));
  }

  actionList.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const i = Number(button.closest("[data-index]").dataset.index);
    focusKey = button.dataset.key;
    const action = button.dataset.action;
    if (action === "action-edit") return openDialog(i);
    if (action === "action-up" && i > 0) {
      [state.actions[i - 1], state.actions[i]] = [state.actions[i], state.actions[i - 1]];
      focusKey = `a${i - 1}:up`;
    } else if (action === "action-down" && i < state.actions.length - 1) {
      [state.actions[i + 1], state.actions[i]] = [state.actions[i], state.actions[i + 1]];
      focusKey = `a${i + 1}:down`;
    } else if (action === "action-remove") {
      state.actions.splice(i, 1);
      focusKey = "add-action";
    }
    changed(true);
  });
  actionList.addEventListener("dragstart", (event) => {
    const card = event.target.closest && event.target.closest("[data-index]");
    if (!card || event.target.closest("button")) return;
    dragging = { action: Number(card.dataset.index) };
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", "action");
    card.classList.add("drag-source");
  });
  actionList.addEventListener("dragover", (event) => {
    if (dragging && dragging.action !== undefined) event.preventDefault();
  });
  actionList.addEventListener("drop", (event) => {
    if (!dragging || dragging.action === undefined) return;
    event.preventDefault();
    const card = event.target.closest("[data-index]");
    if (card) {
      const to = Number(card.dataset.index);
      const [moved] = state.actions.splice(dragging.action, 1);
      state.actions.splice(to, 0, moved);
    }
    dragging = null;
    changed(true);
  });
  actionList.addEventListener("dragend", () => { dragging = null; });

  // -- the action dialog ----------------------------------------------------------------
  const dialogForm = dialog.querySelector("[data-action-form]");
  const typeSelect = dialog.querySelector("[data-action-type]");
  const paramsBox = dialog.querySelector("[data-params]");
  const delayBox = dialog.querySelector("[data-delay]");
  const dialogError = dialog.querySelector("[data-dialog-error]");
  let editing = null;  // index, or null for a new action
  let draft = {};
  typeSelect.replaceChildren(h("option", { value: "", text: text.chooseAction }),
    ...data.actionTypes.map((t) => h("option", { value: t.name, text: t.label })));
  dialogForm.elements.delay_unit.replaceChildren(...data.delayUnits.map(([v, l]) => h("option", { value: v, text: l })));

  function openDialog(index) {
    editing = index;
    draft = index === null ? {} : JSON.parse(JSON.stringify(state.actions[index]));
    typeSelect.value = draft.type || "";
    typeSelect.disabled = index !== null && Boolean(typesByName[draft.type]);
    const delay = draft.delay;
    dialogForm.elements.timing.value = delay ? "delay" : "now";
    dialogForm.elements.delay_amount.value = delay ? String(delay.amount) : "1";
    dialogForm.elements.delay_unit.value = delay ? delay.unit : "days";
    dialogForm.elements.unique.checked = Boolean(draft.unique);
    dialogError.hidden = true;
    dialog.returnValue = "";  // Escape keeps the last one: only a new "Apply" applies
    drawParams();
    if (typeof dialog.showModal === "function") dialog.showModal(); else dialog.setAttribute("open", "");
    (index === null ? typeSelect : paramsBox.querySelector("input, select, textarea") || typeSelect).focus();
  }
  typeSelect.addEventListener("change", () => { draft = { type: typeSelect.value }; drawParams(); });

  function drawParams() {
    const type = typesByName[typeSelect.value];
    delayBox.hidden = !type || !type.canDelay;
    paramsBox.replaceChildren(...(type ? type.params.map((p) => paramControl(p, draft[p.name])) : []));
    paramsBox.querySelectorAll("[data-picker]").forEach((node) => { if (typeof pickers === "function") pickers(node.parentNode); });
  }

  function paramControl(param, value) {
    const label = param.label + (param.required ? " *" : "");
    const wrap = (control) => h("div", { className: "field", "data-param": param.name, "data-kind": param.kind },
      h("label", { text: label }), control);
    const listed = data.choices[param.kind];
    if (param.kind === "textarea") return wrap(h("textarea", { rows: "4", value: value || "", "data-value": "" }));
    if (param.kind === "number") return wrap(h("input", { type: "number", value: value === undefined ? "" : String(value), "data-value": "" }));
    if (param.kind === "url") return wrap(h("input", { type: "url", value: value || "", "data-value": "", placeholder: "https://" }));
    if (param.kind === "choice") return wrap(select([["", text.none], ...param.choices.filter(([v]) => v !== "")], value, { "data-value": "" }));
    if (param.kind === "field") return wrap(select([["", text.choose], ...data.fields.map((f) => [f.name, f.label])], value, { "data-value": "" }));
    if (param.kind === "user") {
      const pick = h("div", { className: "picker", "data-picker": true, "data-source": "/users/pick" },
        h("input", { type: "hidden", value: value || "", "data-value": "" }),
        h("input", { type: "search", autocomplete: "off", placeholder: text.typeToSearch,
                     value: value ? data.labels[value] || value : "" }),
        h("ul", { className: "picker-results", role: "listbox", hidden: true }));
      pick.addEventListener("picker:chosen", (e) => { data.labels[e.detail.id] = e.detail.label; });
      return wrap(pick);
    }
    if (listed) return wrap(select([["", text.choose], ...listed], value, { "data-value": "" }));
    if (param.kind === "field_values") {
      const box = h("div", { className: "wf-pairs" });
      const addRow = (name, v) => box.append(h("div", { className: "wf-pair" },
        select([["", text.chooseField], ...data.fields.map((f) => [f.name, f.label])], name, { "aria-label": text.field, "data-pair": "field" }),
        h("input", { value: v === undefined || v === null ? "" : String(v), "aria-label": text.value, "data-pair": "value" }),
        h("button", { type: "button", className: "icon danger", "aria-label": text.remove, title: text.remove,
                      onclick: (e) => e.target.closest(".wf-pair").remove() }, "×")));
      Object.entries(value && typeof value === "object" ? value : {}).forEach(([k, v]) => addRow(k, v));
      if (!box.children.length) addRow("", "");
      return wrap(h("div", {}, box, h("button", { type: "button", className: "small", onclick: () => addRow("", "") }, `+ ${text.addValue}`)));
    }
    if (param.kind === "recipients") {
      const box = h("div", { className: "wf-pairs" });
      const linkFields = data.fields.filter((f) => f.family === "link");
      const addRow = (r) => {
        const kind = select(data.recipientKinds, r.kind || "assigned_user", { "aria-label": text.kind, "data-pair": "kind" });
        const fieldSel = select(linkFields.map((f) => [f.name, f.label]), r.field, { "aria-label": text.contactField, "data-pair": "field" });
        const address = h("input", { type: "email", value: r.address || "", "aria-label": text.address, placeholder: text.address, "data-pair": "address" });
        const sync = () => { fieldSel.hidden = kind.value !== "related_contact"; address.hidden = kind.value !== "address"; };
        kind.addEventListener("change", sync);
        sync();
        box.append(h("div", { className: "wf-pair" }, kind, fieldSel, address,
          h("button", { type: "button", className: "icon danger", "aria-label": text.remove, title: text.remove,
                        onclick: (e) => e.target.closest(".wf-pair").remove() }, "×")));
      };
      (Array.isArray(value) ? value : []).forEach(addRow);
      if (!box.children.length) addRow({ kind: "assigned_user" });
      return wrap(h("div", {}, box, h("button", { type: "button", className: "small", onclick: () => addRow({ kind: "assigned_user" }) }, `+ ${text.addRecipient}`)));
    }
    return wrap(h("input", { type: "text", value: value === undefined || value === null ? "" : String(value), "data-value": "" }));
  }

  function readParams(type) {
    const out = {};
    const missing = [];
    type.params.forEach((param) => {
      const box = paramsBox.querySelector(`[data-param="${param.name}"]`);
      let value;
      if (param.kind === "field_values") {
        value = {};
        box.querySelectorAll(".wf-pair").forEach((row) => {
          const name = row.querySelector('[data-pair="field"]').value;
          if (name) value[name] = row.querySelector('[data-pair="value"]').value;
        });
        if (!Object.keys(value).length) value = null;
      } else if (param.kind === "recipients") {
        value = [...box.querySelectorAll(".wf-pair")].map((row) => {
          const kind = row.querySelector('[data-pair="kind"]').value;
          if (kind === "related_contact") return { kind, field: row.querySelector('[data-pair="field"]').value };
          if (kind === "address") return { kind, address: row.querySelector('[data-pair="address"]').value.trim() };
          return { kind };
        });
        if (!value.length) value = null;
      } else {
        value = box.querySelector("[data-value]").value;
        if (param.kind === "number" && value !== "") value = Number(value);
        if (value === "") value = null;
      }
      if (value === null) { if (param.required) missing.push(param.label); } else out[param.name] = value;
    });
    return { out, missing };
  }

  dialog.addEventListener("close", () => {
    if (dialog.returnValue !== "apply") return;
    const type = typesByName[typeSelect.value];
    if (!type) return;
    const { out, missing } = readParams(type);
    const action = { type: type.name };
    Object.entries(draft).forEach(([k, v]) => {  // keys this editor does not know stay
      if (!["type", "delay", "unique"].includes(k) && !type.params.some((p) => p.name === k)) action[k] = v;
    });
    Object.assign(action, out);
    const timed = type.canDelay && dialogForm.elements.timing.value === "delay";
    action.delay = timed ? { amount: Math.max(1, Math.trunc(Number(dialogForm.elements.delay_amount.value) || 1)),
                             unit: dialogForm.elements.delay_unit.value } : null;
    action.unique = timed && dialogForm.elements.unique.checked;
    if (editing === null) { state.actions.push(action); focusKey = `a${state.actions.length - 1}:edit`; }
    else { state.actions[editing] = action; focusKey = `a${editing}:edit`; }
    if (missing.length) {
      state.problems = state.problems.filter((p) => !(p.scope === "actions"));
      state.problems.push({ scope: "actions", path: [editing === null ? state.actions.length - 1 : editing],
                            text: `${missing.join(", ")} ${text.required}` });
    }
    changed(false, true);
  });
  dialogForm.addEventListener("submit", (event) => {
    if (event.submitter && event.submitter.value === "apply" && !typeSelect.value) {
      event.preventDefault();
      dialogError.textContent = `${text.actionType} ${text.required}`;
      dialogError.hidden = false;
    }
  });

  // -- writing the forms ------------------------------------------------------------------
  function sync() {
    const conditions = JSON.stringify(state.root, null, 1);
    const actions = JSON.stringify(state.actions, null, 1);
    document.querySelectorAll('[data-json="conditions"]').forEach((n) => { n.value = conditions; });
    document.querySelectorAll('[data-json="actions"]').forEach((n) => { n.value = actions; });
  }
  function announce(message) {
    if (status) status.textContent = message;
  }
  let dirty = false;
  // structural: the tree's shape moved (problems placed by path no longer fit); redraw: a
  // control that decides other controls changed (a value typed in redraws nothing, so the
  // click that ends the typing still lands on its button)
  function changed(structural, redraw = false) {
    if (structural) state.problems = state.problems.filter((p) => p.scope !== "conditions" || !p.path.length);
    if (redraw || structural) render();
    sync();
    dirty = true;
    announce(text.changed);
  }
  function render() {
    renderTree();
    renderActions();
    tree.querySelectorAll("[data-picker]").forEach((node) => { if (typeof pickers === "function") pickers(node.parentNode); });
    if (focusKey) {
      const target = document.querySelector(`[data-key="${CSS.escape(focusKey)}"]`);
      if (target && !target.disabled) target.focus();
      else if (target) (target.closest("[data-node], [data-index]") || root).querySelector("button:not([disabled])")?.focus();
      focusKey = null;
    }
  }
  // the JSON textareas: an edit there replaces the tree (when it parses)
  document.querySelectorAll('textarea[data-json]').forEach((area) => area.addEventListener("change", () => {
    try {
      const value = JSON.parse(area.value || (area.dataset.json === "actions" ? "[]" : "{}"));
      if (area.dataset.json === "actions" && Array.isArray(value)) state.actions = value;
      if (area.dataset.json === "conditions") state.root = normalizeGroup(value);
      render();
    } catch (e) { /* the server says what is wrong with it */ }
  }));
  document.getElementById("wf-save").addEventListener("submit", () => { dirty = false; sync(); });
  window.addEventListener("beforeunload", (event) => { if (dirty) event.preventDefault(); });

  // the test form: another "previous value" row
  const previous = document.querySelector("[data-previous]");
  const addPrevious = document.querySelector('[data-action="add-previous"]');
  if (previous && addPrevious) {
    addPrevious.addEventListener("click", () => {
      const row = previous.firstElementChild.cloneNode(true);
      row.querySelector("select").value = "";
      row.querySelector("input").value = "";
      previous.append(row);
      row.querySelector("select").focus();
    });
  }
  const testForm = document.getElementById("wf-test-form");
  if (testForm) testForm.addEventListener("submit", () => { sync(); dirty = false; });

  render();
  sync();
}
