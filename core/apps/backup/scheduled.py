"""Scheduled backups: the site's backup settings and the Scheduler's "Back up the site" task.

Contract:

- ``settings_of(site) -> BackupSettings`` reads the site setting ``backup`` (the admin page
  writes it; ``crbm settings`` can too): the local folder (default ``<site>/backups``), the
  scope (``FILE_SCOPES``), how many to keep here, an age public key to encrypt to, and a
  remote copy (``remote.Remote``: SFTP or S3-compatible storage) with how many to keep
  there. Its secrets (an SSH private key, an S3 secret key) are stored sealed with the
  site's key (``core.kernel.crypto``) and unsealed only here, to connect.
- ``TASK`` ("backup.run", off until an administrator turns it on, as 1CRM's "Scheduled
  backup enabled") runs through the job queue once per due time. Its archive is named
  after the due time, so a retried run reuses an archive already made and only does what
  is left (the remote copy): a retry or a redelivery makes one backup, not two.
- A run that fails raises (the Scheduler page shows it failed, the queue retries), after
  telling the administrators: a notification each, keyed on the due time, and a mail when
  outgoing mail is set up.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

from core.apps.backup import backup as backups
from core.kernel import crypto
from core.kernel.errors import N_, CrbmError

log = logging.getLogger(__name__)

TASK = "backup.run"
SCHEDULE = "0 2 * * *"  # daily, in the quiet hours
SETTING = "backup"
SECRETS = ("private_key", "secret_key")  # of a remote's settings: stored sealed
DEFAULT_KEEP = 5  # 1CRM's default, here and remote


@dataclass(frozen=True)
class BackupSettings:
    folder: Path
    files: str = "all"
    keep: int = DEFAULT_KEEP
    recipient: str | None = None
    remote: dict | None = None  # as stored: secrets sealed
    keep_remote: int = DEFAULT_KEEP


def settings_of(site) -> BackupSettings:
    stored = site.settings.get(SETTING)
    stored = stored if isinstance(stored, dict) else {}
    folder = Path(stored.get("folder") or backups.default_folder(site))
    if not folder.is_absolute():
        folder = site.folder / folder
    files = stored.get("files") if stored.get("files") in backups.FILE_SCOPES else "all"
    remote = stored.get("remote") if isinstance(stored.get("remote"), dict) and \
        stored["remote"].get("kind") else None
    return BackupSettings(folder, files, _count(stored.get("keep")),
                          str(stored.get("recipient") or "").strip() or None, remote,
                          _count(stored.get("keep_remote")))


def _count(value) -> int:
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return DEFAULT_KEEP


def seal_secrets(site, remote: dict) -> dict:
    """A remote's settings as stored: its secrets sealed (already sealed ones kept)."""
    return {k: (crypto.seal(site, v) if k in SECRETS and v and not crypto.is_sealed(v) else v)
            for k, v in remote.items()}


def remote_of(site, settings: BackupSettings):
    """The configured remote, its secrets unsealed (``remote.Remote``), or None."""
    if not settings.remote:
        return None
    from core.apps.backup import remote
    values = {k: (crypto.unseal(site, v) if k in SECRETS and v else v)
              for k, v in settings.remote.items()}
    return remote.Remote.from_settings(values)


def run_backup(site, due: dt.datetime) -> str:
    """The task: this due time's backup made (or found made), copied and pruned."""
    settings = settings_of(site)
    try:
        removed: list[str] = []
        path = backups.make_backup(site, settings.folder, settings.files, settings.recipient,
                                   settings.keep, stamp=due, report=removed.append)
        said = f"{path.name} ({path.stat().st_size / 2**20:.1f} MB)"
        if removed:
            said += f"; {'; '.join(removed)}"
        target = remote_of(site, settings)
        if target is not None:
            from core.apps.backup import remote
            remote.upload(target, path)
            remote.prune(target, settings.keep_remote)
            said += f", copied to {target.kind} {target.host or target.bucket}"
        return said
    except Exception as exc:
        _tell_administrators(site, due, exc)
        raise


def _tell_administrators(site, due: dt.datetime, exc: Exception) -> None:
    """A notification for each administrator and, if mail is set up, a mail: once per due
    time (a retried run that fails again says nothing new)."""
    from core.apps.notifications.admins import notify_administrators
    reason = str(exc) if isinstance(exc, CrbmError) else f"{type(exc).__name__}: {exc}"
    notify_administrators(
        site, f"The backup of {due:%Y-%m-%d %H:%M} UTC failed: {reason}", url="/admin/backups",
        key=f"backup-failed:{due.isoformat()}", subject="CRBM: the backup failed",
        footer="Administration → Backups shows the settings and the backups made.")


def tasks():
    from core.kernel.hooktypes import ScheduledTask
    return [ScheduledTask(TASK, N_("Back up the site"), run_backup, SCHEDULE, enabled=False)]
