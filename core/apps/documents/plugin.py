"""Documents (PDF forms, printing, mail about a record, the outgoing-mail settings) as a
built-in plugin."""
from __future__ import annotations

from core.kernel.errors import N_
from core.kernel.hookspecs import hookimpl
from core.kernel.hooktypes import AdminLink


@hookimpl(tryfirst=True)  # the applications' pages come before third-party plugins' pages
def crbm_web_routes(site):
    from core.apps.documents import admin_mail, web
    return [*admin_mail.routes, *web.routes]


@hookimpl(tryfirst=True)  # among the kernel's entries, in BUILTIN_PLUGINS order
def crbm_admin_links(site):
    return [AdminLink(N_("Outgoing mail"), "/admin/mail",
                      N_("The mail server CRBM sends from, with a test message; the site's "
                         "address for links in mails."))]
