"""The notifications page (``/notifications``): the signed-in user's own, newest first, a
page at a time (``?before=<id>`` for older ones, ``?unread=1`` for unread ones only),
unread ones in bold, each linking to what it is about while the reader may still see it.
``/notifications/live.json?after=<id>`` is what the bell polls (crbm.js): the unread
count and the unread notifications newer than ``after`` (at most five), which the page
shows as a pop-up — a call's reminder comes to the screen without a reload.
"Mark read" per row and "Mark all read" are forms (POST, CSRF-checked by ``page``) that
come back to the page the reader was on; "all" means up to the newest one the page showed,
so a notification arriving meanwhile stays unread.
"""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from core.apps.notifications import inbox
from core.kernel.errors import N_
from core.web.pages import page
from core.web.templating import flash

URL = "/notifications"
LIVE_SIZE = 5  # pop-ups at a time: more is a flood, the page lists them all


def _number(text) -> int | None:
    text = str(text or "").strip()
    return int(text) if text.isdigit() and len(text) < 19 else None


def _back(form) -> str:
    """The page the form was on: the list, its unread filter and its page (nothing else)."""
    query = []
    if form.get("unread") == "1":
        query.append("unread=1")
    before = _number(form.get("before"))
    if before is not None:
        query.append(f"before={before}")
    return URL + ("?" + "&".join(query) if query else "")


@page()
def notifications_page(request: Request, form):
    site, user = request.app.state.site, request.state.user
    params = request.query_params
    unread_only = params.get("unread") == "1"
    before = _number(params.get("before"))
    found = inbox.page(site, user, before=before, unread_only=unread_only)
    response = request.app.state.templates.render(
        request, "notifications.html", found=found, unread_only=unread_only, before=before,
        newest=max((n.id for n in found.items), default=None))
    response.headers["Cache-Control"] = "no-store"
    return response


@page()
def live(request: Request, form):
    site, user = request.app.state.site, request.state.user
    after = _number(request.query_params.get("after")) or 0
    found = inbox.page(site, user, unread_only=True, size=LIVE_SIZE)
    newest = max((n.id for n in found.items), default=after)
    return JSONResponse({
        "unread": found.unread, "newest": max(newest, after),
        "new": [{"id": n.id, "message": n.message, "link": n.link}
                for n in reversed(found.items) if n.id > after]},
        headers={"Cache-Control": "no-store"})


@page()
def mark_read(request: Request, form):
    site, user = request.app.state.site, request.state.user
    notification_id = _number(request.path_params["id"])
    if notification_id is not None:
        inbox.mark_read(site, user, [notification_id])
    return RedirectResponse(_back(form), 303)


@page()
def mark_all_read(request: Request, form):
    site, user = request.app.state.site, request.state.user
    done = inbox.mark_read(site, user, upto=_number(form.get("upto")))
    if done:
        flash(request, N_("Notifications marked read."))
    return RedirectResponse(_back(form), 303)


routes = [
    Route(URL, notifications_page, methods=["GET"]),
    Route(URL + "/live.json", live, methods=["GET"]),
    Route(URL + "/read-all", mark_all_read, methods=["POST"]),
    Route(URL + "/{id}/read", mark_read, methods=["POST"]),
]
