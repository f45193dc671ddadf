"""Which of a record page's collapsible panels (subpanels, Activities, History) a user keeps
open: remembered per user on the server, so it follows them from browser to browser.

One row per (user, module, panel) that is open; closing one deletes its row. The detail
page reads a user's rows for its module inside its single facts statement
(core/web/detail.py, ``open`` rows), so remembering costs the page no statement; crbm.js
posts each toggle here (``POST /panels/state``: ``panel=<module>:<name>``, ``open=0|1``).
"""
from __future__ import annotations

import re

import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Route

from core.apps.activities.panels import PANELS
from core.kernel.database import ID
from core.kernel.errors import N_, Message, NotFoundError
from core.web.pages import page

TABLE = "crbm_panel_state"
_NAME = re.compile(r"[a-z][a-z0-9_]{0,59}")


def tables(metadata) -> None:
    sa.Table(TABLE, metadata,
             sa.Column("user_id", ID, primary_key=True),
             sa.Column("module", sa.String(60), primary_key=True),
             sa.Column("panel", sa.String(60), primary_key=True))


def remember(site, user_id: str, module: str, panel: str, is_open: bool) -> None:
    table = site.tables.tables[TABLE]
    key = sa.and_(table.c.user_id == user_id, table.c.module == module, table.c.panel == panel)
    with site.engine.begin() as conn:
        conn.execute(sa.delete(table).where(key))
        if is_open:
            conn.execute(sa.insert(table).values(user_id=user_id, module=module, panel=panel))


@page()
def state_view(request, form):
    """Remember one panel open or closed for the signed-in user (204)."""
    site = request.app.state.site
    module, _, panel = str(form.get("panel") or "").partition(":")
    if not (_NAME.fullmatch(module) and _NAME.fullmatch(panel)):
        raise HTTPException(400, Message(N_("There is no such subpanel.")))
    try:
        found = site.registry.module(module)
    except NotFoundError:
        raise HTTPException(404, Message(N_("There is no such module."))) from None
    if panel not in found.relationships and panel not in PANELS:  # no made-up rows
        raise HTTPException(404, Message(N_("There is no such subpanel.")))
    remember(site, request.state.user.id, module, panel, form.get("open") == "1")
    return Response(status_code=204)


routes = [Route("/panels/state", state_view, methods=["POST"])]
