"""Targets × leads: target lists hold leads (the folder ``leads/``: its overlays add the
lists' ``leads`` relationship and the targets' ``lead_id``), and "Promote to lead".
Registered by the targets manifest's ``glue`` only while the leads plugin is active."""
from __future__ import annotations

import contextvars
from pathlib import Path

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
LABELS = (N_("Promoted to lead"), N_("Leads"))  # the overlays' labels, for the catalogs
_promoting = contextvars.ContextVar("promoting_target", default=False)


class PromoteRefused(CrbmError):
    def __init__(self, message: str, forbidden: bool = False):
        super().__init__(message)
        self.forbidden = forbidden


def promote(site, user, target_id: str) -> dict:
    """A new lead from the target (its same-named fields), the target linked to it; one
    transaction. Returns the lead."""
    target = site.records.get("targets", target_id, user)
    if target.get("lead_id"):
        raise PromoteRefused(Message(N_("%(name)s was already promoted to a lead."),
                                     name=target["name"]))
    if not site.records.allowed("targets", [target_id], user, "edit") or \
            not site.access.can(user, site.registry.module("leads"), "edit"):
        raise PromoteRefused(Message(N_("You may not promote %(name)s: it takes editing the "
                                        "target and creating leads."), name=target["name"]),
                             forbidden=True)
    with site.engine.begin() as conn:
        site.records.lock("targets", [target_id], connection=conn)
        target = site.records.get("targets", target_id, user, connection=conn)
        if target.get("lead_id"):
            raise PromoteRefused(Message(N_("%(name)s was already promoted to a lead."),
                                         name=target["name"]))
        lead = conversion.convert(site, user, "targets", target_id, "leads",
                                  values={"status": "new"}, connection=conn)
        token = _promoting.set(True)
        try:
            site.records.update("targets", target_id, {"lead_id": lead["id"]}, user,
                                base=target, connection=conn)
        finally:
            _promoting.reset(token)
    return lead


@hookimpl
def crbm_metadata_dirs():
    return [FOLDER]


@hookimpl
@for_modules("targets")
def crbm_before_save(batch):
    if _promoting.get():
        return
    for change in batch:
        if "lead_id" in change.changes and (change.changes["lead_id"][1] or not change.is_new):
            raise VetoError(Message(N_("Promoted to lead is set by promoting the target.")))


@hookimpl
@for_modules("targets")
def crbm_record_actions(site, record, user):
    if record.get("lead_id") or not site.records.allowed("targets", [record["id"]], user,
                                                         "edit") \
            or not site.access.can(user, site.registry.module("leads"), "edit"):
        return []
    return [Action(N_("Promote to lead"), f"/targets/{record['id']}/promote", post=True,
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
        return RedirectResponse(f"/m/targets/{target_id}", 303)
    except ValidationError as exc:
        flash(request, Message(N_("The lead could not be made: %(reason)s"), reason=str(exc)),
              "error")
        return RedirectResponse(f"/m/targets/{target_id}", 303)
    flash(request, Message(N_("%(name)s promoted to a lead."), name=lead["name"]), "info")
    return RedirectResponse(f"/m/leads/{lead['id']}", 303)


@hookimpl
def crbm_web_routes(site):
    return [Route("/targets/{record_id}/promote", promote_view, methods=["POST"])]
