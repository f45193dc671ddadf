"""Cases: customer service cases (user guide "Customer Service"; implementation guide
§7.1.1 section 2 "Cases", §7.3 service skills).

Provides the ``cases`` module (numbered from 1001, account, contact, status and priority
— protected lists —, type, description, resolution, assigned user, the survey's rating),
the service skills (``service_skills``, ``user_skills``, a case's ``case_skills``) and
the cases subpanels of accounts and contacts (extends/). Its behaviour, each in a module
of its own with its contract:

- rules.py: the case queue user, ``pending_since``/``closed_at``, notifications to the
  assigned user and mail to the contact, surveys on close (the save hooks below);
- autoclose.py: the scheduled task closing expired cases;
- surveys.py: the signed single-use rating link and its public page;
- mailing.py: the job mailing contacts;
- skills.py: "Find technician";
- settings.py, settings_web.py: Admin → Case settings;
- pdf/work_order.yaml: the work order, with the standard terms of the settings;
- glue_emails.py (with the emails plugin): cases from group inboxes, mail filed on a case
  by its subject pattern (only from the case's own contact or account), the pattern on
  replies, "New case status". A case's product is the products plugin's overlay
  (plugins/products/extends/cases.yaml), there only while both are active.
"""
from __future__ import annotations

from core.kernel.errors import N_
from core.kernel.hookspecs import for_modules, hookimpl
from core.kernel.hooktypes import AdminLink
from plugins.cases import autoclose, mailing, rules, settings_web, skills, surveys
from plugins.cases.rating import CaseRatingType
from plugins.cases.settings import case_settings

__version__ = "0.1.0"

MODULE = "cases"


@hookimpl
def crbm_field_types(site):
    return [CaseRatingType()]


@hookimpl
def crbm_tables(metadata):
    surveys.tables(metadata)
    mailing.tables(metadata)


@hookimpl(specname="crbm_before_save")
@for_modules(MODULE)
def _cases_before_save(site, batch, user):
    rules.before_save(site, batch, user)


@hookimpl(specname="crbm_after_save")
@for_modules(MODULE)
def _cases_after_save(site, batch, user, connection):
    rules.after_save(site, batch, user, connection)


@hookimpl
def crbm_scheduled_tasks(site):
    return autoclose.scheduled_tasks()


@hookimpl
def crbm_job_handlers(site):
    return mailing.job_handlers()


@hookimpl
def crbm_web_routes(site):
    return [*settings_web.routes, *surveys.routes, *skills.routes]


@hookimpl
def crbm_admin_links(site):
    return [AdminLink(N_("Case settings"), settings_web.URL,
                      N_("Case queue user, auto-close, case subject pattern, notifications "
                         "and surveys."))]


@hookimpl
@for_modules(MODULE)
def crbm_record_actions(site, module, record, user):
    from core.web.actions import Action

    return [Action(N_("Find technician"), f"/cases/{record['id']}/technicians")]


@hookimpl
@for_modules(MODULE)
def crbm_pdf_context(site, module, record, context):
    """The work order's standard terms (Admin → Case settings)."""
    context["work_order"] = {"terms": case_settings(site).work_order_terms}


@hookimpl(trylast=True)  # the accounts and contacts come first
def crbm_demo_data(site, user, size, rng, progress):
    from plugins.cases import demo

    demo.load(site, user, size, rng, progress)
