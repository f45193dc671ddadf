"""Who reports to whom: a user's manager (``crbm_users.reports_to_id``, 1CRM's "Reports
to"), edited on the administration's user page. Forecasts roll up along it.

The one rule kept here: the chain has no cycle. A user cannot report to themselves nor to
anyone who reports to them, directly or through others; the check walks the would-be
manager's chain upwards with a recursive query (``UNION``, not ``UNION ALL``, so even a
cycle written around this code ends the walk) in the transaction that writes the change.
"""
from __future__ import annotations

import sqlalchemy as sa

from core.kernel.errors import N_, Message, ValidationError


def managers_above(users: sa.Table, user_id: str) -> sa.CTE:
    """The user and everyone above them (their manager, the manager's manager...)."""
    chain = sa.select(users.c.id, users.c.reports_to_id).where(
        users.c.id == str(user_id)).cte("chain", recursive=True)
    return chain.union(sa.select(users.c.id, users.c.reports_to_id).join(
        chain, users.c.id == chain.c.reports_to_id))


def check_reports_to(conn, users: sa.Table, user_id: str, manager_id: str | None) -> None:
    """Refuse (``ValidationError`` on ``reports_to_id``) a manager who is unknown, the user
    themselves, or below the user in the chain."""
    if not manager_id:
        return
    manager = conn.execute(sa.select(users.c.username).where(
        users.c.id == str(manager_id))).scalar()
    if manager is None:
        raise ValidationError({"reports_to_id": Message(N_("is not a user"))})
    if str(manager_id) == str(user_id):
        raise ValidationError({"reports_to_id": Message(N_("a user cannot report to "
                                                           "themselves"))})
    chain = managers_above(users, manager_id)
    if conn.execute(sa.select(chain.c.id).where(chain.c.id == str(user_id))).first():
        raise ValidationError({"reports_to_id": Message(N_(
            "%(manager)s reports to this user (directly or through others): choosing them "
            "would make a loop"), manager=manager)})
