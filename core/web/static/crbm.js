// CRBM: small progressive enhancements. Every form also works (and is checked again)
// on the server; this only makes the pages livelier.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  dependentFields(document);
  pickers(document);
  fills(document);
  listSelection(document);
  confirmations(document);
  htmlEditors(document);
  passwordStrength(document);
  holidayHints(document);
  lineItems(document);
  subpanels(document);
  liveNotifications(document);
  moduleMenus(document);
});

// The top bar's module groups open as menus: a click (or Enter) on a group opens it and
// closes the others; Escape or a click elsewhere closes it. Where a theme or a phone's
// drawer shows every group open, the buttons are plain labels (CSS) and this changes
// nothing anyone sees.
function moduleMenus(root) {
  const groups = [...root.querySelectorAll(".tab-group")];
  const close = (except) => groups.forEach((group) => {
    if (group === except) return;
    group.classList.remove("open");
    group.querySelector(".tab-group-button").setAttribute("aria-expanded", "false");
  });
  groups.forEach((group) => {
    const button = group.querySelector(".tab-group-button");
    button.addEventListener("click", () => {
      const open = group.classList.toggle("open");
      button.setAttribute("aria-expanded", String(open));
      close(group);
      if (open) group.querySelector(".tab-group-menu a").focus();
    });
    group.addEventListener("keydown", (event) => {
      if (event.key !== "Escape" || !group.classList.contains("open")) return;
      close(null);
      button.focus();
    });
  });
  document.addEventListener("click", (event) => {
    if (!event.target.closest(".tab-group")) close(null);
  });
}

// Fields with depends-on show only while their controlling dropdown has one of the values;
// dropdowns with conditional options offer only the options allowed for that value.
function dependentFields(root) {
  const form = root.querySelector("form.record-form");
  if (!form) return;
  const conditional = [...form.querySelectorAll("select[data-conditional]")].map((select) => ({
    select, all: [...select.options].map((o) => o.cloneNode(true)),
    allowed: JSON.parse(select.dataset.conditional),
  }));
  const update = () => {
    form.querySelectorAll("[data-depends-on]").forEach((field) => {
      const control = form.elements[field.dataset.dependsOn];
      const values = JSON.parse(field.dataset.dependsValues || "[]");
      const shown = control && values.includes(control.value);
      field.toggleAttribute("data-hidden", !shown);
    });
    conditional.forEach(({ select, all, allowed }) => {
      const field = select.closest("[data-depends-on]");
      const control = field && form.elements[field.dataset.dependsOn];
      const offered = control ? allowed[control.value] : null;
      const current = select.value;
      select.replaceChildren(...all.filter((o) => !o.value || !offered || offered.includes(o.value))
        .map((o) => o.cloneNode(true)));
      select.value = [...select.options].some((o) => o.value === current) ? current : "";
    });
  };
  form.addEventListener("change", update);
  update();
}

