"""Loyalty cards: an example CRBM plugin that lives outside CRBM.

It uses only what a third-party plugin may (CRBM's docs/plugins.md, "The kernel's public
surface") and shows one of each kind of contribution:

- a **module**, ``loyalty_cards`` (``modules/loyalty_cards.yaml``): a card per customer
  account, its points, its tier and when the points expire;
- a **field type**, ``tier`` (``TierType``): bronze, silver or gold, shown as a badge, offered
  as a select in the list's filter, an enum in the API;
- a **hook**, ``crbm_before_save`` scoped to ``loyalty_cards`` with ``@for_modules``: the tier
  follows the points, and points earned push the expiry date a year on;
- a **scheduled task**, ``loyalty.expire_points`` (``crbm_scheduled_tasks``, on the admin
  Scheduler page): on the 1st of each month at 03:00 the points of cards past their expiry date go back to 0. It writes through
  ``site.records.set_derived`` (change log as the system, new version, webhook events —
  never SQL on the module's table) and is idempotent: a second run finds nothing to do.

Installed, it is the entry point ``loyalty`` of ``crbm.plugins`` (setup.cfg); uninstalled,
its table stays in the database as a disabled plugin's does (docs/plugins.md).
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from markupsafe import Markup

from core.kernel.errors import N_, Message
from core.kernel.fields import FieldError, FieldType
from core.kernel.hookspecs import for_modules, hookimpl
from core.kernel.hooktypes import ScheduledTask

PLUGIN_NAME = "loyalty"  # its entry point's name, for a site given the module itself
MODULE = "loyalty_cards"
# the tiers, lowest first, with the points each starts at
TIERS = (("bronze", 0), ("silver", 500), ("gold", 2000))
TIER_LABELS = {"bronze": N_("Bronze"), "silver": N_("Silver"), "gold": N_("Gold")}
VALID_DAYS = 365  # points earned keep for a year
EXPIRY_SCHEDULE = "0 3 1 * *"  # cron, in the site's time zone: monthly, the 1st at 03:00


def tier_for(points: int | None) -> str:
    """The tier ``points`` give."""
    reached = [name for name, start in TIERS if (points or 0) >= start]
    return reached[-1]


class TierType(FieldType):
    """A loyalty tier — ``bronze``, ``silver`` or ``gold`` — stored as its name."""

    name = "tier"
    json_kind = "string"
    list_filter_op = "eq"
    filter_operators = frozenset({"eq", "empty", "not_empty"})
    searchable = False

    def column_type(self, spec):
        return sa.String(10)

    def normalize(self, value, spec):
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        text = str(value).strip().lower()
        if text not in TIER_LABELS:
            raise FieldError(Message(N_("%(value)s is not a tier: give bronze, silver or gold"),
                                     value=repr(value)))
        return text

    def display_text(self, fmt, f, value, record, options):
        return fmt.gettext(TIER_LABELS[value])

    def html(self, fmt, module, f, record, labels):
        value = record[f.name]
        return Markup('<span class="badge tier-{}">{}</span>').format(
            value, fmt.gettext(TIER_LABELS[value]))

    def export_text(self, fmt, f, record, labels):
        return record.get(f.name) or ""  # the name: what an import reads back

    def filter_choices(self, f, fmt):
        return [(name, fmt.gettext(TIER_LABELS[name])) for name, _ in TIERS]

    def json_schema(self, f, registry, *, for_input):
        return {"type": ["string", "null"], "enum": [name for name, _ in TIERS] + [None],
                "description": "a loyalty tier, worked out from the points"}


@hookimpl
def crbm_field_types():
    return [TierType()]


@hookimpl
@for_modules(MODULE)
def crbm_before_save(site, module, batch, user, connection) -> None:
    """The tier follows the points; points earned keep for ``VALID_DAYS`` from today
    (unless the same save gives the expiry date)."""
    today = dt.date.today()
    for change in batch:
        points = change.record.get("points") or 0
        change.record["tier"] = tier_for(points)
        old, new = change.changes.get("points", (None, None))
        earned = "points" in change.changes and (new or 0) > (old or 0)
        if earned and "points_expire_on" not in change.changes:  # unless a date is given
            change.record["points_expire_on"] = today + dt.timedelta(days=VALID_DAYS)


def expire_points(site, today: dt.date | None = None) -> list[str]:
    """Put the points of every card whose expiry date has passed back to 0 (bronze, no
    expiry date). Idempotent: those cards no longer match. Returns the ids written."""
    today = today or dt.date.today()
    module = site.registry.module(MODULE)
    table = site.records.table(module)
    with site.engine.begin() as conn:
        due = conn.execute(sa.select(table.c.id).where(
            table.c.deleted.is_(False), table.c.points > 0,
            table.c.points_expire_on < today)).scalars().all()
        return site.records.set_derived(
            MODULE, {i: {"points": 0, "tier": tier_for(0), "points_expire_on": None}
                     for i in due},
            connection=conn, reason="loyalty points expired")


def expire_points_task(site, due: dt.datetime) -> str:
    """The scheduled run for ``due``: the cards past their expiry date on that day."""
    return f"{len(expire_points(site, due.date()))} cards expired"


@hookimpl
def crbm_scheduled_tasks(site):
    return [ScheduledTask("loyalty.expire_points", N_("Expire loyalty points"),
                          expire_points_task, EXPIRY_SCHEDULE)]
