"""Packs as a built-in plugin: ``site.packs`` (the pack store, which first finishes or
undoes an install a crash interrupted, before the registry reads the packs)."""
from __future__ import annotations

from core.kernel.errors import N_
from core.kernel.hookspecs import hookimpl
from core.kernel.hooktypes import AdminLink, SiteService


def _packs(site):
    from core.apps.packs.packs import Packs
    packs = Packs(site)
    packs.recover_interrupted()  # an install killed mid-way: before reading packs/
    return packs


@hookimpl
def crbm_site_services(site):
    return [SiteService("packs", _packs, boot=True)]


@hookimpl(tryfirst=True)  # among the kernel's entries, in BUILTIN_PLUGINS order
def crbm_admin_links(site):
    return [AdminLink(N_("Upgrades & Customization"), "/admin/packs",
                      N_("Install, upgrade and remove packs: modules, languages, themes, "
                         "holidays.")),
            # plugins are turned off and on beside the packs (core/apps/admin/plugins_web.py)
            AdminLink(N_("Plugins"), "/admin/plugins",
                      N_("The installed plugins, their versions and requirements; disable or "
                         "enable them."))]
