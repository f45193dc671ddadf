// Studio: Module Designer and field editor. Every form also works without this script
// (the server shows the inputs of the chosen type and checks everything again); this
// shows only the inputs that matter, builds the conditional options grid and checks a
// formula before saving.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  toggles(document);
  document.querySelectorAll("form[data-studio-field]").forEach(fieldEditor);
});

// A checkbox with data-toggles="id" shows that element only while ticked.
function toggles(root) {
  root.querySelectorAll("input[data-toggles]").forEach((box) => {
    const target = document.getElementById(box.dataset.toggles);
    if (!target) return;
    const update = () => showPart(target, box.checked);
    box.addEventListener("change", update);
    update();
  });
}

// Show or hide a part of a form; a hidden part's inputs are disabled, so they are
// neither sent nor checked by the browser.
function showPart(element, shown) {
  element.hidden = !shown;
  element.querySelectorAll("input, select, textarea").forEach((input) => {
    input.disabled = !shown;
  });
}

function fieldEditor(form) {
  const data = JSON.parse(form.querySelector("#studio-field-data").textContent || "{}");
  form.querySelectorAll(".studio-no-js").forEach((el) => { el.hidden = true; });
  const typeSelect = form.querySelector("[data-type-select]");
  const currentType = () => (typeSelect ? typeSelect.value : form.dataset.type);

  const updateTypes = () => {
    const type = currentType();
    form.querySelectorAll("[data-types]").forEach((part) => {
      showPart(part, part.dataset.types.split(" ").includes(type));
    });
    updateDynamic();
    updateSources();
    updateConditional();
  };

  // related: "** Dynamic **" asks for the modules the field may point to
  const moduleSelect = form.querySelector("[data-related-module]");
  const dynamicPart = form.querySelector("[data-dynamic-modules]");
  const updateDynamic = () => {
    if (!moduleSelect || !dynamicPart || moduleSelect.disabled) return;
    showPart(dynamicPart, moduleSelect.value === moduleSelect.dataset.dynamic);
  };

  // related_value: the fields of the module the chosen related field points to
  const relatedField = form.querySelector("[data-related-field]");
  const sourceField = form.querySelector("[data-source-field]");
  const updateSources = () => {
    if (!relatedField || !sourceField) return;
    let keep = false;
    sourceField.querySelectorAll("optgroup[data-for]").forEach((group) => {
      const shown = group.dataset.for === relatedField.value;
      group.hidden = !shown;
      group.disabled = !shown;
      if (shown && [...group.children].includes(sourceField.selectedOptions[0])) keep = true;
    });
    if (!keep) sourceField.value = "";
  };

  // depends on: the values of the chosen controlling dropdown
  const dependsSelect = form.querySelector("[data-depends-select]");
  const updateDepends = () => {
    if (!dependsSelect) return;
    form.querySelectorAll("[data-depends-values]").forEach((set) => {
      set.hidden = set.dataset.dependsValues !== dependsSelect.value;
    });
    updateConditional();
  };

  // conditional options: for each value of the controlling field, the options offered
  const optionsSelect = form.querySelector("[data-options-select]");
  const grid = form.querySelector("[data-conditional-grid]");
  const ticked = {};  // control value -> Set of own values, as the admin left them
  Object.entries(data.conditional || {}).forEach(([key, values]) => {
    ticked[key] = new Set(values);
  });
  const updateConditional = () => {
    if (!grid) return;
    grid.querySelectorAll("input[type=checkbox]").forEach((box) => {
      const key = box.name.slice("cond.".length);
      ticked[key] = ticked[key] || new Set();
      if (box.checked) ticked[key].add(box.value); else ticked[key].delete(box.value);
    });
    const controlList = dependsSelect && data.controls[dependsSelect.value];
    const own = optionsSelect && !optionsSelect.disabled ? data.lists[optionsSelect.value] : null;
    const controlValues = controlList ? data.lists[controlList] : null;
    grid.replaceChildren();
    if (!own || !controlValues) {
      const p = document.createElement("p");
      p.className = "muted small";
      p.textContent = grid.dataset.emptyText;
      grid.append(p);
      return;
    }
    controlValues.forEach(([controlValue, controlLabel]) => {
      const set = document.createElement("fieldset");
      set.className = "plain conditional-row";
      const legend = document.createElement("legend");
      legend.className = "small";
      legend.textContent = controlLabel;
      const list = document.createElement("div");
      list.className = "checklist";
      own.forEach(([value, label]) => {
        const box = document.createElement("input");
        box.type = "checkbox";
        box.name = `cond.${controlValue}`;
        box.value = value;
        box.checked = Boolean(ticked[controlValue] && ticked[controlValue].has(value));
        const text = document.createElement("label");
        text.append(box, ` ${label}`);
        list.append(text);
      });
      set.append(legend, list);
      grid.append(set);
    });
  };

  if (typeSelect) typeSelect.addEventListener("change", updateTypes);
  if (moduleSelect) moduleSelect.addEventListener("change", updateDynamic);
  if (relatedField) relatedField.addEventListener("change", updateSources);
  if (dependsSelect) dependsSelect.addEventListener("change", updateDepends);
  if (optionsSelect) optionsSelect.addEventListener("change", updateConditional);
  updateTypes();
  updateDepends();
  formulaEditor(form);
}

