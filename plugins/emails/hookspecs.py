"""The emails plugin's own hook (``core.kernel.plugins`` adds the specs of a plugin's
``hookspecs.py`` before registering the plugins): a plugin that implements it requires
``emails`` in its ``plugin.yaml``.
"""
from __future__ import annotations

from core.kernel.hookspecs import hookspec


@hookspec
def crbm_email_group_actions(site):
    """What a plugin does with the messages a group inbox receives (implementation guide
    §7.4.3 "Possible Actions"): a list of ``plugins.emails.group_actions.GroupAction(action,
    run)``, ``action`` a value of ``group_inbox_action_dom`` (``create_case``,
    ``create_bug``, ``bounce``). ``run(site, inbox, emails, user, connection)`` is called
    once per inbox and batch of new emails, after they are written, inside that write's
    transaction (``connection``): ``inbox`` the group inbox's fields, ``emails`` its new
    email records (contact and account linked). Raising refuses the whole batch (the fetch
    tries it again later). See plugins/emails/group_actions.py."""


@hookspec
def crbm_email_compose(site, module, record_id, user):
    """Composing an email about a record (``module``, ``record_id``: the "Related to" of the
    compose page — written from the record, or a reply to an email filed on it): return a
    ``plugins.emails.compose.ComposeExtras`` or None. Its ``to`` and ``subject`` fill an
    empty To and Subject when composing from the record; its ``fields`` are more of the
    emails module's own fields (dropdowns: ``ComposeField(name, label, options, default)``)
    the page shows and stores with the email — a case's "New case status". Called with the
    reader's ``user``: say nothing about a record they may not view. See
    plugins/emails/compose.py."""
