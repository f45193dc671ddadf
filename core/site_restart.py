"""A site replaced under running processes must not be served by them.

A restore (``core.apps.backup.restore``) switches a new database and new files in while
``crbm serve`` and ``crbm worker`` processes may run: they still hold the previous
database's connections (a SQLite file moved aside stays open; a server site's URL changed
in site.yaml), so whatever they wrote from then on would be lost. The restore's last step
writes ``MARKER`` in the site folder; every process notes it when it starts
(``RestartWatch``) and looks again — one ``stat`` — on each request and each job-worker
tick. Once it changed, the web process answers 503 ("restart CRBM") to everything, /health
included, so a supervisor restarts it, and a job worker stops (``crbm worker`` exits, to be
restarted on the restored site).
"""
from __future__ import annotations

import os
from pathlib import Path

MARKER = "restored-at.txt"


class RestartWatch:
    def __init__(self, folder: Path):
        self.path = Path(folder) / MARKER
        self.seen = self._stamp()

    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_mtime_ns

    def needed(self) -> bool:
        """Whether the site was restored since this process started."""
        return self._stamp() != self.seen
