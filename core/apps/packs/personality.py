"""Personality packs: a site's customizations, carried to another site.

Export writes every site customization (custom modules and fields, layouts, dropdown
edits, tab groups and renamed tabs — the registry's "site" layer) to
``customizations.yaml``, each item tagged with its owner and when it last changed, plus
chosen installed packs bundled under ``packs/``.

Import is declarative: ``plan`` compares the pack with the target site — items to add,
update and remove — and flags as *conflicts* the items the target changed after the
pack's version of them; the installer refuses those unless overwriting is confirmed.
The items a personality replaced are kept in the pack's folder (``.undo.json``), so
disabling or uninstalling it puts them back.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from core.kernel import customizations
from core.kernel.customizations import Item

FILE = "customizations.yaml"
FORMAT = 1
UNDO = ".undo.json"


def _parse_time(text) -> dt.datetime | None:
    if isinstance(text, dt.datetime):
        return text if text.tzinfo else text.replace(tzinfo=dt.UTC)
    try:
        value = dt.datetime.fromisoformat(str(text))
    except (TypeError, ValueError):
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def problems(body) -> list[str]:
    """What is wrong with a customizations.yaml document (empty when it is fine)."""
    if not isinstance(body, dict):
        return ["must be a mapping with format, exported_at and items"]
    out = []
    unknown = set(body) - {"format", "exported_at", "crbm", "items", "packs"}
    if unknown:
        out.append(f"unknown key(s): {', '.join(sorted(unknown))}")
    if body.get("format") != FORMAT:
        out.append(f"format must be {FORMAT}")
    if _parse_time(body.get("exported_at")) is None:
        out.append("exported_at must be an ISO date and time")
    items = body.get("items", [])
    if not isinstance(items, list):
        return out + ["items must be a list"]
    seen = set()
    for i, item in enumerate(items):
        where = f"items[{i}]"
        if not isinstance(item, dict):
            out.append(f"{where}: must be a mapping")
            continue
        if item.get("kind") not in customizations.KINDS:
            out.append(f"{where}.kind: must be one of {', '.join(customizations.KINDS)}")
        if not isinstance(item.get("name"), str) or not item.get("name"):
            out.append(f"{where}.name: required")
        if not isinstance(item.get("body"), dict):
            out.append(f"{where}.body: must be a mapping")
        if _parse_time(item.get("modified_at")) is None:
            out.append(f"{where}.modified_at: must be an ISO date and time")
        key = (item.get("kind"), item.get("name"))
        if key in seen:
            out.append(f"{where}: {key[0]} {key[1]} appears twice")
        seen.add(key)
    return out


def read(folder: Path) -> tuple[list[Item], dt.datetime]:
    path = folder / FILE
    if not path.is_file():
        return [], dt.datetime.now(dt.UTC)
    body = yaml.safe_load(path.read_text(encoding="utf-8"))
    items = [Item(i["kind"], i["name"], i["body"], _parse_time(i["modified_at"]))
             for i in body.get("items", [])]
    return items, _parse_time(body["exported_at"])


# -- import: the plan ---------------------------------------------------------------------

@dataclass
class Change:
    action: str  # "add", "update", "remove"
    key: tuple[str, str]
    conflict: bool = False

    def __str__(self) -> str:
        kind, name = self.key
        what = "dropdown lists" if kind == "dropdowns" else "module"
        note = " — CHANGED ON THIS SITE SINCE (newer here)" if self.conflict else ""
        return f"{self.action} customization: {what} {name}{note}"


@dataclass
class Plan:
    """Make the site's customizations match ``wanted``; ``current`` is what it has."""

    current: dict[tuple[str, str], Item]
    wanted: dict[tuple[str, str], Item]
    exported_at: dt.datetime
    changes: list[Change] = field(default_factory=list)

    def describe(self) -> list[str]:
        return [str(c) for c in self.changes] or ["no customization changes"]

    def conflicts(self) -> list[str]:
        return [f"{c.key[0]} {c.key[1]}" for c in self.changes if c.conflict]

    def result(self) -> list[Item]:
        return list(self.wanted.values())

    def objects(self) -> list[tuple[str, str]]:
        return sorted(("customization", f"{k}:{n}") for k, n in self.wanted)

    def write(self, conn, user_id: str | None) -> None:
        table = _table(conn)
        changed = [self.wanted[c.key] for c in self.changes if c.action != "remove"]
        removed = [c.key for c in self.changes if c.action == "remove"]
        customizations.write(conn, table, changed, removed, user_id)

    def undo_record(self) -> list[dict]:
        """Each changed key with what the site had before (None: it had nothing)."""
        out = []
        for change in self.changes:
            before = self.current.get(change.key)
            out.append({"kind": change.key[0], "name": change.key[1],
                        "before": None if before is None else before.body})
        return out


