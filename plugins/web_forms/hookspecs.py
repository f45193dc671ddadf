"""The web forms plugin's own hook (``core.kernel.plugins`` adds the specs of a plugin's
``hookspecs.py`` before registering the plugins)."""
from __future__ import annotations

from core.kernel.hookspecs import hookspec


@hookspec(firstresult=True)
def crbm_web_form_assignee(site, module):
    """The id of the user a web form's submissions into ``module`` (a module name) are
    created by and assigned to when the form names nobody (the leads plugin's "Assign New
    Leads To"), or None. Implemented by web_forms' glue with that plugin (glue_leads.py)."""
