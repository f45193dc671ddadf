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
