"""Backup archives: a zip with a manifest and a checksum for every member.

Contract:

- Members: ``database/<table>.jsonl`` (``snapshot.dump_table``, one per table, in the order
  they load), ``site/<path>`` (the site folder's files the backup's scope takes:
  ``FILE_SCOPES``), and ``manifest.json``, written last.
- The manifest says what made the archive and what it holds: the format, CRBM's version,
  the database it came from, the scope, the plugins (enabled, with versions; disabled), the
  packs with versions, the schema's fingerprint, the tables with their row counts, and
  every member's SHA-256 and size.
- ``open_archive(path)`` checks it whole before anything is restored: the manifest is
  there and of a known format, every member listed is present with its checksum and no
  other is, and the CRBM that made it is not newer than this one. A problem is an
  ``ArchiveError`` naming the member.

A zip rather than a tarball: its members can be read one at a time (the manifest first,
without reading the rest), which is what checking and restoring do; 1CRM's backups are
zips too. Members are deflated as they are written, so memory stays flat.
"""
from __future__ import annotations

import hashlib
import json
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from packaging.version import InvalidVersion, Version

from core import __version__
from core.kernel.errors import CrbmError

FORMAT = 1
MANIFEST = "manifest.json"
DATABASE = "database/"
SITE = "site/"
CHUNK = 1 << 20
COMPRESS_LEVEL = 1


class ArchiveError(CrbmError):
    """An archive that cannot be restored: the message names the member and the reason."""


class _Hashing:
    """A member being written: its bytes go through SHA-256 on the way in."""

    def __init__(self, out: IO[bytes]):
        self.out, self.digest, self.size = out, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.out.write(data)


class ArchiveWriter:
    def __init__(self, path: Path):
        self.zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)
        self.members: dict[str, dict] = {}

    def member(self, name: str):
        """A context manager: a writable member, its checksum recorded when it closes."""
        return _Member(self, name)

    def add_file(self, name: str, source: Path) -> None:
        with self.member(name) as out, open(source, "rb") as data:
            while chunk := data.read(CHUNK):
                out.write(chunk)

    def close(self, manifest: dict) -> None:
        manifest = {**manifest, "members": self.members}
        self.zip.writestr(MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False))
        self.zip.close()


class _Member:
    def __init__(self, writer: ArchiveWriter, name: str):
        self.writer, self.name = writer, name

    def __enter__(self) -> _Hashing:
        info = zipfile.ZipInfo(self.name, time.localtime()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        # level 1: a fifth faster than zlib's default 6 for ~16 % more bytes (bench/backup.py);
        # a ZipInfo carries its own level (``_compresslevel``, still honoured by 3.13+)
        info._compresslevel = COMPRESS_LEVEL
        self.raw = self.writer.zip.open(info, "w", force_zip64=True)
        self.hashing = _Hashing(self.raw)
        return self.hashing

    def __exit__(self, kind, exc, tb):
        self.raw.close()
        self.writer.members[self.name] = {"sha256": self.hashing.digest.hexdigest(),
                                          "size": self.hashing.size}
        return False


@dataclass
class Archive:
    path: Path
    zip: zipfile.ZipFile
    manifest: dict

    @property
    def tables(self) -> list[dict]:
        return self.manifest["tables"]

    def lines(self, table: str) -> Iterator[bytes]:
        with self.zip.open(f"{DATABASE}{table}.jsonl") as member:
            yield from member

    def site_files(self) -> list[str]:
        """The site folder's paths the archive holds (``site/`` taken off)."""
        return [name[len(SITE):] for name in self.manifest["members"] if name.startswith(SITE)]

    def extract_site_file(self, relative: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        with self.zip.open(SITE + relative) as member, open(target, "wb") as out:
            while chunk := member.read(CHUNK):
                out.write(chunk)

    def close(self) -> None:
        self.zip.close()


def open_archive(path: Path) -> Archive:
    """The archive at ``path``, checked whole (see the module's contract)."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ArchiveError(f"{path.name} is not a CRBM backup (not a readable zip: {exc})") \
            from exc
    try:
        manifest = _manifest(archive, path)
        _check_version(manifest)
        _check_members(archive, manifest)
    except Exception:
        archive.close()
        raise
    return Archive(path, archive, manifest)


def _manifest(archive: zipfile.ZipFile, path: Path) -> dict:
    try:
        manifest = json.loads(archive.read(MANIFEST))
    except KeyError:
        raise ArchiveError(f"{path.name} is not a CRBM backup (no {MANIFEST})") from None
    except (ValueError, zipfile.BadZipFile) as exc:
        raise ArchiveError(f"{MANIFEST}: unreadable ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArchiveError(f"{MANIFEST}: format {manifest.get('format')!r} is not one this "
                           f"CRBM reads ({FORMAT})" if isinstance(manifest, dict)
                           else f"{MANIFEST}: not an object")
    for key in ("crbm_version", "tables", "members", "plugins"):
        if key not in manifest:
            raise ArchiveError(f"{MANIFEST}: no {key!r}")
    return manifest


def _check_version(manifest: dict) -> None:
    """A backup of a newer CRBM is refused: its tables may hold what this one cannot read.
    An older one restores: the schema sync after the load brings its tables up to date."""
    try:
        made_by = Version(str(manifest["crbm_version"]))
    except InvalidVersion:
        raise ArchiveError(f"{MANIFEST}: crbm_version {manifest['crbm_version']!r} is not a "
                           "version") from None
    if made_by > Version(__version__):
        raise ArchiveError(f"the backup was made by CRBM {made_by}, newer than this CRBM "
                           f"({__version__}): upgrade CRBM before restoring it")


def _check_members(archive: zipfile.ZipFile, manifest: dict) -> None:
    listed = manifest["members"]
    present = {info.filename for info in archive.infolist() if info.filename != MANIFEST}
    for name in sorted(present - set(listed)):
        raise ArchiveError(f"{name}: in the archive but not in its manifest")
    for name, expected in listed.items():
        if name not in present:
            raise ArchiveError(f"{name}: listed in the manifest but missing")
        digest = hashlib.sha256()
        try:
            with archive.open(name) as member:
                while chunk := member.read(CHUNK):
                    digest.update(chunk)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:  # a bad CRC, a cut member
            raise ArchiveError(f"{name}: damaged ({exc})") from exc
        if digest.hexdigest() != expected.get("sha256"):
            raise ArchiveError(f"{name}: checksum mismatch (the archive was changed or damaged)")
    for table in manifest["tables"]:
        if f"{DATABASE}{table['name']}.jsonl" not in listed:
            raise ArchiveError(f"{DATABASE}{table['name']}.jsonl: listed in the manifest's "
                               "tables but missing")
