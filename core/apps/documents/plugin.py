"""Documents (PDF forms, printing, mail about a record, the outgoing-mail settings) as a
built-in plugin."""
from __future__ import annotations

from core.kernel.hookspecs import hookimpl


@hookimpl(tryfirst=True)  # the applications' pages come before third-party plugins' pages
def crbm_web_routes(site):
    from core.apps.documents import admin_mail, web
    return [*admin_mail.routes, *web.routes]
