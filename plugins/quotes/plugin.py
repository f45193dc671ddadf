"""Quotes: priced offers to an account, approved when the company asks for it, converted
into a sales order or an invoice.

Provides the ``quotes`` module (modules/quotes.yaml, with line items), its protected stage
and approval lists, and:

- **approval** (implementation guide 7.1.1, section 3): with "Approve quotes" on in the
  order settings, a quote over the value threshold or under the margin threshold waits
  for approval; it cannot be printed or emailed (``crbm_before_output``) until a user
  with the Approve right approves it. Any change of its lines afterwards asks again.
- **conversion** to a sales order or an invoice ("smart convert": same-named fields, the
  lines), in one transaction with the quote's move to Closed Accepted. A closed lost or
  dead quote is cancelled and is not converted.
- **a converted quote is final** (``converted_quote_rule``): a quote with a live sales order
  or invoice made from it is not converted again (a second order for the same offer) and
  its offer does not change (it would no longer match its order). Duplicating it, on the
  web or through the API, is how an offer is made again differently.
- the detail page's buttons and the two POST routes behind them;
- demo quotes (demo.py), some converted to sales orders.
"""
from __future__ import annotations

import contextvars
import datetime as dt

import sqlalchemy as sa
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.apps import conversion
from core.apps.documents import printing
from core.kernel.errors import N_, CrbmError, Message, NotFoundError, ValidationError, VetoError
from core.kernel.hookspecs import for_modules, hookimpl
from core.web.actions import Action
from core.web.pages import page
from core.web.templating import flash

__version__ = "0.1.0"

CANCELLED_STAGES = frozenset({"closed_lost", "closed_dead"})
APPROVAL_FIELDS = ("approval_status", "approved_by", "approved_at")
CONVERSIONS = {"sales_orders": N_("Convert to sales order"), "invoices": N_("Convert to invoice")}

# Set while approve() writes, so the save hook lets the approval fields change.
_approving = contextvars.ContextVar("approving", default=False)


class QuoteError(CrbmError):
    """A quote action was refused (the message says why)."""


# -- approval ------------------------------------------------------------------------------

def needs_approval(site, amount, margin_percent) -> bool:
    """Whether a quote of this total and gross margin waits for approval."""
    from plugins.pricing.settings import order_settings  # the order settings live there

    settings = order_settings(site)
    if not settings.approve_quotes:
        return False
    over = settings.approval_threshold is not None and amount is not None \
        and amount > settings.approval_threshold
    under = settings.margin_threshold is not None and margin_percent is not None \
        and margin_percent < settings.margin_threshold
    return over or under


@hookimpl
@for_modules("quotes")
def crbm_before_save(site, module, batch, user, connection):
    for change in batch:
        if not _approving.get() and any(f in change.changes for f in APPROVAL_FIELDS) \
                and not change.is_new:
            raise ValidationError({"approval_status": Message(
                N_("changes only by approving the quote"))})
    converted_quote_rule(site, batch, connection)
    for change in batch:
        record, changes = change.record, change.changes
        items = change.features.get("line_items")
        if not (change.is_new or items is not None or "amount" in changes):
            continue
        totals = items.totals if items is not None else None
        margin = totals.margin_percent if totals is not None else None
        # priced again: any approval given before is void
        record.update(approval_status="pending" if needs_approval(
            site, record.get("amount"), margin) else "not_required",
            approved_by=None, approved_at=None)


def approve(site, user, quote_id: str) -> dict:
    """Approve a quote waiting for approval; needs the Approve right on it."""
    quote = site.records.get("quotes", quote_id, user)
    if not site.records.allowed("quotes", [quote_id], user, "approve"):
        raise QuoteError(Message(N_("You may not approve %(number)s."), number=quote["number"]))
    if quote["approval_status"] != "pending":
        raise QuoteError(Message(N_("%(number)s is not waiting for approval."),
                                 number=quote["number"]))
    token = _approving.set(True)
    try:
        return site.records.update("quotes", quote_id, {
            "approval_status": "approved", "approved_by": user.id,
            "approved_at": dt.datetime.now(dt.UTC)}, user, base=quote)
    finally:
        _approving.reset(token)


