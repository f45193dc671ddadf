"""Signing in and out."""
from __future__ import annotations

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.records import now
from core.users import authenticate
from core.web.pages import client_ip, page


def safe_next(target: str | None) -> str:
    """Only local paths: a login link must not send anyone to another site."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@page(public=True)
def login(request: Request, form):
    templates = request.app.state.templates
    if request.method == "GET":
        if request.state.user:
            return RedirectResponse(safe_next(request.query_params.get("next")), 303)
        ended = request.session.pop("ended", None)
        return templates.render(request, "login.html", next=request.query_params.get("next", ""),
                                ended=ended)
    site = request.app.state.site
    username = str(form.get("username", "")).strip()
    user = authenticate(site, username, str(form.get("password", "")))
    if user is None:
        return templates.render(request, "login.html", status=401, username=username,
                                next=form.get("next", ""), error="Wrong user name or password.")
    users = site.tables.tables["crbm_users"]
    with site.engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == user.id).values(last_login_at=now()))
        epoch = conn.execute(sa.select(users.c.session_epoch).where(users.c.id == user.id)).scalar()
    request.session.clear()  # a fresh session: no fixation
    request.session.update(uid=user.id, epoch=epoch, ip=client_ip(request))
    return RedirectResponse(safe_next(form.get("next")), 303)


@page(public=True)
def logout(request: Request, form):
    request.session.clear()
    return RedirectResponse("/login", 303)


routes = [
    Route("/login", login, methods=["GET", "POST"]),
    Route("/logout", logout, methods=["POST"]),
]
