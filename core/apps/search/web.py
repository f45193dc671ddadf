"""The global search pages.

``/search?q=...`` — every opted-in module the reader may list, grouped by module: each
module's count (capped: "1,000+"), its best hits with their highlighted snippets and
links; ``&module=<name>`` shows that module alone, a page at a time (``&page=N``).
``/search.json?q=...[&module=<name>]`` — the header box's type-ahead
(core/web/static/search.js, debounced): the best few hits and the counts ("100+"). Any input is answered: unknown modules are ignored, a
bad page number is page 1, a 10,000-character query is cut (fulltext.terms_of).
"""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.apps.search import fulltext
from core.web.pages import page

PER_MODULE = 5  # hits per module on the grouped page
PAGE_SIZE = 20  # hits per page of one module
TYPE_AHEAD = 8
# The box's counts stop at "100+" (the page's at "1,000+"): a common word seen through a
# narrow role is then found among the first hundred visible matches, not the first thousand
# — typing stays fast at a million records; the page still counts and ranks further.
TYPE_AHEAD_CAP = 100
MAX_PAGE = 50


def _page_number(text) -> int:
    text = str(text or "").strip()
    return min(int(text), MAX_PAGE) if text.isdigit() and 0 < len(text) < 4 and int(text) else 1


@page()
def search_page(request: Request, form):
    site, user = request.app.state.site, request.state.user
    params = request.query_params
    text = params.get("q", "")[:fulltext.MAX_QUERY_CHARS * 10]
    chosen = params.get("module") or ""
    modules = {m.name: m for m in fulltext.searchable(site, user)}
    if chosen not in modules:
        chosen = ""
    number = _page_number(params.get("page"))
    groups, results = [], None
    if fulltext.terms_of(text):
        if chosen:
            results = fulltext.search(site, user, text, [chosen], limit=PAGE_SIZE,
                                      offset=(number - 1) * PAGE_SIZE)
            everything = fulltext.search(site, user, text, limit=0)
            results.counts = everything.counts
            groups = [(modules[chosen], results.hits)]
        else:
            results = fulltext.search(site, user, text, limit=PER_MODULE * max(1, len(modules)))
            for name, module in modules.items():
                hits = [h for h in results.hits if h.module == name][:PER_MODULE]
                if hits:
                    groups.append((module, hits))
    count = results.counts.get(chosen, 0) if results and chosen else 0
    response = request.app.state.templates.render(
        request, "search.html", text=text, results=results, groups=groups, modules=modules,
        chosen=chosen, page_number=number,
        more=bool(chosen and count > number * PAGE_SIZE and number < MAX_PAGE))
    response.headers["Cache-Control"] = "no-store"
    return response


@page()
def search_json(request: Request, form):
    site, user = request.app.state.site, request.state.user
    text = request.query_params.get("q", "")
    labels = {m.name: str(m.label) for m in fulltext.searchable(site, user)}
    chosen = request.query_params.get("module")
    results = fulltext.search(site, user, text, [chosen] if chosen in labels else None,
                              limit=TYPE_AHEAD, cap=TYPE_AHEAD_CAP)
    return JSONResponse({
        "q": results.text, "cap": results.cap,
        "counts": [{"module": name, "label": labels.get(name, name), "count": n}
                   for name, n in results.counts.items()],
        "hits": [{**h.as_json(), "label": labels.get(h.module, h.module)}
                 for h in results.hits]},
        headers={"Cache-Control": "no-store"})


routes = [
    Route("/search", search_page, methods=["GET"]),
    Route("/search.json", search_json, methods=["GET"]),
]
