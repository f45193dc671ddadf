"""Installing a shipped pack's source folder into a test site."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import tempfile
from pathlib import Path

from core.apps.packs.pack_archive import build

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "personality_packs"


def install_folder(site, folder: Path | str, user=None) -> str:
    """Build the pack in ``folder`` (e.g. ``"lang_fr"`` for ``personality_packs/lang_fr``)
    and install it with the real loader; returns its name."""
    folder = SHIPPED / folder if isinstance(folder, str) else Path(folder)
    with tempfile.TemporaryDirectory() as out:
        path = build(folder, Path(out))
        report = site.packs.install(path.read_bytes(), user, path.name)
    return report.manifest.name


def register(site, manifest: dict) -> None:
    """Mark the pack whose files are already in the site's pack store as enabled
    (no checks, no reload: for tests of the registry layers themselves)."""
    table = site.tables.tables["crbm_packs"]
    with site.engine.begin() as conn:
        conn.execute(table.delete().where(table.c.name == manifest["name"]))
        conn.execute(table.insert().values(
            name=manifest["name"], kind=manifest["kind"], version=str(manifest["version"]),
            title=manifest.get("title", manifest["name"]), status="enabled",
            manifest=json.dumps(manifest), digest=hashlib.sha256(b"").hexdigest(),
            installed_at=dt.datetime.now(dt.UTC)))