// Related-record pickers: type to search, pick with click or Enter.
function pickers(root) {
  root.querySelectorAll("[data-picker]").forEach((picker) => {
    const hidden = picker.querySelector("input[type=hidden]");
    const text = picker.querySelector("input[type=search]");
    const list = picker.querySelector(".picker-results");
    let timer = null, active = -1;
    const source = () => {
      const typeField = picker.dataset.typeField;
      if (!typeField) return picker.dataset.source;
      const select = picker.closest("form").elements[typeField];
      return select && select.value ? `/m/${select.value}/pick` : picker.dataset.source;
    };
    let latest = 0;  // replies can arrive out of order: only the newest search counts
    const choose = (item) => {
      // a search still waiting (typed before this pick) must not open the list again
      clearTimeout(timer);
      latest += 1;
      hidden.value = item.dataset.id;
      text.value = item.textContent;
      list.hidden = true;
      picker.dispatchEvent(new CustomEvent("picker:chosen", { bubbles: true,
        detail: { id: item.dataset.id, label: item.textContent } }));
      if (picker.hasAttribute("data-submit")) picker.closest("form").submit();
    };
    // filter_by: the records matching other fields of this form come first (a billing
    // contact picker offers the chosen account's contacts): by_<their field>=<our value>
    const filterBy = JSON.parse(picker.dataset.filterBy || "{}");
    const query = () => {
      const params = new URLSearchParams({ q: text.value });
      const form = picker.closest("form");
      Object.entries(filterBy).forEach(([theirs, ours]) => {
        const input = form && form.elements[ours];
        if (input && input.value) params.set(`by_${theirs}`, input.value);
      });
      return params;
    };
    const search = async () => {
      const ticket = ++latest;
      const response = await fetch(`${source()}?${query()}`,
                                   { headers: { Accept: "application/json" } });
      if (!response.ok || ticket !== latest) return;
      const items = await response.json();
      if (ticket !== latest) return;
      list.replaceChildren(...items.map((item) => {
        const li = document.createElement("li");
        li.textContent = item.label;
        li.dataset.id = item.id;
        li.setAttribute("role", "option");
        li.addEventListener("mousedown", (e) => { e.preventDefault(); choose(li); });
        return li;
      }));
      active = -1;
      list.hidden = items.length === 0;
    };
    text.addEventListener("input", () => {
      if (!text.value) hidden.value = "";
      clearTimeout(timer);
      timer = setTimeout(search, 150);
    });
    text.addEventListener("focus", () => { if (!hidden.value) search(); });
    text.addEventListener("blur", () => setTimeout(() => { list.hidden = true; }, 100));
    text.addEventListener("keydown", (e) => {
      const items = [...list.children];
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        active = (active + (e.key === "ArrowDown" ? 1 : -1) + items.length) % items.length;
        items.forEach((li, i) => li.setAttribute("aria-selected", i === active));
      } else if (e.key === "Enter" && !list.hidden && items.length) {
        e.preventDefault();
        choose(items[Math.max(active, 0)]);
      }
    });
  });
}

// A related field with "fill" (core/fills.py): choosing a record fills the form's empty
// fields from it (an account's addresses and terms on a quote). A group of inputs (an
// address) is filled only when all of it is empty: what the user typed stays theirs.
function fills(root) {
  root.querySelectorAll("[data-picker][data-fill]").forEach((picker) => {
    const form = picker.closest("form");
    let latest = 0;
    picker.addEventListener("picker:chosen", async (e) => {
      const ticket = ++latest;
      let found = {};
      try {
        const response = await fetch(`${picker.dataset.fill}?id=${encodeURIComponent(e.detail.id)}`,
                                     { headers: { Accept: "application/json" } });
        if (response.ok) found = await response.json();
      } catch (error) {
        found = {};  // offline: saving fills the empty fields all the same
      }
      if (ticket !== latest || !form) return;
      Object.values(found).forEach((values) => {
        const inputs = Object.keys(values).map((name) => form.elements[name]).filter(Boolean);
        if (inputs.some((input) => input.value)) return;
        inputs.forEach((input) => {
          const value = values[input.name];
          if (input.tagName === "SELECT" && ![...input.options].some((o) => o.value === value)) return;
          input.value = value;
          input.dispatchEvent(new Event("change", { bubbles: true }));
        });
      });
    });
  });
}

// List selection: "select all on this page", then offer "all matching".
function listSelection(root) {
  const toggles = [...root.querySelectorAll("[data-select-page]")];  // table header, phone toolbar
  const boxes = [...root.querySelectorAll("input[name=ids]")];
  const matching = root.querySelector(".select-all-matching");
  toggles.forEach((all) => all.addEventListener("change", () => {
    toggles.forEach((other) => { other.checked = all.checked; });
    boxes.forEach((box) => { box.checked = all.checked; });
    if (matching) {
      matching.hidden = !all.checked;
      if (!all.checked) matching.querySelector("input").checked = false;
    }
  }));
}

function confirmations(root) {
  root.querySelectorAll("[data-confirm]").forEach((button) => {
    button.addEventListener("click", (e) => {
      if (!window.confirm(button.dataset.confirm)) e.preventDefault();
    });
  });
}