def _table(conn):
    from core.kernel import database
    return database.kernel_table("crbm_customizations")


def plan(site, folder: Path) -> Plan:
    items, exported_at = read(folder)
    current = {i.key: i for i in customizations.read(site.engine)}
    wanted = {i.key: i for i in items}
    result = Plan(current, wanted, exported_at)
    for key, item in sorted(wanted.items()):
        have = current.get(key)
        if have is None:
            result.changes.append(Change("add", key))
        elif have.body != item.body:
            newer = have.modified_at is not None and item.modified_at is not None and \
                have.modified_at > item.modified_at
            result.changes.append(Change("update", key, newer))
    for key, have in sorted(current.items()):
        if key not in wanted:
            newer = have.modified_at is not None and have.modified_at > exported_at
            result.changes.append(Change("remove", key, newer))
    return result


# -- undo (disable / uninstall of a personality) ------------------------------------------

@dataclass
class Undo:
    current: dict[tuple[str, str], Item]
    restore: list[dict]

    def result(self) -> list[Item]:
        out = dict(self.current)
        for entry in self.restore:
            key = (entry["kind"], entry["name"])
            if entry["before"] is None:
                out.pop(key, None)
            else:
                out[key] = Item(*key, entry["before"])
        return list(out.values())

    def write(self, conn, user_id: str | None) -> None:
        back = [Item(e["kind"], e["name"], e["before"]) for e in self.restore
                if e["before"] is not None]
        gone = [(e["kind"], e["name"]) for e in self.restore if e["before"] is None]
        customizations.write(conn, _table(conn), back, gone, user_id)


def undo_items(site, folder: Path) -> Undo:
    path = folder / UNDO
    restore = json.loads(path.read_text()) if path.is_file() else []
    return Undo({i.key: i for i in customizations.read(site.engine)}, restore)


def describe_undo(site, folder: Path) -> list[str]:
    undo = undo_items(site, folder)
    return [f"{'remove' if e['before'] is None else 'restore the earlier'} customization: "
            f"{e['kind']} {e['name']}" for e in undo.restore]


# -- export -------------------------------------------------------------------------------

def export(site, name: str, version: str, title: str, bundle: list[str] = ()) -> bytes:
    """A personality pack (zip bytes) of the site's customizations and the packs named
    in ``bundle`` (installed ones, rebuilt from their files)."""
    from core.apps.packs.pack_archive import build

    now = dt.datetime.now(dt.UTC)
    items = customizations.read(site.engine)
    installed = {p.name: p for p in site.packs.installed()}
    owners = {}
    for kind, obj, pack in site.packs.objects():
        owners.setdefault(pack, []).append(f"{kind} {obj}")
    body = {
        "format": FORMAT, "exported_at": now.isoformat(), "crbm": _crbm_version(),
        "items": [{"kind": i.kind, "name": i.name, "owner": "site",
                   "modified_at": (i.modified_at or now).isoformat(), "body": i.body}
                  for i in items],
        "packs": [{"name": n, "version": installed[n].version, "kind": installed[n].kind,
                   "owns": sorted(owners.get(n, []))} for n in bundle],
    }
    manifest = {"name": name, "kind": "personality", "version": version, "title": title,
                "description": f"Customizations of {site.folder.name}, exported {now:%Y-%m-%d %H:%M} UTC",
                "provides": {"bundled": list(bundle)} if bundle else {}}
    if not manifest["provides"]:
        manifest.pop("provides")
    for pack_name in bundle:
        if pack_name not in installed:
            from core.apps.packs.pack_archive import refuse
            raise refuse(pack_name, "cannot be bundled: no such pack is installed", "export")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive, \
            tempfile.TemporaryDirectory() as scratch:
        archive.writestr("pack.yaml", yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True))
        archive.writestr(FILE, yaml.safe_dump(body, sort_keys=False, allow_unicode=True))
        for pack_name in bundle:
            built = build(site.pack_folder(pack_name), Path(scratch))
            archive.writestr(f"packs/{built.name}", built.read_bytes())
    body_check = problems(body)
    assert not body_check, body_check  # what we write, we can read
    return out.getvalue()


def _crbm_version() -> str:
    from core import __version__
    return __version__
