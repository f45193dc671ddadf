"""Web forms × leads: a leads form that names nobody assigns its submissions per the leads
plugin's "Assign New Leads To" setting. Registered by the web_forms manifest's ``glue``
only while the leads plugin is active too, so web_forms never asks whether it exists."""
from __future__ import annotations

import logging

from core.kernel.hookspecs import hookimpl

log = logging.getLogger(__name__)


@hookimpl
def crbm_web_form_assignee(site, module):
    if module != "leads":
        return None
    try:
        from plugins.leads.settings import lead_settings
        return getattr(lead_settings(site), "assign_new_leads_to", None) or None
    except (ImportError, AttributeError):  # a leads plugin without that setting
        log.warning("web_forms: the leads plugin has no lead_settings().assign_new_leads_to")
        return None