// A minimal rich-text editor over a textarea (the server sanitizes whatever arrives).
function htmlEditors(root) {
  root.querySelectorAll("textarea[data-html-editor]").forEach((area) => {
    const box = document.createElement("div");
    box.className = "html-editor";
    const bar = document.createElement("div");
    bar.className = "toolbar";
    const editor = document.createElement("div");
    editor.contentEditable = "true";
    editor.setAttribute("role", "textbox");
    editor.setAttribute("aria-multiline", "true");
    editor.innerHTML = area.value;
    [["B", "bold"], ["I", "italic"], ["• List", "insertUnorderedList"], ["Link", "createLink"]]
      .forEach(([label, command]) => {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = label;
        button.addEventListener("click", () => {
          const value = command === "createLink" ? window.prompt("URL") : null;
          if (command !== "createLink" || value) document.execCommand(command, false, value);
          editor.focus();
        });
        bar.append(button);
      });
    box.append(bar, editor);
    area.hidden = true;
    area.after(box);
    area.form.addEventListener("submit", () => { area.value = editor.innerHTML; });
  });
}

// Live password strength: length and variety, with common patterns penalized.
function passwordStrength(root) {
  root.querySelectorAll("input[data-strength]").forEach((input) => {
    const meter = document.getElementById(input.dataset.strength);
    const label = meter && document.getElementById(`${input.dataset.strength}-label`);
    input.addEventListener("input", () => {
      const score = strengthScore(input.value);
      meter.dataset.score = score;
      meter.firstElementChild.style.width = `${score * 25}%`;
      if (label) label.textContent = (label.dataset.words || "").split("|")[score] || "";
    });
  });
}

function strengthScore(password) {
  if (!password) return 0;
  let score = 0;
  if (password.length >= 8) score++;
  if (password.length >= 12) score++;
  const kinds = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((re) => re.test(password)).length;
  if (kinds >= 3) score++;
  if (password.length >= 16 || (kinds === 4 && password.length >= 10)) score++;
  if (/^(password|qwerty|123456|letmein|welcome|admin)/i.test(password) || /(.)\1{3,}/.test(password)) {
    score = Math.min(score, 1);
  }
  return Math.min(score, 4);
}


// Date fields say "Holiday: <name>" when the chosen day is one of the reader's holidays (the
// holiday set chosen in the preferences). <body> carries the JSON URL and the translated
// text only when the reader has a set; each year's holidays are fetched once per page.
function holidayHints(root) {
  const { holidays: source, holidayText: text } = document.body.dataset;
  if (!source || !text) return;
  const years = new Map();  // "2027" -> Promise of Map("2027-07-01" -> "Canada Day")
  const holidaysOf = (year) => {
    if (!years.has(year)) {
      years.set(year, fetch(`${source}?year=${year}`, { headers: { Accept: "application/json" } })
        .then((response) => (response.ok ? response.json() : []))
        .then((days) => new Map(days.map((day) => [day.date, day.name])))
        .catch(() => new Map()));  // signed out meanwhile, offline...: no hint, no error
    }
    return years.get(year);
  };
  root.querySelectorAll("form input[type=date]").forEach((input, index) => {
    const hint = document.createElement("small");
    hint.className = "holiday-hint";
    hint.id = `${input.id || `date-${index}`}-holiday`;
    hint.setAttribute("aria-live", "polite");  // empty until a holiday is picked
    input.after(hint);
    input.setAttribute("aria-describedby",
      [input.getAttribute("aria-describedby"), hint.id].filter(Boolean).join(" "));
    let latest = 0;  // answers can arrive out of order: only the newest value counts
    const update = async () => {
      const ticket = ++latest;
      const value = input.value;  // "YYYY-MM-DD", or "" while incomplete
      const name = /^\d{4}-\d{2}-\d{2}$/.test(value)
        ? (await holidaysOf(value.slice(0, 4))).get(value) : undefined;
      if (ticket !== latest) return;
      hint.textContent = name ? text.replace("{name}", () => name) : "";
    };
    input.addEventListener("input", update);
    input.addEventListener("change", update);
    update();
  });
}


