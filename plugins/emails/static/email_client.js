// The mail client (plugins/emails/client.py): tick all, drop files onto the compose form,
// insert an email template. Every action also works as a plain form without this file,
// except the template (a JSON fetch) and dropping (picking files works).
"use strict";

function selectAll(root) {
  root.querySelectorAll("[data-select-all]").forEach((box) => {
    box.addEventListener("change", () => {
      box.form.querySelectorAll("input[name=ids]").forEach((each) => { each.checked = box.checked; });
    });
  });
}

function dropzones(root) {
  root.querySelectorAll("[data-dropzone]").forEach((zone) => {
    const input = zone.querySelector("input[type=file]");
    const list = zone.querySelector("[data-chosen-files]");
    const show = () => {
      list.replaceChildren(...Array.from(input.files).map((file) => {
        const item = document.createElement("li");
        item.textContent = file.name;
        return item;
      }));
    };
    input.addEventListener("change", show);
    ["dragenter", "dragover"].forEach((name) => zone.addEventListener(name, (e) => {
      e.preventDefault();
      zone.classList.add("dragging");
    }));
    ["dragleave", "drop"].forEach((name) => zone.addEventListener(name, () => zone.classList.remove("dragging")));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      const all = new DataTransfer();
      Array.from(input.files).forEach((file) => all.items.add(file));
      Array.from(e.dataTransfer.files).forEach((file) => all.items.add(file));
      input.files = all.files;
      show();
    });
  });
}

function templates(root) {
  root.querySelectorAll("[data-insert-template]").forEach((button) => {
    const picker = button.closest(".template-picker");
    const select = picker.querySelector("select");
    const problem = picker.querySelector("[data-template-error]");
    button.addEventListener("click", async () => {
      problem.hidden = true;
      const query = new URLSearchParams({ module: select.dataset.templateFor, record: select.dataset.templateRecord });
      const response = await fetch(`/email/template/${encodeURIComponent(select.value)}?${query}`,
        { headers: { Accept: "application/json" } });
      const data = await response.json().catch(() => ({ error: response.statusText }));
      if (!response.ok || data.error) {
        problem.textContent = data.error || response.statusText;
        problem.hidden = false;
        return;
      }
      const form = button.form;
      const subject = form.querySelector("[name=subject]");
      if (!subject.value.trim() || /^(re|fwd):\s*$/i.test(subject.value.trim())) subject.value = data.subject;
      const area = form.querySelector("textarea[name=html]");
      const editor = area.nextElementSibling && area.nextElementSibling.querySelector("[contenteditable]");
      if (editor) {
        editor.innerHTML = data.html + editor.innerHTML;  // above the quoted message
      } else {
        area.value = data.html + area.value;
      }
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  selectAll(document);
  dropzones(document);
  templates(document);
});