@hookimpl
@for_modules("quotes")
def crbm_before_output(module, record, action):
    if record.get("approval_status") == "pending":
        what = N_("printed") if action == "print" else N_("emailed")
        raise VetoError(Message(N_("%(number)s waits for approval: it cannot be %(what)s "
                                   "until someone approves it."),
                                number=record.get("number"), what=Message(what)))


# -- conversion ----------------------------------------------------------------------------

def convert(site, user, quote_id: str, target: str) -> dict:
    """A sales order or an invoice from a quote; the quote becomes Closed Accepted.

    All in one transaction: if the new record is refused, the quote stays as it was. A
    quote is converted once (``converted_quote_rule``): the quote's row is locked before
    that is checked, so two people converting at once make one order."""
    if target not in CONVERSIONS:
        raise NotFoundError(f"quotes do not convert to {target}")
    quote = site.records.get("quotes", quote_id, user)
    if quote["stage"] in CANCELLED_STAGES:
        stage = dict(site.registry.choices(site.registry.module("quotes").fields["stage"]))
        raise QuoteError(Message(N_("%(number)s is %(stage)s: a cancelled quote cannot be "
                                    "converted."), number=quote["number"],
                                 stage=stage.get(quote["stage"], quote["stage"])))
    link = {"sales_orders": {"quote_id": quote_id, "order_date": dt.date.today()},
            "invoices": {"quote_id": quote_id}}[target]
    with site.engine.begin() as conn:
        _lock_quote(site, quote_id, conn)
        made = conversions_of(site, [quote_id], conn).get(quote_id)
        if made:
            raise QuoteError(Message(N_(
                "%(number)s was already converted to %(documents)s. To convert it again, "
                "duplicate it (Duplicate, on its page) and convert the copy."),
                number=quote["number"], documents=", ".join(made)))
        if quote["stage"] != "closed_accepted":  # before the order exists: still editable
            # the declared action (features.transitions): the stage closes by no other path
            quote = site.records.transition("quotes", quote_id, "accept", user, base=quote,
                                            connection=conn)
        return conversion.convert(site, user, "quotes", quote_id, target, values=link,
                                  connection=conn)


# -- a converted quote is final ------------------------------------------------------------
# The one place that says what converting settles (a later issue moves status rules into
# metadata). A quote is *converted* while a sales order or an invoice made from it exists
# (``quote_id``, not deleted): it is not converted again, and its offer does not change.

# what may still change on a converted quote: notes, and who follows it up
EDITABLE_WHEN_CONVERTED = frozenset({"description", "assigned_user_id"})


def conversions_of(site, quote_ids, connection) -> dict[str, list[str]]:
    """Quote id -> the numbers of the live sales orders and invoices made from it: one
    query per target module, on the caller's transaction, whoever may see them (the rule
    holds for everyone)."""
    out: dict[str, list[str]] = {}
    ids = sorted({str(i) for i in quote_ids})
    for target in CONVERSIONS:
        module = site.registry.modules.get(target)
        if module is None or "quote_id" not in module.fields or not ids:
            continue
        table = site.tables.tables[module.table]
        number = table.c[(module.features.get("sequence") or {}).get("field", "id")]
        rows = connection.execute(sa.select(table.c.quote_id, number.label("number"))
                                  .where(table.c.quote_id.in_(ids), table.c.deleted.is_(False))
                                  .order_by(number))
        for row in rows:
            out.setdefault(row.quote_id, []).append(row.number)
    return out


