"""Opportunities: the deals a sales team works through its sales stages (user guide 1.1,
implementation guide 2.1 "Leads and Opportunities").

Provides:

- the ``opportunities`` module (modules/opportunities.yaml): name, account (required),
  amount with its currency (``amount``/``amount_currency``: the currency field type; there
  is no base-currency copy, the forecasts convert with the pricing plugin's rates),
  expected close date ``date_closed``, ``sales_stage``, ``probability`` (an integer
  percentage), ``forecast_category``, ``opportunity_type``, ``lead_source``,
  ``next_step``, description; assignable, team-owned (teams from the account when that
  access setting is on), audited. An account's page gets an Opportunities subpanel.
- the protected lists (dropdowns/opportunities.yaml) other code relies on:
  ``sales_stage_dom`` (prospecting, qualification, needs_analysis, value_proposition,
  id_decision_makers, perception_analysis, proposal_price_quote, negotiation_review,
  closed_won, closed_lost), ``sales_probability_dom`` (each stage's default probability:
  SuiteCRM's list, value = stage, label = percent) and ``forecast_category_dom``
  (pipeline, best_case, commit, omitted, closed).
- **contacts with a role**: the hidden module ``opportunity_contacts``, one record per
  opportunity and contact with its ``contact_role``. Why a module and not a many-to-many
  link table with a column: the kernel's link tables carry no values, and a module gives
  the role everything a value has for free — validation against its list, access control,
  the change log, hooks, the API, import — and both pages show it as an ordinary subpanel
  (an opportunity's contacts with their roles; a contact's opportunities with theirs). A
  contact is linked once per opportunity; the row's name is the contact's (kept in step
  when the contact is renamed). Deleting either side deletes the row.
- **save rules** (``crbm_before_save``, once per batch, in the write's transaction):
  the probability follows the stage — a new opportunity without one, or a save that
  changes the stage without changing the probability, takes the stage's default; the
  forecast category follows a close (Closed Won → Closed, Closed Lost → Omitted) or a
  reopening (back to Pipeline) unless the same save sets it; and with the company setting
  "Automatically update close date" on (default), a save that moves the stage into
  Closed Won or Closed Lost sets ``date_closed`` to today in the company's time zone
  (Admin → Company calendar, core.apps.calendar.settings) — unless that save sets the date itself. A new record created already
  closed keeps the date it is given (an import of past deals), and gets today only when it
  has none.
- the setting ``opportunities`` (``{"auto_close_date": bool}``), edited on Admin →
  Opportunities (``/admin/opportunities``, administrators).
- with the quotes plugin (glue_quotes.py): a quote's ``opportunity_id`` (extends/quotes.yaml,
  cleared when the opportunity is deleted), the opportunity's Quotes subpanel
  (with_quotes/) and a "Create quote" button that opens a new quote with the account and
  the opportunity filled in.
- demo opportunities across the stages, closing over the next two quarters, for the demo
  accounts, some with contacts in roles (demo.py).

Assignment notifications come from the module flag ``features: notify_assignment``
(core.apps.notifications); the board by sales stage from ``features: board``.
"""
from __future__ import annotations

import datetime as dt
import logging

import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.apps.calendar.settings import calendar_settings
from core.kernel.errors import N_, Message, ValidationError
from core.kernel.hookspecs import for_modules, hookimpl
from core.kernel.hooktypes import AdminLink
from core.web.pages import page
from core.web.templating import flash

__version__ = "0.1.0"

log = logging.getLogger(__name__)

OPPORTUNITIES, LINKS = "opportunities", "opportunity_contacts"
SETTING = "opportunities"  # the company setting this plugin owns: {"auto_close_date": bool}
URL = "/admin/opportunities"
PROBABILITIES = "sales_probability_dom"
WON, LOST = "closed_won", "closed_lost"
CLOSED_STAGES = frozenset({WON, LOST})
# the forecast category a close gives, and the ones a reopened deal leaves
CLOSED_CATEGORY = {WON: "closed", LOST: "omitted"}
OPEN_CATEGORY = "pipeline"


# -- settings ------------------------------------------------------------------------------

def auto_close_date(site) -> bool:
    """The company setting "Automatically update close date" (on unless turned off)."""
    stored = site.settings.get(SETTING)
    value = stored.get("auto_close_date") if isinstance(stored, dict) else None
    return value if isinstance(value, bool) else True


def site_today(site) -> dt.date:
    """Today in the company's time zone (Admin → Company calendar)."""
    return calendar_settings(site).today()


def stage_probabilities(registry) -> dict[str, int]:
    """Stage -> its default probability (``sales_probability_dom``)."""
    out = {}
    for option in registry.dropdowns.get(PROBABILITIES, ()):
        try:
            out[option["value"]] = int(str(option["label"]))
        except ValueError:
            continue
    return out


# -- save rules ----------------------------------------------------------------------------

