"""Bugs with the emails plugin: a group inbox's action "Create bug" (implementation guide
§7.4.3). Each new message of the batch not already filed on a record becomes a bug (its
subject, its body as the description, assigned to the inbox's user), and the message is
filed on it ("Related to"). One ``create_many`` and one ``set_derived`` for the batch, in
the fetch's transaction (raising refuses the batch: the fetch tries again)."""
from __future__ import annotations

from core.kernel.hookspecs import hookimpl
from plugins.emails.group_actions import GroupAction

MODULE = "bugs"
EMAILS = "emails"


def create_bugs(site, inbox, emails, user, connection) -> None:
    if MODULE not in site.registry.modules:
        return
    type_field = site.registry.module(EMAILS).fields["parent_id"].spec.get(
        "type_field", "parent_type")
    fresh = [e for e in emails if not e.get("parent_id")]
    if not fresh:
        return
    size = site.registry.module(MODULE).fields["name"].spec.get("max_size") or 255
    assignee = inbox.get("assigned_user_id") or None
    ids = site.records.create_many(MODULE, [
        {"name": (e.get("name") or "-")[:size], "description": e.get("body"),
         "assigned_user_id": assignee} for e in fresh], user, connection=connection)
    site.records.set_derived(EMAILS, {e["id"]: {"parent_id": bug_id, type_field: MODULE}
                                      for e, bug_id in zip(fresh, ids)},
                             connection=connection, reason="bug created from a group inbox")


@hookimpl
def crbm_email_group_actions(site):
    return [GroupAction("create_bug", create_bugs)]
