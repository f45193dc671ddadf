"""Targets: prospects not yet qualified (user guide 1.1; implementation guide 2.2.2
"Tracking Targets, Leads, Accounts, Contacts"), and target lists — the people a campaign
or a mailing goes to.

Provides:

Module names are SuiteCRM's (``prospects``, ``prospect_lists``; labelled Targets and Target
lists): "targets" is too common a word to be a module's name (the kernel's code uses it).

- the ``prospects`` module (modules/prospects.yaml): person fields as contacts and leads have
  them, the company as text, lead source, personal-data flags, merge flags;
- the ``prospect_lists`` module: name, type (default, seed, test, suppression) and its
  members as many-to-many relationships, ordinary ones (``site.records.link``, subpanels,
  the API's related endpoints; a merge moves them like any link): targets and contacts
  (this plugin requires contacts), and leads while the leads plugin is active (overlays:
  extends/leads.yaml, and glue_leads.py's ``leads/extends/prospect_lists.yaml``);
- **Add to target list**: a mass action on the targets', contacts' and leads' list pages
  (``crbm_list_actions``) for the ticked rows or every record the list's filters match
  (web.py, members.py: one transaction, access as ``link`` checks it, set-based);
- **Promote to lead** (glue_leads.py, only with leads): a target's button making a lead
  of it (same-named fields, smart convert) that links back to it (the lead's
  ``prospect_id``, extends/leads.yaml), in one transaction; a target is promoted once;
- demo targets and lists (demo.py).
"""
from __future__ import annotations

from core.kernel.errors import N_
from core.kernel.hookspecs import hookimpl
from core.kernel.hooktypes import ListAction

__version__ = "0.1.0"


@hookimpl
def crbm_list_actions(site, module, user):
    from plugins.targets import members

    if not members.can_join_lists(site, module.name) or \
            not site.access.can(user, site.registry.module(members.LISTS), "edit"):
        return []
    return [ListAction(N_("Add to target list"), f"/prospect_lists/add/{module.name}")]


@hookimpl
def crbm_web_routes(site):
    from plugins.targets import web

    return web.routes


@hookimpl(trylast=True)
def crbm_demo_data(site, user, size, rng, progress):
    """``size`` / 2 targets and three target lists, after contacts (and leads)."""
    from plugins.targets import demo

    demo.load(site, user, size, rng, progress)