@hookimpl(specname="crbm_before_save")
@for_modules(OPPORTUNITIES)
def before_saving_opportunities(site, module, batch) -> None:
    """Probability, forecast category and close date follow the stage (module docstring)."""
    probabilities = stage_probabilities(site.registry)
    auto_date = auto_close_date(site)
    today = None
    for change in batch:
        record, changes = change.record, change.changes
        stage = record.get("sales_stage")
        old_stage = changes["sales_stage"][0] if "sales_stage" in changes else stage
        moved = change.is_new or "sales_stage" in changes
        if not moved:
            continue
        if change.is_new:
            given_probability = record.get("probability") is not None
            given_category = record.get("forecast_category") is not None
        else:
            given_probability = "probability" in changes
            given_category = "forecast_category" in changes
        if not given_probability and stage in probabilities:
            record["probability"] = probabilities[stage]
        if not given_category:
            if stage in CLOSED_CATEGORY:
                record["forecast_category"] = CLOSED_CATEGORY[stage]
            elif change.is_new or old_stage in CLOSED_STAGES or not record.get(
                    "forecast_category"):
                record["forecast_category"] = OPEN_CATEGORY
        if auto_date and stage in CLOSED_STAGES:
            closing = record.get("date_closed") is None if change.is_new else (
                old_stage not in CLOSED_STAGES and "date_closed" not in changes)
            if closing:
                today = today or site_today(site)
                record["date_closed"] = today


def _table(name: str, *columns: str) -> sa.TableClause:
    # the hooks are given no tables: these modules keep their names as tables
    return sa.table(name, *(sa.column(c) for c in ("id", *columns)))


@hookimpl(specname="crbm_before_save")
@for_modules(LINKS)
def before_saving_contact_roles(module, batch, connection) -> None:
    """A contact is linked once to an opportunity; the link is named after the contact."""
    errors: dict[str, Message] = {}

    def problem(index: int) -> None:
        key = "contact_id" if len(batch) == 1 else f"row {index + 1}: contact_id"
        errors[key] = Message(N_("this contact is already linked to this opportunity"))

    pairs: dict[tuple[str, str], int] = {}
    for index, change in enumerate(batch):
        pair = (change.record.get("opportunity_id"), change.record.get("contact_id"))
        if None in pair:
            continue  # "is required" was said already
        if pair in pairs:
            problem(index)
        pairs[pair] = index
    if pairs and not errors:
        links = _table(LINKS, "opportunity_id", "contact_id", "deleted")
        rows = connection.execute(sa.select(links.c.opportunity_id, links.c.contact_id).where(
            links.c.opportunity_id.in_({o for o, _ in pairs}),
            links.c.contact_id.in_({c for _, c in pairs}), links.c.deleted.is_(False),
            links.c.id.not_in([c.record["id"] for c in batch])))
        for row in rows:
            if (row.opportunity_id, row.contact_id) in pairs:
                problem(pairs[(row.opportunity_id, row.contact_id)])
    if errors:
        raise ValidationError(errors)
    contacts = _table("contacts", "name")
    names = dict(connection.execute(sa.select(contacts.c.id, contacts.c.name).where(
        contacts.c.id.in_({c for _, c in pairs}))).all()) if pairs else {}
    for change in batch:
        change.record["name"] = names.get(change.record.get("contact_id")) or \
            change.record.get("name")


@hookimpl(specname="crbm_after_save")
@for_modules("contacts")
def after_saving_contacts(site, batch, connection) -> None:
    """A renamed contact renames its opportunity links (one read, one write for the lot)."""
    renamed = {c.record["id"]: c.record["name"] for c in batch
               if not c.is_new and "name" in c.changes}
    if renamed:
        links = _table(LINKS, "contact_id", "deleted")
        rows = connection.execute(sa.select(links.c.id, links.c.contact_id).where(
            links.c.contact_id.in_(sorted(renamed)), links.c.deleted.is_(False)))
        site.records.set_derived(LINKS, {i: {"name": renamed[c]} for i, c in rows},
                                 connection=connection, reason="contact renamed")


# -- Admin → Opportunities -----------------------------------------------------------------

@page()
def settings_page(request: Request, form):
    site = request.app.state.site
    if not request.state.user.is_admin:
        raise HTTPException(403, Message(N_("Only administrators can change this setting.")))
    if form is not None:
        site.set_setting(SETTING, {"auto_close_date": form.get("auto_close_date") == "1"})
        log.info("opportunity settings changed by %r", request.state.user.username)
        flash(request, N_("The setting was saved."), "info")
        return RedirectResponse(URL, 303)
    response = request.app.state.templates.render(
        request, "admin_opportunities.html", auto_close_date=auto_close_date(site))
    response.headers["Cache-Control"] = "no-store"
    return response


@hookimpl
def crbm_web_routes(site):
    return [Route(URL, settings_page, methods=["GET", "POST"])]


@hookimpl
def crbm_admin_links(site):
    return [AdminLink(N_("Opportunities"), URL,
                      N_("Automatically update the close date of closed opportunities"))]


# -- demo data -----------------------------------------------------------------------------

@hookimpl(trylast=True)
def crbm_demo_data(site, user, rng, progress):
    """Opportunities across the stages for the first demo accounts (demo.py)."""
    from plugins.opportunities import demo  # only the demo needs it

    demo.load(site, user, rng, progress)
