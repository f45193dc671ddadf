// The report builder (plugins/reports/web.py). Everything works without this file: the
// builder is a plain form. With it the builder reloads its field choices when the module
// changes, offers only the aggregates and date parts that fit the chosen field, and names
// the columns in the sort and chart selects. (A report's chart is drawn by the site's one
// chart script, core/web/static/charts.js, from the option core/web/charts.py builds.)
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // -- the builder --------------------------------------------------------------------------
  const moduleForm = document.querySelector("[data-module-form]");
  if (moduleForm) {
    const select = moduleForm.querySelector("[data-module-select]");
    moduleForm.querySelector("[data-module-button]").hidden = true;
    select.addEventListener("change", () => {
      const name = document.querySelector("[data-name-input]");
      const carry = moduleForm.querySelector("[data-carry-name]");
      if (name && carry) carry.value = name.value;
      moduleForm.submit();
    });
  }

  const builder = document.querySelector("[data-builder]");
  if (builder) {
    const fits = { // aggregate -> the field kinds it takes ("many": related records)
      "": (kind, many) => !many, count: () => true,
      sum: (kind) => kind === "number", avg: (kind) => kind === "number",
      min: (kind) => ["number", "date", "datetime"].includes(kind),
      max: (kind) => ["number", "date", "datetime"].includes(kind),
    };
    const chosen = (select) => select.selectedOptions[0] || select.options[0];
    const allow = (select, ok) => {
      [...select.options].forEach((option) => { option.disabled = !ok(option.value); });
      if (chosen(select).disabled) {
        const first = [...select.options].find((option) => !option.disabled);
        if (first) first.selected = true;
      }
    };
    const refresh = (row) => {
      const field = row.querySelector("[data-field-select]");
      if (!field) return;
      const option = chosen(field);
      const kind = option.dataset.kind || "other";
      const many = option.hasAttribute("data-many");
      const aggregate = row.querySelector("[data-aggregate]");
      if (aggregate && field.value) allow(aggregate, (value) => fits[value](kind, many));
      const part = row.querySelector("[data-date-part]");
      if (part) allow(part, (value) => value === "" || kind === "date" || kind === "datetime");
    };
    const nameColumns = () => {
      const rows = [...builder.querySelectorAll("[data-rows=c] [data-row]")];
      builder.querySelectorAll("[data-column-choice]").forEach((select) => {
        [...select.options].forEach((option) => {
          const row = rows[Number(option.value)];
          if (option.value === "" || !row) return;
          const field = row.querySelector("[data-field-select]");
          const label = row.querySelector("input[name$=_label]").value.trim();
          const aggregate = row.querySelector("[data-aggregate]");
          const text = label || (field.value ? `${chosen(field).textContent.trim()}` +
            (aggregate.value ? ` (${chosen(aggregate).textContent.trim()})` : "") : "");
          option.hidden = !field.value;
          option.textContent = `${Number(option.value) + 1}. ${text}`;
        });
      });
    };
    // one blank row shows; "Add a column" (a filter) shows the next
    builder.querySelectorAll("[data-rows][data-add]").forEach((list) => {
      const rows = [...list.querySelectorAll(":scope > [data-row]")];
      let shown = false;
      rows.forEach((row) => {
        if (row.querySelector("[data-field-select]").value || row.classList.contains("invalid")) return;
        row.hidden = shown;
        shown = true;
      });
      const add = document.createElement("button");
      add.type = "button";
      add.className = "builder-add";
      add.textContent = `+ ${list.dataset.add}`;
      add.hidden = !rows.some((row) => row.hidden);
      add.addEventListener("click", () => {
        const next = rows.find((row) => row.hidden);
        if (next) {
          next.hidden = false;
          next.querySelector("select").focus();
        }
        add.hidden = !rows.some((row) => row.hidden);
      });
      list.after(add);
    });
    builder.querySelectorAll("[data-row]").forEach(refresh);
    nameColumns();
    builder.addEventListener("change", (event) => {
      const row = event.target.closest("[data-row]");
      if (row) refresh(row);
      nameColumns();
    });
    builder.addEventListener("input", (event) => {
      if (event.target.matches("input[name$=_label]")) nameColumns();
    });
  }
});