// The formula editor: insert functions and fields at the cursor, check before saving.
function formulaEditor(form) {
  const area = form.querySelector("textarea[data-formula]");
  if (!area) return;
  const result = form.querySelector("#formula-result");
  form.querySelectorAll("[data-insert]").forEach((button) => {
    button.addEventListener("click", () => {
      const text = button.dataset.insert;
      const start = area.selectionStart, end = area.selectionEnd;
      area.setRangeText(text, start, end, "end");
      if (text.endsWith("()")) {  // a function: the cursor goes between its parentheses
        area.setSelectionRange(start + text.length - 1, start + text.length - 1);
      }
      area.focus();
    });
  });

  const markAt = (position) => {
    const at = Math.max(0, Math.min(position, area.value.length));
    area.focus();
    area.setSelectionRange(at, Math.min(at + 1, area.value.length));
  };

  const show = (answer) => {
    result.replaceChildren();
    const line = document.createElement("p");
    if (answer.ok) {
      line.className = "formula-ok";
      line.textContent = result.dataset.okText;
      result.append(line);
      area.removeAttribute("aria-invalid");
      return;
    }
    const problem = answer.problems[0];
    const position = problem.position === null || problem.position === undefined ? 0 : problem.position;
    line.className = "error-text";
    line.textContent = `${result.dataset.errorText.replace("{position}", position)} ${problem.reason}`;
    result.append(line, marked(area.value, position));
    answer.problems.slice(1).forEach((more) => {
      const extra = document.createElement("p");
      extra.className = "error-text";
      extra.textContent = more.reason;
      result.append(extra);
    });
    area.setAttribute("aria-invalid", "true");
    markAt(position);
  };

  const check = form.querySelector("[data-check-formula]");
  if (check) {
    check.addEventListener("click", async () => {
      const params = new URLSearchParams({ text: area.value });
      if (form.dataset.ownName) params.set("field", form.dataset.ownName);
      try {
        const response = await fetch(`${form.dataset.formulaUrl}?${params}`, {
          credentials: "same-origin", headers: { Accept: "application/json" },
        });
        if (!response.ok) throw new Error(String(response.status));
        show(await response.json());
      } catch (error) {
        result.replaceChildren();
        const line = document.createElement("p");
        line.className = "error-text";
        line.textContent = result.dataset.failedText;
        result.append(line);
      }
    });
  }
  if (area.dataset.errorPosition !== undefined) markAt(Number(area.dataset.errorPosition));
}

// The formula with the character at `position` marked and a caret under it, below the
// line it is on (as the server draws it).
function marked(text, position) {
  const at = Math.max(0, Math.min(position, text.length));
  const lineStart = text.lastIndexOf("\n", at - 1) + 1;
  let lineEnd = text.indexOf("\n", at);
  if (lineEnd < 0) lineEnd = text.length;
  const pre = document.createElement("pre");
  pre.className = "formula-marked";
  pre.setAttribute("aria-hidden", "true");
  const code = document.createElement("code");
  const mark = document.createElement("mark");
  mark.textContent = at < lineEnd ? text.slice(at, at + 1) : " ";
  code.append(text.slice(0, at), mark, at < lineEnd ? text.slice(at + 1, lineEnd) : "");
  const caret = document.createElement("span");
  caret.className = "caret-line";
  caret.textContent = `${" ".repeat(at - lineStart)}^`;
  pre.append(code, "\n", caret);
  if (lineEnd < text.length) {
    const after = document.createElement("code");
    after.textContent = text.slice(lineEnd + 1);
    pre.append("\n", after);
  }
  return pre;
}
