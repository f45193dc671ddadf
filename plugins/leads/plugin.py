"""Leads: people who may become customers, qualified and then converted into an account,
a contact and an opportunity (user guide 1.1; implementation guide 2.1 "Leads and
Opportunities", "Converting leads", 7.1.1 company settings).

Provides:

- the ``leads`` module (modules/leads.yaml): the person fields contacts have (composed
  name, title, department, emails, phones, addresses, birthdate, photo), the company's
  name as text (``account_name``), the protected status list (New, Assigned, In Process,
  Converted, Recycled, Dead), lead source (contacts' ``lead_source_dom``), temperature,
  do-not-call and email opt-out, personal-data flags (GDPR), duplicate-merge flags on the
  name, emails and phones, and the links to what it became (``converted_account_id``,
  ``converted_contact_id``; while the opportunities plugin is active, the opportunity's
  ``lead_id`` — extends/opportunities.yaml — and a subpanel of the lead's opportunities —
  glue_opportunities.py: a relationship only, so no column depends on the glue). Subpanels
  "Converted leads" on accounts and contacts (extends/);
- **Convert** (convert.py): the detail page's button, the page ``/leads/<id>/convert``
  (web.py) and the API action ``POST /api/v1/leads/{id}/actions/convert`` (api_actions.py),
  one transaction; a lead is converted once;
- **the lead settings** (settings.py, site setting ``leads``; Admin → Lead settings,
  ``/admin/leads``): business model (B2B / B2C), account name format, Assign New Leads To.
  ``plugins.leads.settings.lead_settings(site)`` is public (web-to-lead forms read it);
- **status rules** (``crbm_before_save``): a lead becomes Converted, and gets its
  converted-to links, only by converting it; a converted lead stays Converted. A new lead
  nobody is assigned to gets the "Assign New Leads To" user;
- assignment notifications: the module's ``features.notify_assignment`` (the new assignee
  is told by the bell and, if their preference says so, by email: core.apps.notifications);
- demo leads (demo.py): 1.5 per demo account, some converted.
"""
from __future__ import annotations

from core.kernel.errors import N_, Message, VetoError
from core.kernel.hookspecs import for_modules, hookimpl
from core.web.actions import Action
from plugins.leads import convert as lead_convert
from plugins.leads.settings import lead_settings

__version__ = "0.1.0"

LINKS = ("converted_account_id", "converted_contact_id")


@hookimpl
@for_modules("leads")
def crbm_before_save(site, batch, user, connection):
    settings = None
    for change in batch:
        record, changes = change.record, change.changes
        if change.is_new and not record.get("assigned_user_id"):
            settings = settings or lead_settings(site)
            if settings.assign_new_leads_to:
                record["assigned_user_id"] = settings.assign_new_leads_to
        if lead_convert.converting.get():
            continue
        old, new = changes.get("status", (None, record.get("status")))
        if "status" in changes and new == "converted":
            raise VetoError(Message(N_("A lead becomes Converted by converting it (Convert, "
                                       "on its page), which makes its account and contact.")))
        if "status" in changes and old == "converted" and not change.is_new:
            raise VetoError(Message(N_("%(name)s was converted: its status stays Converted."),
                                    name=record.get("name")))
        touched = [f for f in LINKS if f in changes and (changes[f][1] or not change.is_new)]
        if touched:
            label = site.registry.module("leads").fields[touched[0]].label
            raise VetoError(Message(N_("%(field)s is set by converting the lead."),
                                    field=label))


@hookimpl
@for_modules("leads")
def crbm_record_actions(site, record, user):
    if lead_convert.is_converted(record) or \
            not site.access.can(user, site.registry.module("contacts"), "edit") or \
            not site.records.allowed("leads", [record["id"]], user, "edit"):
        return []  # the page would refuse them
    return [Action(N_("Convert lead"), f"/leads/{record['id']}/convert", primary=True)]


@hookimpl
def crbm_web_routes(site):
    from plugins.leads import web

    return web.routes


@hookimpl
def crbm_admin_links(site):
    return [(N_("Lead settings"), "/admin/leads")]


@hookimpl
def crbm_api_actions(site):
    from plugins.leads import api_actions

    return api_actions.actions()


@hookimpl(trylast=True)
def crbm_demo_data(site, user, size, rng, progress):
    """``size`` × 1.5 leads, after the accounts and contacts; a few converted."""
    from plugins.leads import demo  # only the demo needs Faker's pools

    demo.load(site, user, size, rng, progress)
