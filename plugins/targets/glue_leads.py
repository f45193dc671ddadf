"""Targets × leads: target lists hold leads, and "Promote to lead". Registered by the
targets manifest's ``glue`` only while the leads plugin is active. Its folder ``leads/``
adds relationships only (the lists' ``leads``, the target's ``leads`` subpanel); the
columns live on the leads' side (extends/leads.yaml: the link table, ``prospect_id``), so
disabling either plugin leaves the schema as the remaining plugins define it.

A target is promoted once: while a live lead's ``prospect_id`` names it (whoever may see
that lead: the rule holds for everyone, read on the promoting transaction).
"""
from __future__ import annotations

import contextvars
from pathlib import Path

import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.apps import conversion
from core.kernel.errors import N_, CrbmError, Message, ValidationError, VetoError
from core.kernel.hookspecs import for_modules, hookimpl
from core.web.actions import Action
from core.web.pages import page
from core.web.templating import flash

FOLDER = Path(__file__).parent / "leads"
LABELS = (N_("Leads"),)  # the overlays' labels, for the catalogs
_promoting = contextvars.ContextVar("promoting_target", default=False)


class PromoteRefused(CrbmError):
    def __init__(self, message: str, forbidden: bool = False):
        super().__init__(message)
        self.forbidden = forbidden


def promoted(site, target_id: str, connection) -> bool:
    """Whether a live lead was made from the target (``prospect_id``)."""
    leads = site.registry.module("leads")
    table = site.tables.tables[leads.table]
    return connection.execute(sa.select(table.c.id).where(
        table.c.prospect_id == str(target_id), table.c.deleted.is_(False)).limit(1)
    ).first() is not None


def promote(site, user, target_id: str) -> dict:
    """A new lead from the target (its same-named fields) pointing back at it; one
    transaction. Returns the lead."""
    target = site.records.get("prospects", target_id, user)
    if not site.records.allowed("prospects", [target_id], user, "edit") or \
            not site.access.can(user, site.registry.module("leads"), "edit"):
        raise PromoteRefused(Message(N_("You may not promote %(name)s: it takes editing the "
                                        "target and creating leads."), name=target["name"]),
                             forbidden=True)
    with site.engine.begin() as conn:
        site.records.lock("prospects", [target_id], connection=conn)  # promoters queue
        if promoted(site, target_id, conn):
            raise PromoteRefused(Message(N_("%(name)s was already promoted to a lead."),
                                         name=target["name"]))
        token = _promoting.set(True)
        try:
            return conversion.convert(site, user, "prospects", target_id, "leads",
                                      values={"status": "new", "prospect_id": target_id},
                                      connection=conn)
        finally:
            _promoting.reset(token)


@hookimpl
def crbm_metadata_dirs():
    return [FOLDER]


@hookimpl
@for_modules("leads")
def crbm_before_save(batch):
    if _promoting.get():
        return
    for change in batch:
        if "prospect_id" in change.changes and (change.changes["prospect_id"][1]
                                                or not change.is_new):
            raise VetoError(Message(N_("Promoted from target is set by promoting the "
                                       "target.")))


@hookimpl
@for_modules("prospects")
def crbm_record_actions(site, record, user):
    if not site.access.can(user, site.registry.module("leads"), "edit") or \
            not site.records.allowed("prospects", [record["id"]], user, "edit"):
        return []
    with site.engine.connect() as conn:
        if promoted(site, record["id"], conn):
            return []
    return [Action(N_("Promote to lead"), f"/prospects/{record['id']}/promote", post=True,
                   primary=True)]


@page()
def promote_view(request, form):
    site, user = request.app.state.site, request.state.user
    target_id = request.path_params["record_id"]
    try:
        lead = promote(site, user, target_id)
    except PromoteRefused as exc:
        if exc.forbidden:
            raise HTTPException(403, exc.args[0]) from None
        flash(request, exc.args[0], "error")
        return RedirectResponse(f"/m/prospects/{target_id}", 303)
    except ValidationError as exc:
        flash(request, Message(N_("The lead could not be made: %(reason)s"), reason=str(exc)),
              "error")
        return RedirectResponse(f"/m/prospects/{target_id}", 303)
    flash(request, Message(N_("%(name)s promoted to a lead."), name=lead["name"]), "info")
    return RedirectResponse(f"/m/leads/{lead['id']}", 303)


@hookimpl
def crbm_web_routes(site):
    return [Route("/prospects/{record_id}/promote", promote_view, methods=["POST"])]
