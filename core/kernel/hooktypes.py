"""The small frozen values hooks return (``core.kernel.hookspecs``).

One style for every hook that contributes things: the implementation returns a list of
these (or ``None`` for nothing), and the kernel flattens the lists of every plugin in
pluggy's call order. Plain frozen dataclasses, so a plugin author sees each field, a typo
fails at construction, and nothing a hook returns can be changed by another plugin.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SiteService:
    """An application's object attached to the site as ``site.<name>`` (``site.packs``,
    ``site.studio``), made by ``factory(site)`` on first use, or while the site boots
    (before the registry is read) when ``boot`` is true."""
    name: str
    factory: Callable[[Any], Any]
    boot: bool = False


@dataclass(frozen=True)
class ScheduledJob:
    """A job the site's scheduler runs every ``seconds`` (``crbm serve``'s background
    thread, ``crbm scheduler run``). ``run(site)`` should catch and log its own errors:
    an exception is logged by the scheduler and the next run tries again. ``id`` is unique
    per site ("<plugin>.<job>"); every job runs one at a time and missed runs collapse.
    ``interval_option``: ``crbm scheduler run --interval N`` (and tests) run this job every
    N seconds instead (the webhook deliveries, whose delay users notice)."""
    id: str
    run: Callable[[Any], None]
    seconds: float
    interval_option: bool = False


@dataclass(frozen=True)
class NavEntry:
    """A link in the top bar beside the user's name (the calendar's, say). ``label`` is
    English, marked with ``N_`` and translated when drawn; the link is marked current on
    pages whose path starts with ``url``."""
    label: str
    url: str


@dataclass(frozen=True)
class ListAction:
    """A mass action on a module's list page: a button in its toolbar that posts the list
    form (the ticked ``ids``, ``all`` for every matching record, the list's filters as
    ``q``, ``sort`` and ``f_<field>``, and the CSRF token) to ``url``, a route of the
    plugin's own (``crbm_web_routes``, wrapped in ``core.web.pages.page``). ``label`` and
    ``confirm`` are English, marked with ``N_``."""
    label: str
    url: str
    confirm: str | None = None


@dataclass(frozen=True)
class AccessPredicate:
    """A named condition on a record that access rules may use: ``test(site, user,
    module, record) -> bool``. ``modules``: the modules it applies to (empty: all)."""
    name: str
    test: Callable[[Any, Any, Any, dict], bool]
    modules: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModuleFeature:
    """A module feature a plugin provides (``features.<name>`` in a module's YAML): the
    fields it adds, the tables it owns, how it prepares, writes and reads its data, its
    JSON schema for the API, its editor and display for the web. Declared now; the
    methods' shape is settled with the first implementation (line items, item 5)."""
    name: str
    provider: Any  # the object that implements the feature's steps


@dataclass(frozen=True)
class AdminLink:
    """An entry of the administration page (``crbm_admin_links``): drawn with the kernel's
    own, with its ``hint`` under it. ``label`` and ``hint`` are English, marked ``N_``."""
    label: str
    url: str
    hint: str = ""
