"""The pipeline beside a forecast, worked out in SQL and rolled up through who reports to
whom (``crbm_users.reports_to_id``, edited on the administration's user pages).

``team(site, root_id)`` is a recursive query: everyone below ``root_id``, each tagged with
the *branch* they belong to (the direct report of ``root_id`` they are under), plus
``root_id`` itself as its own branch. ``pipeline(site, user, root_id, periods)`` joins the
opportunities assigned to those people and closing in each period and adds them up per
(period, branch) in one statement:

- **face**: the sum of the open opportunities' amounts (every stage but Closed Won/Lost);
- **weighted**: the sum of amount × probability / 100 of the same;
- **won**: the sum of the Closed Won ones.

A branch's figures are that direct report's whole team (theirs and everyone below them,
recursively); the root's own branch is the root's own opportunities; the total is the sum
of the branches. Only opportunities the *viewing* user may list are counted — the access
predicate of the record service is in the statement — so a Team-level manager's totals
never include a deal they could not open. Amounts in another currency than the site's
default are converted with the pricing plugin's rate of that currency when that plugin is
active (a currency it does not know counts as is). Figures come back rounded half-up to
cents.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Self

import sqlalchemy as sa

from core.apps.field_types.types import default_currency

OPEN_EXCLUDED = ("closed_won", "closed_lost")
CENT = Decimal("0.01")


def team(site, root_id: str) -> sa.Subquery:
    """(id, branch): everyone below ``root_id`` with the direct report they are under, and
    ``root_id`` as its own branch. ``UNION`` (not ``UNION ALL``) ends the walk even if a
    loop were ever written around the administration page's check."""
    users = site.tables.tables["crbm_users"]
    below = sa.select(users.c.id, users.c.id.label("branch")).where(
        users.c.reports_to_id == str(root_id)).cte("below", recursive=True)
    below = below.union(sa.select(users.c.id, below.c.branch).join(
        below, users.c.reports_to_id == below.c.id))
    return sa.union_all(
        sa.select(below.c.id, below.c.branch),
        sa.select(sa.literal(str(root_id)).label("id"), sa.literal(str(root_id)).label("branch")),
    ).subquery("people")


def in_team(site, root_id: str, user_ids, connection=None) -> set[str]:
    """Which of ``user_ids`` are ``root_id`` or below them (``connection``: the caller's
    transaction, if any)."""
    people = team(site, root_id)
    stmt = sa.select(people.c.id).where(people.c.id.in_([str(u) for u in user_ids]))
    if connection is not None:
        return set(connection.execute(stmt).scalars())
    with site.engine.connect() as conn:
        return set(conn.execute(stmt).scalars())


def branches(site, root_id: str) -> dict[str, list[str]]:
    """Branch (root or a direct report) -> the people in it."""
    people = team(site, root_id)
    out: dict[str, list[str]] = {}
    with site.engine.connect() as conn:
        for row in conn.execute(sa.select(people.c.id, people.c.branch)):
            out.setdefault(row.branch, []).append(row.id)
    return out


@dataclass
class Figures:
    face: Decimal = Decimal(0)
    weighted: Decimal = Decimal(0)
    won: Decimal = Decimal(0)
    deals: int = 0  # open opportunities counted in face

    def __iadd__(self, other: Figures) -> Self:
        self.face += other.face
        self.weighted += other.weighted
        self.won += other.won
        self.deals += other.deals
        return self


@dataclass
class Pipeline:
    """Figures per period id and branch; ``total(period)`` adds the branches up."""

    by_branch: dict[str, dict[str, Figures]] = field(default_factory=dict)

    def of(self, period_id: str, branch: str) -> Figures:
        return self.by_branch.get(period_id, {}).get(branch) or Figures()

    def total(self, period_id: str) -> Figures:
        out = Figures()
        for figures in self.by_branch.get(period_id, {}).values():
            out += figures
        return out


def _money(value) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT, ROUND_HALF_UP)


def _base_amount(site, opportunities: sa.Table):
    """The amount in the site's default currency (module docstring)."""
    currencies = site.registry.modules.get("currencies")
    amount = opportunities.c.amount
    if currencies is None or "exchange_rate" not in currencies.fields:
        return amount
    rates = site.tables.tables[currencies.table]
    rate = sa.select(sa.func.max(rates.c.exchange_rate)).where(
        rates.c.iso_code == opportunities.c.amount_currency, rates.c.deleted.is_(False),
        rates.c.exchange_rate > 0).scalar_subquery()
    return sa.case((opportunities.c.amount_currency == default_currency(site), amount),
                   else_=amount / sa.func.coalesce(rate, 1))


def pipeline(site, user, root_id: str, periods: list[dict]) -> Pipeline:
    """The pipeline of ``root_id``'s team in each of ``periods`` (dicts with id, start_date,
    end_date), as ``user`` may see it: one statement."""
    result = Pipeline()
    if not periods:
        return result
    module = site.registry.module("opportunities")
    o = site.tables.tables[module.table]
    people = team(site, root_id)
    spans = sa.union_all(*(sa.select(sa.literal(p["id"]).label("period_id"),
                                     sa.literal(p["start_date"], sa.Date).label("first"),
                                     sa.literal(p["end_date"], sa.Date).label("last"))
                           for p in periods)).subquery("spans")
    amount = _base_amount(site, o)
    is_open = o.c.sales_stage.not_in(OPEN_EXCLUDED)
    stmt = (sa.select(
        spans.c.period_id, people.c.branch,
        sa.func.sum(sa.case((is_open, amount))).label("face"),
        sa.func.sum(sa.case((is_open, amount * sa.func.coalesce(o.c.probability, 0) / 100)))
        .label("weighted"),
        sa.func.sum(sa.case((o.c.sales_stage == "closed_won", amount))).label("won"),
        sa.func.count(sa.case((is_open, o.c.id))).label("deals"))
        .select_from(o.join(people, o.c.assigned_user_id == people.c.id)
                     .join(spans, o.c.date_closed.between(spans.c.first, spans.c.last)))
        .where(o.c.deleted.is_(False), site.access.predicate(user, module, "list", o))
        .group_by(spans.c.period_id, people.c.branch))
    with site.engine.connect() as conn:
        for row in conn.execute(stmt):
            result.by_branch.setdefault(row.period_id, {})[row.branch] = Figures(
                _money(row.face), _money(row.weighted), _money(row.won), int(row.deals or 0))
    return result