// Line items editor (templates/_line_items.html): add, remove and move groups and lines.
// New rows are cloned from the editor's <template>s with fresh indexes; the server reads
// rows in the order the form sends them, so moving a row only moves its nodes. Picking a
// catalog product fills the line from the catalog's price URL when it has one.
function lineItems(root) {
  root.querySelectorAll("[data-line-items]").forEach((editor) => {
    let next = Number(editor.dataset.next || 0);  // never reuse a removed row's index
    const clone = (name, group, line) => {
      const node = editor.querySelector(`template[data-li-template="${name}"]`)
        .content.firstElementChild.cloneNode(true);
      node.querySelectorAll("[name], [id], [for], [aria-describedby]").forEach((el) => {
        ["name", "id", "for", "aria-describedby"].forEach((attr) => {
          const value = el.getAttribute(attr);
          if (value) el.setAttribute(attr, value.replace("__G__", group).replace("__L__", line));
        });
      });
      return node;
    };
    const groupIndex = (group) => group.querySelector("[name]").name.split("-")[1];
    const addLine = (group, kind) => {
      const line = clone(kind === "comment" ? "comment" : "line", groupIndex(group), next++);
      group.querySelector("[data-li-lines]").append(line);
      setUpLine(line);
      if (kind === "comment") expand(line, true);
      line.querySelector(kind === "comment" ? "textarea" : "input[name$='-name']").focus();
    };
    const expand = (line, open) => {
      line.classList.toggle("li-collapsed", !open);
      line.querySelector("[data-li=more]").setAttribute("aria-expanded", String(open));
    };
    const setUpLine = (line) => {
      pickers(line);
      const extra = line.classList.contains("li-has-extra") || line.dataset.kind === "comment";
      expand(line, extra || line.querySelector(".li-extra .invalid") !== null);
    };
    editor.querySelectorAll("[data-li-groups] [data-li-line]").forEach(setUpLine);

    editor.addEventListener("change", (e) => {
      if (e.target.matches("[data-li-kind]")) {
        const line = e.target.closest("[data-li-line]");
        line.dataset.kind = e.target.value;
        if (e.target.value === "comment") expand(line, true);
      }
    });
    editor.addEventListener("click", (e) => {
      const button = e.target.closest("button[data-li]");
      if (!button) return;
      const group = button.closest("[data-li-group]");
      const row = button.closest("[data-li-line]") || group;
      switch (button.dataset.li) {
        case "add-group": {
          const added = clone("group", next++, "");
          editor.querySelector("[data-li-groups]").append(added);
          addLine(added, "line");
          added.querySelector("input").focus();
          break;
        }
        case "add-line": addLine(group, "line"); break;
        case "add-comment": addLine(group, "comment"); break;
        case "more": expand(row, row.classList.contains("li-collapsed")); break;
        case "remove": row.remove(); break;
        case "up": {
          const before = row.previousElementSibling;
          if (before) before.before(row);
          button.focus();
          break;
        }
        case "down": {
          const after = row.nextElementSibling;
          if (after) after.after(row);
          button.focus();
          break;
        }
        default: break;
      }
    });

    const priceUrl = editor.dataset.priceUrl;
    editor.addEventListener("picker:chosen", async (e) => {
      const line = e.target.closest("[data-li-line]");
      if (!line || !priceUrl) return;
      const form = editor.closest("form");
      const params = new URLSearchParams({ product_id: e.detail.id });
      (editor.dataset.priceContext || "").split(" ").filter(Boolean).forEach((name) => {
        const input = form.elements[name];
        if (input && input.value) params.set(name, input.value);
      });
      let price = null;
      try {
        const response = await fetch(`${priceUrl}?${params}`, { headers: { Accept: "application/json" } });
        if (response.ok) price = await response.json();
      } catch (error) {
        price = null;  // offline, or no price service: the name is filled already
      }
      if (!price) return;
      const set = (field, value) => {
        const input = line.querySelector(`[name$="-${field}"]`);
        if (!input || value === null || value === undefined) return;
        if (input.tagName === "SELECT" && ![...input.options].some((o) => o.value === String(value))) return;
        input.value = value;
      };
      ["name", "part_number", "description", "unit_price", "list_price", "cost"]
        .forEach((field) => set(field, price[field]));
      set("tax_code_id", price.tax_code_id);
      if (price.kind === "product" || price.kind === "service") {
        set("kind", price.kind);
        line.dataset.kind = price.kind;
      }
      if (price.part_number || price.description) expand(line, true);
      if (price.comment_line) {  // the site adds the description as a comment line after it
        const comment = clone("comment", groupIndex(line.closest("[data-li-group]")), next++);
        line.after(comment);
        setUpLine(comment);
        expand(comment, true);
        comment.querySelector("textarea").value = price.comment_line;
      }
    });
  });
}

