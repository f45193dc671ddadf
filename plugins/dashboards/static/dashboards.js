// Dashboards (plugins/dashboards): rearranging the home page's dashlets.
//
// Charts: each [data-chart] is drawn by the site's one chart script (core/web/static/
// charts.js, from the option core/web/charts.py builds); after the dashlets move this
// file dispatches "crbm:relayout" so each chart fits its new box. The table under each
// chart holds the same figures (and links) for everyone.
//
// Rearranging: SortableJS on the grid (mouse, pen and touch; on a touch screen a dashlet is
// dragged by its grip, so a finger elsewhere scrolls). The new order is posted (CSRF); a
// refusal puts the dashlets back and says why. Each dashlet's menu has Move up / Move down
// (forms that work without this script): the keyboard and tap alternative, done here in
// place with the same POST of the whole order.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const grid = document.querySelector("[data-dash]");
  if (!grid) return;
  const status = document.querySelector("[data-dash-status]");

  const say = (text, error) => {
    status.textContent = text || "";
    status.hidden = !text;
    status.classList.toggle("error", Boolean(error));
  };

  const relayout = () => document.dispatchEvent(new CustomEvent("crbm:relayout"));

  // -- rearranging -----------------------------------------------------------------------
  const order = () => [...grid.querySelectorAll("[data-dashlet]")].map((d) => d.dataset.dashlet);

  const save = async (before) => {
    const body = new URLSearchParams({ _csrf: grid.dataset.csrf, order: order().join(",") });
    let data;
    try {
      const response = await fetch(grid.dataset.order, { method: "POST", body, credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRF-Token": grid.dataset.csrf } });
      data = await response.json();
    } catch (error) {
      data = { ok: false, error: grid.dataset.failed };
    }
    if (!data.ok) {  // put them back as they were
      const byId = Object.fromEntries([...grid.querySelectorAll("[data-dashlet]")].map((d) => [d.dataset.dashlet, d]));
      before.forEach((id) => grid.appendChild(byId[id]));
      say(data.error || grid.dataset.failed, true);
      return;
    }
    // the first change stores the user's starting dashboard: the next posts go to it
    if (data.tab && !grid.dataset.order.includes(`/${data.tab}/`)) {
      const fix = (url) => url.replace(/\/dashboards\/[^/]+\//, `/dashboards/${data.tab}/`);
      grid.dataset.order = fix(grid.dataset.order);
      document.querySelectorAll("form[action^='/dashboards/']").forEach((f) => {
        if (!f.action.endsWith("/dashboards/new")) f.setAttribute("action", fix(f.getAttribute("action")));
      });
    }
    say(grid.dataset.saved);
    relayout();
  };

  const touch = window.matchMedia("(pointer: coarse)").matches;
  if (typeof Sortable !== "undefined") {
    let before = [];
    Sortable.create(grid, {
      draggable: "[data-dashlet]",
      handle: touch ? ".dashlet-grip" : ".dashlet-head",
      filter: "summary, button, select, input, a, .dashlet-menu-body",
      preventOnFilter: false,
      animation: 150,
      ghostClass: "dashlet-ghost",
      chosenClass: "dashlet-chosen",
      forceFallback: touch,
      fallbackTolerance: 3,
      scroll: true,
      onStart: () => { before = order(); },
      onEnd: (event) => {
        if (event.oldIndex !== event.newIndex) save(before);
      },
    });
  }

  // Move up / Move down in place (keyboard, tap): the same order POST
  grid.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-move]");
    if (!button) return;
    event.preventDefault();
    const dashlet = button.closest("[data-dashlet]");
    const before = order();
    if (button.dataset.move === "up" && dashlet.previousElementSibling) {
      grid.insertBefore(dashlet, dashlet.previousElementSibling);
    } else if (button.dataset.move === "down" && dashlet.nextElementSibling) {
      grid.insertBefore(dashlet.nextElementSibling, dashlet);
    } else {
      return;
    }
    save(before).then(() => {
      const summary = dashlet.querySelector(".dashlet-menu summary");
      dashlet.querySelector(".dashlet-menu").open = true;
      button.focus();
      if (!document.activeElement || document.activeElement === document.body) summary.focus();
    });
  });

  // one menu open at a time; Escape closes it
  document.addEventListener("click", (event) => {
    document.querySelectorAll(".dashlet-menu[open], .dash-pop[open]").forEach((d) => {
      if (!d.contains(event.target)) d.open = false;
    });
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    document.querySelectorAll(".dashlet-menu[open], .dash-pop[open]").forEach((d) => {
      d.open = false;
      d.querySelector("summary").focus();
    });
  });
});
