"""The Scheduler's "Update disk space usage" task, the storage settings and the low-storage
notice (1CRM's Storage Utilization needs its task to run: guide §7.2.7 and §7.1.3).

Contract:

- The site setting ``storage`` holds the notice's settings — ``notify`` (bool, off by
  default), ``notify_by`` (``percent_used``: notify when at least ``threshold`` % of the
  disk is used; ``gb_free``: when less than ``threshold`` GB, of 2**30 bytes, are free) —
  and what the task keeps: ``figures`` (``StorageFigures.to_dict``, with when they were
  measured) and ``alerted`` (the day of the last notice while storage stays low).
- ``update(site, when)`` measures, stores the figures and, if storage is low, tells the
  administrators (a notification each and a mail when outgoing mail is set up): once per
  low spell — not again until storage is fine again — and at most once a day. The
  notification is keyed on the day, and the mail sent only when it was made, so a retried
  run (or a second run the same day) tells nobody twice.
- ``TASK`` ("storage.measure", daily at 01:30, on by default) runs ``update`` for its due
  time; the admin page's *Measure now* runs it in the request (it is cheap).
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from core.apps.storage.measure import StorageFigures, measure
from core.kernel.errors import N_

log = logging.getLogger(__name__)

TASK = "storage.measure"
SCHEDULE = "30 1 * * *"
SETTING = "storage"
NOTIFY_BY = ("percent_used", "gb_free")
GB = 2**30
URL = "/admin/storage"


@dataclass(frozen=True)
class StorageSettings:
    notify: bool = False
    notify_by: str = "percent_used"
    threshold: float = 90.0


def stored(site) -> dict:
    value = site.settings.get(SETTING)
    return dict(value) if isinstance(value, dict) else {}


def settings_of(site) -> StorageSettings:
    kept = stored(site)
    by = kept.get("notify_by") if kept.get("notify_by") in NOTIFY_BY else "percent_used"
    try:
        threshold = float(kept["threshold"])
    except (KeyError, TypeError, ValueError):
        threshold = StorageSettings.threshold
    return StorageSettings(bool(kept.get("notify")), by, threshold)


def save_settings(site, settings: StorageSettings) -> None:
    site.set_setting(SETTING, {**stored(site), "notify": settings.notify,
                               "notify_by": settings.notify_by,
                               "threshold": settings.threshold})


def figures_of(site) -> StorageFigures | None:
    return StorageFigures.from_dict(stored(site).get("figures"))


def is_low(settings: StorageSettings, figures: StorageFigures) -> bool:
    if settings.notify_by == "gb_free":
        return figures.available < settings.threshold * GB
    return figures.percent_used >= settings.threshold


def update(site, when: dt.datetime) -> StorageFigures:
    figures = measure(site)
    settings, kept = settings_of(site), stored(site)
    alerted = kept.get("alerted")
    if not (settings.notify and is_low(settings, figures)):
        alerted = None  # fine again (or no notice wanted): the next low spell is told
    elif not alerted:
        alerted = when.date().isoformat()
        _tell_administrators(site, figures, settings, alerted)
    site.set_setting(SETTING, {**kept, "figures": figures.to_dict(), "alerted": alerted})
    return figures


def run_measure(site, due: dt.datetime) -> str:
    figures = update(site, due)
    return f"{figures.used / GB:.1f} GB used of {figures.total / GB:.1f} GB " \
           f"({figures.percent_used:.0f}%), {figures.available / GB:.1f} GB free"


def _tell_administrators(site, figures: StorageFigures, settings: StorageSettings,
                         day: str) -> None:
    from core.apps.notifications.admins import notify_administrators
    notify_administrators(
        site, f"Storage is low on the CRM's server: {figures.available / GB:.1f} GB free of "
        f"{figures.total / GB:.1f} GB ({figures.percent_used:.0f}% used).", url=URL,
        key=f"storage-low:{day}", subject="CRBM: storage is low",
        footer="Administration → Storage utilization shows what uses it.")


def tasks():
    from core.kernel.hooktypes import ScheduledTask
    return [ScheduledTask(TASK, N_("Update disk space usage"), run_measure, SCHEDULE)]