// Subpanels (detail.html) come with their counts; an opened one fetches its rows (a
// fragment of the subpanel's own page, which its link leads to without JavaScript). Which
// ones a user keeps open is remembered for them on the server (POST /panels/state: the
// page comes with them open, whatever the browser), and the one named in the address
// (#sub-contacts) opens too.
function subpanels(root) {
  const holder = root.querySelector("[data-panel-state]");
  const remember = (key, open) => {
    if (!holder) return;
    const body = new URLSearchParams({ _csrf: holder.dataset.csrf, panel: key, open: open ? "1" : "0" });
    // keepalive: a panel closed just before leaving the page is still remembered
    fetch(holder.dataset.panelState, { method: "POST", body, credentials: "same-origin", keepalive: true,
                                       headers: { "X-CSRF-Token": holder.dataset.csrf } })
      .catch(() => { /* offline: not remembered this time */ });
  };
  root.querySelectorAll("details.subpanel[data-rows]").forEach((panel) => {
    const box = panel.querySelector(".subpanel-rows");
    let loaded = false;
    let remembered = panel.open;  // as the server has it
    const load = async () => {
      if (loaded || panel.hasAttribute("data-empty")) return;
      loaded = true;
      box.setAttribute("aria-busy", "true");
      try {
        const response = await fetch(panel.dataset.rows, { headers: { Accept: "text/html" },
                                                           credentials: "same-origin" });
        if (!response.ok) throw new Error(response.status);
        if (response.redirected) { location.reload(); return; }  // signed out: to the login
        box.innerHTML = await response.text();
        confirmations(box);
      } catch {
        loaded = false;  // the link to the subpanel's page stays; opening again retries
      } finally {
        box.removeAttribute("aria-busy");
      }
    };
    panel.reload = () => { loaded = false; panel.removeAttribute("data-empty"); return load(); };
    panel.addEventListener("toggle", () => {
      if (panel.open) load();
      if (panel.open !== remembered) { remembered = panel.open; remember(panel.dataset.subpanel, panel.open); }
    });
    // reached by its link (back from creating a row in it): opened, and remembered open
    if (location.hash === `#${panel.id}`) panel.open = true;
    if (panel.open) load();
    if (panel.dataset.drop) dropTarget(panel);
  });
  timelines(root);
}

// Files dropped on a record's History panel become a note about the record with them
// attached (plugins/activities/attachments.py checks them: size, content); the panel's
// rows and the timeline are read again, a refusal is said in the panel.
function dropTarget(panel) {
  const holder = document.querySelector("[data-panel-state]");
  let status = panel.querySelector(".drop-status");
  if (!status) {
    status = document.createElement("p");
    status.className = "drop-status";
    status.setAttribute("role", "status");
    panel.querySelector("summary").after(status);
  }
  const hint = panel.dataset.dropHint || "";
  panel.addEventListener("dragover", (e) => {
    if (![...e.dataTransfer.types].includes("Files")) return;
    e.preventDefault();
    panel.classList.add("drop-over");
  });
  panel.addEventListener("dragleave", (e) => {
    if (!panel.contains(e.relatedTarget)) panel.classList.remove("drop-over");
  });
  panel.addEventListener("drop", async (e) => {
    if (!e.dataTransfer.files.length) return;
    e.preventDefault();
    panel.classList.remove("drop-over");
    const body = new FormData();
    body.append("_csrf", holder ? holder.dataset.csrf : "");
    [...e.dataTransfer.files].forEach((file) => body.append("file", file, file.name));
    status.className = "drop-status";
    status.textContent = panel.dataset.dropBusy || "…";
    try {
      const response = await fetch(panel.dataset.drop, { method: "POST", body, credentials: "same-origin",
                                                        headers: { Accept: "application/json" } });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(answer.error || response.statusText);
      status.textContent = panel.dataset.dropDone || "";
      const count = panel.querySelector(".count[data-panel-count]");
      if (count) {  // one note more in History
        const n = Number(count.dataset.panelCount) + 1;
        count.dataset.panelCount = String(n);
        count.textContent = n.toLocaleString(document.documentElement.lang || undefined);
      }
      panel.open = true;
      if (panel.reload) panel.reload();
      document.querySelectorAll("[data-timeline]").forEach((t) => t.reload && t.reload());
    } catch (error) {
      status.className = "drop-status error";
      status.textContent = error.message;
    }
  });
  status.textContent = hint;
}

