"""Web forms (web-to-lead): forms an administrator designs and embeds on the company's web
site; each submission becomes a lead or a contact, assigned and announced by email
(issue 19, item 6; 1CRM's "web-to-lead forms").

Provides the ``web_forms`` module (modules/web_forms.yaml, administrators only: name,
target module — leads or contacts, whichever the site has —, the fields asked for in
order, the required ones, thank-you page, who submissions are assigned to, the web site
allowed to post it, whether a signed timestamp is required, active), and:

- the check at save (``crbm_before_save``): every field named exists in the target module
  and a visitor may fill it in, the required ones are among them and include what the
  module itself requires, the web site and thank-you page are http(s) addresses
  (forms.py, ``problems``);
- the "Embed" page of a form (``/admin/web-forms/<id>/embed``, a button on its detail
  page): the HTML snippet to paste — a plain ``<form>`` posting to the public endpoint,
  with the honeypot field and, when required, the script fetching a signed timestamp —
  and a live preview of it;
- the public endpoint ``POST /forms/<id>`` (web.py: rate limit per IP through
  ``core.web.throttle``, 64 KB body limit, Origin and CORS for the form's own web site,
  honeypot, signed timestamp, required fields, the record service's validation) and
  ``GET /forms/<id>/token``;
- the job ``web_forms.notify``: the assignee's email about the new record, sent after the
  record is committed, through the site's outgoing mail (core.apps.documents.mail).

It requires no plugin. Its own hook ``crbm_web_form_assignee`` (hookspecs.py) names who a
form without its own user assigns submissions to; the glue with the leads plugin
(glue_leads.py, registered only while leads is active) answers it for leads with that
plugin's "Assign New Leads To" (``plugins.leads.settings.lead_settings(site)
.assign_new_leads_to``).
"""
from __future__ import annotations

from core.kernel.errors import N_, ValidationError
from core.kernel.hookspecs import for_modules, hookimpl
from core.kernel.hooktypes import JobHandler
from core.web.actions import Action

from . import forms

__version__ = "0.1.0"
CHECKED = frozenset({"target_module", "form_fields", "required_fields", "allowed_origin",
                     "thank_you_url"})


@hookimpl
@for_modules(forms.MODULE)
def crbm_before_save(site, module, batch, user, connection):
    errors = {}
    for change in batch:
        if change.is_new or CHECKED & set(change.changes):
            errors.update(forms.problems(site, change.record))
    if errors:
        raise ValidationError(errors)


@for_modules(forms.MODULE)
def crbm_record_actions(site, module, record, user):
    return [Action(N_("Embed code and preview"), f"/admin/web-forms/{record['id']}/embed",
                   primary=True)]


@hookimpl
def crbm_web_routes(site):
    from . import web
    return web.routes


@hookimpl
def crbm_job_handlers(site):
    from . import web
    return [JobHandler(web.NOTIFY, web.notify)]


@hookimpl
def crbm_admin_links(site):
    from core.kernel.hooktypes import AdminLink
    return [AdminLink(N_("Web forms"), f"/m/{forms.MODULE}",
                      N_("Forms for your web site whose submissions become leads or contacts."))]


@hookimpl(trylast=True)
def crbm_demo_data(site, user, rng, progress):
    """A "Contact us" form for the demo's web site: into leads when the site has them."""
    target = next((m for m in ("leads", "contacts") if m in site.registry.modules), None)
    if target is None:
        return  # neither plugin is there: no form to show
    module = site.registry.module(target)
    wanted = [n for n in ("first_name", "last_name", "account_name", "email1", "phone_work",
                          "description") if n in {f.name for f in forms.offered(module)}]
    site.records.create(forms.MODULE, {
        "name": "Contact us", "target_module": target, "form_fields": "\n".join(wanted),
        "required_fields": "\n".join(n for n in ("last_name", "email1") if n in wanted),
        "thank_you_url": "https://www.example.com/thank-you",
        "allowed_origin": "https://www.example.com", "assign_to_id": user.id,
        "description": "The form on the web site's contact page."}, user)
    progress(1, 1)
