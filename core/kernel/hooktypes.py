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