// The record's timeline (detail.html, core/apps/activities/timeline.py): its first page
// is read when the card comes into view, a filter reads it again for one kind, and "Load
// more" appends the next page (its link carries the cursor; without JavaScript it is the
// timeline's own page).
function timelines(root) {
  root.querySelectorAll("[data-timeline]").forEach((card) => {
    const list = card.querySelector(".tl-list");
    const buttons = [...card.querySelectorAll(".tl-filter [data-kind]")];
    let kind = "";
    const fetchInto = async (url, replace) => {
      list.setAttribute("aria-busy", "true");
      try {
        const response = await fetch(url + (url.includes("?") ? "&" : "?") + "fragment=1",
                                     { headers: { Accept: "text/html" }, credentials: "same-origin" });
        if (!response.ok) throw new Error(response.status);
        if (response.redirected) { location.reload(); return; }
        const html = await response.text();
        if (replace) list.innerHTML = html;
        else { list.querySelector(".tl-more")?.remove(); list.insertAdjacentHTML("beforeend", html); }
      } catch { /* the link stays: the timeline's own page */ } finally {
        list.removeAttribute("aria-busy");
      }
    };
    card.reload = () => fetchInto(card.dataset.timeline + (kind ? `?kind=${encodeURIComponent(kind)}` : ""), true);
    buttons.forEach((button) => button.addEventListener("click", () => {
      kind = button.dataset.kind;
      buttons.forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      card.reload();
    }));
    list.addEventListener("click", (e) => {
      const more = e.target.closest("a[data-more]");
      if (!more) return;
      e.preventDefault();
      fetchInto(more.getAttribute("href"), false);
    });
    if ("IntersectionObserver" in window) {
      const seen = new IntersectionObserver((entries) => {
        if (entries.some((entry) => entry.isIntersecting)) { seen.disconnect(); card.reload(); }
      }, { rootMargin: "200px" });
      seen.observe(card);
    } else card.reload();
  });
}

// The bell (the top bar's counted /notifications link) asks every minute, while the page is
// shown, for notifications newer than the last it saw: the count follows, and each new one
// pops up at the corner (a reminder due now, a record assigned) — the page need not be
// reloaded. The first answer only sets where "new" starts. window.crbmPollNotifications()
// asks at once (the tests, a page that knows something arrived).
function liveNotifications(root) {
  const bell = root.querySelector('a.counted[href="/notifications"]');
  if (!bell) return;
  let after = null;
  const poll = async () => {
    const query = after === null ? "" : `?after=${after}`;
    let answer;
    try {
      const response = await fetch(`/notifications/live.json${query}`,
                                   {headers: {Accept: "application/json"}});
      if (!response.ok) return;
      answer = await response.json();
    } catch (error) { return; }
    if (after !== null) answer.new.forEach(popUp);
    after = answer.newest;
    showCount(bell, answer.unread);
  };
  window.crbmPollNotifications = poll;
  poll();
  setInterval(() => { if (!document.hidden) poll(); }, 60000);
}

function showCount(bell, unread) {
  let badge = bell.querySelector(".nav-count");
  if (!unread) { if (badge) badge.remove(); return; }
  if (!badge) {
    badge = document.createElement("span");
    badge.className = "nav-count";
    bell.append(" ", badge);
  }
  badge.textContent = unread > 99 ? "99+" : String(unread);
  bell.dataset.navCount = unread;
}

function popUp(notification) {
  let stack = document.querySelector(".toasts");
  if (!stack) {
    stack = document.createElement("div");
    stack.className = "toasts";
    stack.setAttribute("role", "log");
    stack.setAttribute("aria-live", "polite");
    document.body.append(stack);
  }
  const toast = document.createElement("div");
  toast.className = "toast";
  const text = document.createElement(notification.link ? "a" : "span");
  text.textContent = notification.message;
  if (notification.link) text.href = notification.link;
  const close = document.createElement("button");
  close.type = "button";
  close.className = "toast-close";
  close.setAttribute("aria-label", document.body.dataset.dismissText || "Dismiss");
  close.textContent = "×";
  close.addEventListener("click", () => toast.remove());
  toast.append(text, close);
  stack.append(toast);
}
