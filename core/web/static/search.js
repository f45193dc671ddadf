/* The header's global search box (core/apps/search/web.py): as the user types, after a
   pause, /search.json's best hits show under the box, grouped by module with their counts;
   Enter (or "All results") opens /search. The text goes in the query string only. */
(function () {
  "use strict";
  var form = document.querySelector("[data-global-search]");
  if (!form) return;
  var input = form.querySelector("input[type=search]");
  var box = form.querySelector(".global-search-results");
  var timer = null, asked = 0;

  function close() { box.hidden = true; input.setAttribute("aria-expanded", "false"); }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function show(data) {
    box.textContent = "";
    if (!data.hits.length) {
      box.appendChild(el("p", "muted", form.dataset.emptyText));
    }
    var counts = {};
    data.counts.forEach(function (c) { counts[c.module] = c; });
    var last = null, list = null;
    data.hits.forEach(function (hit) {
      if (hit.module !== last) {
        var c = counts[hit.module];
        var head = el("div", "global-search-module", hit.label);
        if (c) head.appendChild(el("span", "nav-count", c.count > data.cap ? data.cap + "+" : String(c.count)));
        box.appendChild(head);
        list = el("ul");
        box.appendChild(list);
        last = hit.module;
      }
      var item = el("li"), link = el("a", null, hit.title);
      link.href = hit.url;
      link.setAttribute("role", "option");
      item.appendChild(link);
      if (hit.snippet) {
        var snip = el("div", "snippet");
        snip.innerHTML = hit.snippet; /* the server escaped the text, then marked it */
        item.appendChild(snip);
      }
      list.appendChild(item);
    });
    var all = el("a", "global-search-all", form.dataset.allText);
    all.href = "/search?q=" + encodeURIComponent(input.value);
    box.appendChild(all);
    box.hidden = false;
    input.setAttribute("aria-expanded", "true");
  }

  function ask() {
    var text = input.value.trim();
    if (!text) { close(); return; }
    var mine = ++asked;
    fetch("/search.json?q=" + encodeURIComponent(text.slice(0, 1000)),
          {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data && mine === asked) show(data); })
      .catch(function () {});
  }

  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(ask, 250);
  });
  input.addEventListener("keydown", function (e) { if (e.key === "Escape") close(); });
  document.addEventListener("click", function (e) { if (!form.contains(e.target)) close(); });
})();
