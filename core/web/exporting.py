"""Who may export: the one check every export path asks (1CRM guide §7.1.2, "export settings",
and the role's Export action, §7.3).

Contract:

- **The site setting** ``export`` (``{"who": "users"}`` or ``{"who": "admins"}``; Admin →
  Access control settings, "Who may export"): with ``admins``, only administrators export;
  with ``users`` (the default, and what an unknown value reads as) everyone whose role
  allows it does. ``export_who(site)`` reads it; ``save_export_who(site, who)`` writes it.
- **The role's Export right** on the module (``site.access.can(user, module, "export")``).
  It says only whether the user may export *some* records; which ones is still the record
  service's business: every export reads with ``action="export"``, whose SQL predicate
  leaves out the rows the user may not export.
- ``export_refusal(site, user, module)``: None when both allow it, else the ``Message`` to
  show. Every bulk export asks it before reading anything — a list's CSV and Excel export
  (core/web/views.py), the contacts' vCard export, the activities' .ics exports — and
  refuses with a flash message on the list, never an error page; the list pages and the
  plugins' list actions ask ``may_export`` to leave the buttons out. A single record's
  download (a contact's vCard, a meeting's .ics from its detail page) is that record's
  view, not an export, and follows the view right.

Plugins import it (public surface, docs/plugins.md): it reads only the kernel's settings
and access control.
"""
from __future__ import annotations

from core.kernel.errors import N_, Message

SETTING = "export"
USERS, ADMINS = "users", "admins"
WHO = (USERS, ADMINS)  # the setting's values, widest first
WHO_LABELS = {USERS: N_("Users and administrators"), ADMINS: N_("Administrators only")}
ADMINS_ONLY = N_("Only administrators may export data on this site.")
NO_RIGHT = N_("Your role does not allow exporting %(module)s.")


def export_who(site) -> str:
    """``"users"`` or ``"admins"``: who may export on this site (never raises)."""
    value = site.settings.get(SETTING)
    who = value.get("who") if isinstance(value, dict) else None
    return who if who in WHO else USERS


def save_export_who(site, who: str) -> None:
    if who not in WHO:
        raise ValueError(f"who may export: one of {', '.join(WHO)}, not {who!r}")
    site.set_setting(SETTING, {"who": who})


def export_refusal(site, user, module) -> Message | None:
    """Why ``user`` may not export from ``module`` (the site setting first, then the role's
    Export right), or None when they may."""
    if not getattr(user, "is_admin", False) and export_who(site) == ADMINS:
        return Message(ADMINS_ONLY)
    if not site.access.can(user, module, "export"):
        return Message(NO_RIGHT, module=str(module.label))
    return None


def may_export(site, user, module) -> bool:
    """Whether to offer ``module``'s export buttons to ``user``."""
    return export_refusal(site, user, module) is None
