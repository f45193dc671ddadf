"""The favourites' pages.

- ``POST /favourites/<module>/<record id>?on=1|0``: star (``on=1``) or unstar (``on=0``)
  the record — the detail page's "Add to favourites" / "Remove from favourites" button
  (``plugin.crbm_record_actions``), a form sent with the page's CSRF token (``page``
  refuses it without). The wanted state is in the URL rather than "toggle", so a form
  sent twice (a double click, a reload) leaves what the user asked for; without ``on`` it
  toggles. Only a record the user may view is starred (404 otherwise, as the record's own
  page: whether it exists is not told); any favourite may be removed. Answers with a
  redirect (no JavaScript needed): back to the record, or to the favourites page when the
  form says ``back=favourites`` (its Remove buttons) — never to an address taken from
  the form.
- ``GET /favourites``: the user's favourites grouped by module, then their recently
  viewed records (this worker's pending views written first, as the home page does).
"""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.apps.favourites import favourites
from core.kernel.errors import N_, Message
from core.web.pages import page
from core.web.templating import flash
from core.web.views import _module

URL = "/favourites"


def toggle_url(module_name: str, record_id: str, on: bool) -> str:
    return f"{URL}/{module_name}/{record_id}?on={1 if on else 0}"


def _wanted(request: Request, form, current: bool) -> bool:
    on = str(request.query_params.get("on", form.get("on", "")))
    return {"1": True, "0": False}.get(on, not current)


@page()
def toggle_view(request: Request, form):
    module = _module(request)  # 404 for no such module, 403 when the roles disable it
    site, user = request.app.state.site, request.state.user
    record_id = request.path_params["record_id"]
    current = favourites.is_favourite(site, user, module.name, record_id)
    wanted = _wanted(request, form, current)
    if wanted:
        # NotFoundError: the record's own 404 page (core/web/app.py)
        record = site.records.get(module.name, record_id, user)
        favourites.star(site, user, module.name, record_id)
        name = record.get(module.name_field) if module.name_field else None
        flash(request, Message(N_("%(name)s is in your favourites."), name=name or record_id))
    else:
        favourites.unstar(site, user, module.name, record_id)
        flash(request, Message(N_("Removed from your favourites.")))
    back = URL if form.get("back") == "favourites" else f"/m/{module.name}/{record_id}"
    return RedirectResponse(back, 303)


@page()
def favourites_view(request: Request, form):
    site, user = request.app.state.site, request.state.user
    request.app.state.recent.flush()  # this worker's views first: the one just made shows
    response = request.app.state.templates.render(
        request, "favourites.html", groups=favourites.starred(site, user),
        recent=favourites.recent(site, user))
    response.headers["Cache-Control"] = "no-store"  # it changes with every star
    return response


routes = [
    Route(URL, favourites_view),
    Route(URL + "/{module}/{record_id}", toggle_view, methods=["POST"]),
]
