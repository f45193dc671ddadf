"""The knowledge base's pages: ``/kb`` (the category tree, browse categories → articles) and
restoring an earlier version of an article.

Contract:

- ``GET /kb``: every category the reader may list, as a tree (a parent the reader may not
  see leaves its children at the top), each with the number of articles in it the reader
  may list — one grouped statement under the reader's access predicate, so a count never
  includes an article they may not see; ``?category=<id>``: that category's path from the
  top, its subcategories and its articles (``site.records.list``: access in SQL), drafts
  marked. A category the reader may not see is a 404.
- ``POST /kb/versions/<id>/restore``: the version's title and body become the article's
  (a user who may see the version and edit the article; otherwise 404 / 403), saved
  through the record service like any edit — so the text it replaces is kept as a version.
"""
from __future__ import annotations

import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.kernel.errors import N_, Message
from core.kernel.records import Query
from core.web.pages import page
from plugins.knowledge_base.plugin import ARTICLES, CATEGORIES, VERSIONS

MAX_CATEGORIES = 2000
MAX_ARTICLES = 500


def counts(site, user) -> dict[str | None, int]:
    """category id -> how many articles in it the user may list (None: no category)."""
    module = site.registry.module(ARTICLES)
    table = site.records.table(module)
    stmt = sa.select(table.c.category_id, sa.func.count()).where(
        table.c.deleted.is_(False), site.access.predicate(user, module, "list", table)
    ).group_by(table.c.category_id)
    with site.engine.connect() as conn:
        return {(str(c) if c else None): n for c, n in conn.execute(stmt)}


def tree(categories: list[dict]) -> list[dict]:
    """Nested {category, children} from flat rows; orphans (parent unseen) at the top."""
    by_id = {c["id"]: {"category": c, "children": []} for c in categories}
    top = []
    for node in by_id.values():
        parent = by_id.get(node["category"].get("parent_id"))
        (parent["children"] if parent else top).append(node)
    return top


@page()
def kb_page(request: Request, form):
    site, user = request.app.state.site, request.state.user
    categories = site.records.list(CATEGORIES, user, Query(
        fields=["id", "name", "parent_id", "description"], sort="name",
        limit=MAX_CATEGORIES))
    found = counts(site, user)
    by_id = {c["id"]: c for c in categories}
    chosen = request.query_params.get("category")
    context = {"tree": tree(categories), "counts": found, "chosen": None, "path": [],
               "children": [], "articles": [], "uncategorized": found.get(None, 0),
               "status_labels": {o["value"]: o["label"] for o in
                                 site.registry.dropdowns.get("kb_article_status_dom", ())}}
    if chosen:
        category = by_id.get(chosen)
        if category is None:
            raise HTTPException(404, Message(N_("There is no such category.")))
        path, seen = [], set()
        node = category
        while node is not None and node["id"] not in seen:
            seen.add(node["id"])
            path.insert(0, node)
            node = by_id.get(node.get("parent_id"))
        context.update(chosen=category, path=path,
                       children=[c for c in categories if c.get("parent_id") == chosen],
                       articles=site.records.list(ARTICLES, user, Query(
                           filters={"category_id": chosen}, sort="name", limit=MAX_ARTICLES,
                           fields=["id", "name", "status", "portal", "summary",
                                   "modified_at"])))
    return request.app.state.templates.render(request, "kb_tree.html", **context)


@page()
def restore_view(request: Request, form):
    site, user = request.app.state.site, request.state.user
    version = site.records.get(VERSIONS, request.path_params["version_id"], user)  # 404
    article_id = version["article_id"]
    rights = site.records.permissions(ARTICLES, article_id, user, ("view", "edit"))
    if not rights["view"]:
        raise HTTPException(404, Message(N_("There is no such article.")))
    if not rights["edit"]:
        raise HTTPException(403, Message(N_("You may not change this article.")))
    site.records.update(ARTICLES, article_id, {"name": version["name"],
                                               "body": version["body"]}, user)
    from core.web.templating import flash

    flash(request, Message(N_("Version %(n)s was restored; the text it replaced is kept as "
                              "a version."), n=version["version_number"]), "info")
    return RedirectResponse(f"/m/{ARTICLES}/{article_id}", status_code=303)


@page()
def no_new_version(request: Request, form):
    """``/m/kb_article_versions/new`` (the Versions subpanel's "Create"): versions come from
    saving the article, so the form is not offered; back to the article, saying so."""
    from core.web.templating import flash

    flash(request, N_("Versions are kept by saving the article; they are not changed."),
          "info")
    back = request.query_params.get("return", "")
    return RedirectResponse(back if back.startswith("/m/") else f"/m/{ARTICLES}",
                            status_code=303)


routes = [Route("/kb", kb_page),
          Route(f"/m/{VERSIONS}/new", no_new_version, methods=["GET", "POST"]),
          Route("/kb/versions/{version_id}/restore", restore_view, methods=["POST"])]