def converted_quote_rule(site, batch, connection) -> None:
    """Refuse a write that changes the offer of a converted quote (crbm_before_save)."""
    allowed = EDITABLE_WHEN_CONVERTED | (set(APPROVAL_FIELDS) if _approving.get() else set())
    touched = [c for c in batch if not c.is_new
               and ("line_items" in c.features or set(c.changes) - allowed)]
    if not touched:
        return
    made = conversions_of(site, [c.record["id"] for c in touched], connection)
    for change in touched:
        documents = made.get(change.record["id"])
        if documents:
            raise VetoError(Message(N_(
                "%(number)s was converted to %(documents)s: it can no longer be changed. To "
                "offer it again differently, duplicate it (Duplicate, on its page) and change "
                "the copy."), number=change.record.get("number"),
                documents=", ".join(documents)))


def _lock_quote(site, quote_id: str, connection) -> None:
    """Take the quote's row lock for the rest of the transaction."""
    site.records.lock("quotes", [quote_id], connection=connection)


# -- web -----------------------------------------------------------------------------------

@hookimpl
@for_modules("quotes")
def crbm_record_actions(site, module, record, user):
    actions = []
    if record.get("approval_status") == "pending" and \
            site.records.allowed("quotes", [record["id"]], user, "approve"):
        actions.append(Action(N_("Approve"), f"/quotes/{record['id']}/approve", post=True,
                              primary=True))
    return actions  # "Convert to ...": glue.py, registered only with the target's plugin


def conversion_action(site, record, user, target: str) -> list[Action]:
    """The button converting a quote to ``target`` (a module of another plugin: called
    by glue.py, which is registered only while that plugin is active)."""
    if record.get("stage") in CANCELLED_STAGES or _converted(site, record["id"]) or \
            not site.access.can(user, site.registry.module(target), "edit"):
        return []
    return [Action(CONVERSIONS[target], f"/quotes/{record['id']}/convert/{target}", post=True)]


def _converted(site, quote_id: str) -> bool:
    with site.engine.connect() as conn:
        return bool(conversions_of(site, [quote_id], conn))


def _done(request, message, kind="info", to: str | None = None):
    flash(request, message, kind)
    return RedirectResponse(to or f"/m/quotes/{request.path_params['record_id']}", 303)


@page()
def approve_view(request, form):
    site, user = request.app.state.site, request.state.user
    try:
        quote = approve(site, user, request.path_params["record_id"])
    except (QuoteError, ValidationError) as exc:
        return _done(request, exc.args[0] if exc.args else str(exc), "error")
    return _done(request, Message(N_("%(number)s approved."), number=quote["number"]))


@page()
def convert_view(request, form):
    site, user = request.app.state.site, request.state.user
    target = request.path_params["target"]
    try:
        created = convert(site, user, request.path_params["record_id"], target)
    except (QuoteError, ValidationError, VetoError) as exc:
        return _done(request, exc.args[0] if exc.args else str(exc), "error")
    return _done(request, Message(N_("%(number)s created from the quote."),
                                  number=created.get("number") or created["id"]),
                 to=f"/m/{target}/{created['id']}")


@hookimpl(trylast=True)
def crbm_demo_data(site, user, rng, progress):
    """A few quotes in each stage, after the accounts and the catalog."""
    from plugins.quotes import demo  # only the demo needs it

    demo.load(site, user, rng, progress)


PDF_LABELS = {  # what its documents print around the figures (core.apps.documents.printing.LABELS)
    "accepted_by": N_("Accepted by (name, signature)"),
    "quote_date": N_("Date"),
    "valid_until": N_("Valid until"),
}

@hookimpl
def crbm_pdf_context(context, fmt):
    printing.add_labels(context, fmt, PDF_LABELS)

@hookimpl
def crbm_web_routes(site):
    return [Route("/quotes/{record_id}/approve", approve_view, methods=["POST"]),
            Route("/quotes/{record_id}/convert/{target}", convert_view, methods=["POST"])]


@hookimpl
def crbm_api_actions(site):
    """Actions on these records through the REST API (api_actions.py)."""
    from plugins.quotes import api_actions

    return api_actions.actions()
