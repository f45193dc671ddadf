"""Upgrades & Customization: installing and removing packs on a site, atomically.

One service, used alike by the CLI (``crbm pack ...``) and the admin page. Installing
runs the steps of the implementation guide (§7.2.3), each reported as it passes:

    unpack -> permission -> validate -> compatibility          (checks: nothing changes)
    files -> registry -> schema -> hook -> history              (apply)
    cleanup

No check imports a pack's Python: permission (administrators only; code packs only
where the site allows them) comes before anything reads the pack beyond its file list,
and validate and compatibility build the registry the pack would give without its
``plugin.py`` (compiled for syntax only). A code pack's code first runs at the registry
step of a real install, or when an installed pack is enabled or the site boots.

``check`` runs the first four and lists what the install would change; ``install`` runs
them all, and a failure at any apply step puts the site back exactly as it was: the
pack's files leave the pack store (an upgraded pack's old files come back), the tables
and columns the schema step created are dropped, the transaction holding the registry
rows, the pack hook's writes and the history record is rolled back, and the registry
is rebuilt from the unchanged database. The failure itself is then recorded in history.

An install that is killed outright (kill -9, a power cut) cannot put things back itself.
Each check and install keeps a journal beside its staging folder (``packs/.staging/<id>.json``:
which pack, which step, where the previous version's files were moved) and holds an
exclusive lock on ``<id>.lock`` while it runs; the operating system releases the lock when
the process dies. ``recover_interrupted`` (at every site boot, and before every check and
install) takes each journal whose lock is free, puts the pack's files back as the database
says they are, removes the staging debris, and records the attempt in history as
"interrupted".

Every object a pack brings (module, table, column, field, layout, dropdown, template,
static file, translation, theme, customization) is recorded against it in
``crbm_pack_objects``, whose key is the object alone: two packs can never own one
object, and removal knows exactly what to take away.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import re
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from core import __version__ as CRBM_VERSION
from core.apps.packs import personality
from core.apps.packs.pack_archive import (
    MANIFEST,
    Archive,
    Manifest,
    PackError,
    Problem,
    check_folder,
    module_problems,
    open_archive,
    refuse,
    unpack,
    upload_name,
)
from core.apps.studio.studio import module_name_problem
from core.kernel import customizations as site_customizations
from core.kernel import database, i18n
from core.kernel.errors import CrbmError, MetadataError
from core.kernel.registry import Registry, read_extensions, read_folder
from core.kernel.site import EnabledPack
from core.web import csv_export

try:
    import fcntl  # the journal locks (POSIX); elsewhere interrupted installs are not recovered
except ImportError:  # pragma: no cover - Windows
    fcntl = None

log = logging.getLogger(__name__)

CHECK_STEPS = ("unpack", "permission", "validate", "compatibility")
APPLY_STEPS = ("files", "registry", "schema", "hook", "history")
STEPS = (*CHECK_STEPS, *APPLY_STEPS, "cleanup")
# kept by an uninstall (the data is in them; a module keeps its name for the data's sake),
# dropped by a purge
DATA_OBJECTS = ("table", "column", "module")
REMOVAL_MODES = ("disable", "uninstall", "purge")
CODE_SETTING = "allow_code_packs"


@dataclass
class Step:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Report:
    """What an operation did (or, for a check, would do), step by step."""

    action: str  # "check", "install", "disable", "enable", "uninstall", "purge"
    manifest: Manifest | None = None
    steps: list[Step] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)  # what changes on the site
    problems: list[Problem] = field(default_factory=list)
    export: Path | None = None  # a purge's data export
    conflicts: list[str] = field(default_factory=list)  # personality: newer changes on this site

    @property
    def ok(self) -> bool:
        return not self.problems

    def passed(self, name: str, detail: str = "") -> None:
        self.steps.append(Step(name, True, detail))


@dataclass(frozen=True)
class InstalledPack:
    name: str
    kind: str
    version: str
    title: str
    status: str
    installed_at: dt.datetime
    installed_by: str | None
    manifest: dict

    @property
    def requires(self) -> dict:
        return self.manifest.get("requires", {}).get("packs", {})


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Packs:
    """The packs of one site. ``fault`` names a step to fail (fault-injection tests)."""

    def __init__(self, site):
        self.site = site
        self.fault: str | None = None
        self._tried: dict[tuple[str, str], Registry] = {}  # registries tried in this check

    # -- where things are -------------------------------------------------------------------

    @property
    def store(self) -> Path:
        return self.site.folder / "packs"

    def _scratch(self, kind: str) -> Path:
        """Hidden folders of the pack store: .staging, .trash, .uploads, .exports."""
        folder = self.store / f".{kind}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _table(self, name: str) -> sa.Table:
        return self.site.tables.tables[name]

    # -- reading ----------------------------------------------------------------------------

    def installed(self, include_uninstalled: bool = False) -> list[InstalledPack]:
        packs = self._table("crbm_packs")
        query = sa.select(packs).order_by(packs.c.name)
        if not include_uninstalled:
            query = query.where(packs.c.status != "uninstalled")
        with self.site.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [InstalledPack(r.name, r.kind, r.version, r.title, r.status, r.installed_at,
                              r.installed_by, json.loads(r.manifest)) for r in rows]

    def get(self, name: str) -> InstalledPack | None:
        return next((p for p in self.installed(True) if p.name == name), None)

    def objects(self, name: str | None = None) -> list[tuple[str, str, str]]:
        """(kind, object, owning pack), sorted."""
        objects = self._table("crbm_pack_objects")
        query = sa.select(objects.c.kind, objects.c.name, objects.c.pack)
        if name:
            query = query.where(objects.c.pack == name)
        with self.site.engine.connect() as conn:
            return sorted(tuple(r) for r in conn.execute(query))

    def history(self, limit: int = 200) -> list[dict]:
        history = self._table("crbm_pack_history")
        with self.site.engine.connect() as conn:
            rows = conn.execute(sa.select(history).order_by(history.c.id.desc()).limit(limit))
            return [dict(r._mapping) for r in rows]

    def _record(self, conn, action: str, pack: str, version: str | None, outcome: str,
                detail: str, user) -> None:
        if outcome == "ok":  # the change commits with this row: other workers reload
            site_customizations.bump_epoch(conn)
        conn.execute(self._table("crbm_pack_history").insert().values(
            at=_now(), user_id=getattr(user, "id", None),
            username=getattr(user, "username", None) or "command line", action=action,
            pack=pack[:60], version=(version or "")[:40] or None, outcome=outcome,
            detail=detail))

    def _record_alone(self, *args) -> None:
        with self.site.engine.begin() as conn:
            self._record(conn, *args)

    # -- installs that were killed ------------------------------------------------------------

    def recover_interrupted(self) -> list[str]:
        """Put back what checks and installs killed mid-way left behind (see the module
        docstring), and record each install in history as "interrupted". Runs at every
        site boot (before the registry reads the pack store) and before every check and
        install; an attempt still running holds its lock and is left alone. Returns one
        line per install recovered."""
        staging = self.store / ".staging"
        if fcntl is None or not staging.is_dir():
            return []
        done = []
        for attempt_id in sorted({p.name.split(".")[0] for p in staging.iterdir()
                                  if not p.name.startswith(".")}):
            attempt = Attempt.claim(staging, attempt_id)  # None: still running
            if attempt is None:
                continue
            try:
                line = self._recover(attempt.state) if attempt.state else None
            except (OSError, sa.exc.SQLAlchemyError):  # never stop a boot: say, retry later
                log.exception("could not recover the interrupted pack attempt %s", attempt_id)
                attempt.release()
                continue
            attempt.close()
            if line:
                log.warning("%s", line)
                done.append(line)
        return done

    def _recover(self, state: dict) -> str | None:
        """Undo one killed attempt (its journal is ``state``); the line for the log."""
        if state.get("kind") != "install":
            return None  # a dry run changes nothing; its staging folder goes with the journal
        name, step = state.get("pack"), state.get("step")
        if step is not None and self._committed(state):
            self._discard_backup(state)  # it finished; only its clean-up was cut short
            return None
        if step is None:
            detail = ("interrupted during its checks: the process stopped; nothing had "
                      "changed")
        else:
            self._put_back(state)
            detail = (f"interrupted at step {step}: the process stopped; the pack's files "
                      "were put back as they were")
        detail += f" (started {state.get('started', '?')})"
        user = _JournalUser(state.get("user_id"), state.get("username"))
        history = database.kernel_table("crbm_pack_history")
        if sa.inspect(self.site.engine).has_table(history.name):
            with self.site.engine.begin() as conn:
                conn.execute(history.insert().values(
                    at=_now(), user_id=user.id, username=user.username or "command line",
                    action=state.get("record_as") or "install",
                    pack=(name or state.get("source") or "pack")[:60],
                    version=state.get("version"), outcome="interrupted", detail=detail))
        return f"pack {name or state.get('source')}: {detail}"

    def _committed(self, state: dict) -> bool:
        """Whether the killed install had committed (the database has its version)."""
        packs = database.kernel_table("crbm_packs")
        if not sa.inspect(self.site.engine).has_table(packs.name):
            return False
        with self.site.engine.connect() as conn:
            row = conn.execute(sa.select(packs.c.version, packs.c.digest, packs.c.status)
                               .where(packs.c.name == state["pack"])).first()
        return row is not None and row.status == "enabled" and \
            (row.version, row.digest) == (state.get("version"), state.get("digest"))

    def _put_back(self, state: dict) -> None:
        """The pack store as before the install: the previous version's files back in place
        if they had been moved aside, the new ones gone."""
        target_name = state.get("target") or ""
        if not re.fullmatch(r"[a-z][a-z0-9_]{1,59}", target_name):
            return  # not a journal this code wrote
        target = self.store / target_name
        backup = self._journal_backup(state)
        if backup is not None and backup.is_dir():
            if target.exists():
                shutil.rmtree(target)
            backup.rename(target)
        elif not state.get("had_target") and target.exists():
            shutil.rmtree(target)  # a new pack's files; had there been files, they are these

    def _discard_backup(self, state: dict) -> None:
        backup = self._journal_backup(state)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)

    def _journal_backup(self, state: dict) -> Path | None:
        name = state.get("backup") or ""
        return self.store / ".trash" / name if re.fullmatch(r"[0-9a-f]{32}", name) else None

    # -- uploads (queued, installed later from the admin page) ------------------------------

    def upload(self, data: bytes, filename: str, user) -> str:
        """Keep an uploaded zip for a later install; refuse what is not a readable pack, or
        comes under a hostile file name (``pack_archive.upload_name``)."""
        filename, problem = upload_name(filename)
        try:
            if problem:
                raise refuse(filename, problem, "unpack")
            archive = open_archive(data, filename)
        except PackError as exc:
            self._record_alone("upload", filename, None, "refused", str(exc), user)
            raise
        upload_id = uuid.uuid4().hex
        folder = self._scratch("uploads")
        (folder / f"{upload_id}.zip").write_bytes(data)
        (folder / f"{upload_id}.json").write_text(json.dumps({
            "filename": filename, "name": archive.manifest.name, "kind": archive.manifest.kind,
            "version": str(archive.manifest.version), "title": archive.manifest.title,
            "at": _now().isoformat(), "by": getattr(user, "username", None)}))
        self._record_alone("upload", archive.manifest.name, str(archive.manifest.version), "ok",
                           filename, user)
        return upload_id

    def uploads(self) -> list[dict]:
        folder = self._scratch("uploads")
        found = [dict(json.loads(p.read_text()), id=p.stem) for p in folder.glob("*.json")]
        return sorted(found, key=lambda u: u["at"], reverse=True)

    def upload_data(self, upload_id: str) -> bytes:
        if not upload_id.isalnum():
            raise refuse(upload_id, "no such upload", "unpack")
        path = self._scratch("uploads") / f"{upload_id}.zip"
        if not path.is_file():
            raise refuse(upload_id, "no such upload (installed or discarded already?)", "unpack")
        return path.read_bytes()

    def discard_upload(self, upload_id: str) -> None:
        if upload_id.isalnum():
            for suffix in (".zip", ".json"):
                (self._scratch("uploads") / f"{upload_id}{suffix}").unlink(missing_ok=True)

    # -- checking -----------------------------------------------------------------------------

    def check(self, data: bytes, user=None, source: str = "pack") -> Report:
        """The checks of an install and the list of what it would change; nothing changes."""
        report = Report("check")
        self.recover_interrupted()
        attempt = Attempt.start(self._scratch("staging"), "check", source, user)
        try:
            self._run_checks(data, source, user, report, attempt.folder)
        except PackError as exc:
            report.problems = exc.problems
            report.steps.append(Step(exc.step, False, str(exc)))
        finally:
            attempt.close()
        return report

    def _fail_if_injected(self, step: str) -> None:
        if self.fault == step:
            raise RuntimeError(f"injected fault at step {step!r}")

    def _run_checks(self, data: bytes, source: str, user, report: Report, scratch: Path,
                    batch: dict[str, Manifest] | None = None,
                    attempt: Attempt | None = None) -> tuple[Archive, Path]:
        """unpack (below ``scratch``, which the caller removes), permission, validate,
        compatibility. Returns the archive and the staged pack folder. Nothing here imports
        the pack's code (see the module docstring)."""
        self._tried.clear()
        archive = self._step("unpack", report, lambda: open_archive(data, source))
        manifest = report.manifest = archive.manifest
        if attempt is not None:  # the journal names the pack from now on
            attempt.write(pack=manifest.name, version=str(manifest.version),
                          digest=archive.digest)
        staged = scratch / manifest.name
        self._step("unpack", report, lambda: unpack(archive, staged),
                   f"{len(archive.files)} files, {archive.size:,} bytes")
        self._step("permission", report, lambda: self._permitted(archive, user))
        self._step("validate", report, lambda: self._validate(manifest, staged, report))
        self._step("compatibility", report,
                   lambda: self._compatible(manifest, staged, batch or {}))
        return archive, staged

    def _step(self, name: str, report: Report, action: Callable, detail: str = ""):
        """Run one step; a failure becomes a ``PackError`` naming the step."""
        try:
            self._fail_if_injected(name)
            result = action()
        except PackError as exc:
            exc.step = name
            raise
        except MetadataError as exc:
            raise PackError([Problem(_inside_pack(p.source), f"{p.path}: {p.reason}")
                             for p in exc.problems], name) from None
        except (CrbmError, OSError, RuntimeError, sa.exc.SQLAlchemyError) as exc:
            raise PackError([Problem(name, str(exc).splitlines()[0])], name) from None
        if name not in [s.name for s in report.steps]:  # unpack reports once, with its detail
            report.passed(name, detail)
        return result

    def _validate(self, manifest: Manifest, staged: Path, report: Report) -> None:
        problems = check_folder(staged, manifest)
        if not problems and manifest.kind in ("module", "upgrade"):
            problems = module_problems(staged, self._registry_without(manifest.name).modules)
        if problems:
            raise PackError(problems, "validate")
        if manifest.kind == "personality":
            plan = personality.plan(self.site, staged)
            problems = [Problem("customizations.yaml", f"module {item.name!r}: {reason}")
                        for item in plan.result() if item.kind == "module"
                        and item.name not in self.site.registry.modules
                        and (reason := module_name_problem(item.name))]
            if problems:  # a module the personality makes: named as the Studio would
                raise PackError(problems, "validate")
            report.changes += plan.describe()
            report.conflicts = plan.conflicts()
            if not manifest.provides.get("bundled"):  # bundled packs are checked as they install
                current = self.site.state()
                try:  # raises MetadataError
                    self.site.reload(customizations=plan.result(), import_code=False)
                finally:
                    self.site.restore(current)
            return
        registry = self._registry_with(manifest, staged)  # raises MetadataError
        objects = self._objects_of(manifest, staged, registry)
        owned = self._owned_by(manifest.name)  # once, not per object
        report.changes += [f"new {kind}: {name}" for kind, name in objects
                           if (kind, name) not in owned
                           and kind not in ("table", "column")]  # the schema lines say those
        report.changes += database.check(self.site.engine, registry).pending

    def _registry_with(self, manifest: Manifest, folder: Path) -> Registry:
        """The registry the site would have with this pack (replacing an older version)."""
        key = (manifest.name, str(folder))
        if key not in self._tried:  # validate and compatibility both need it
            packs = [p for p in self.site.enabled_packs if p.name != manifest.name]
            packs.append(EnabledPack(manifest.name, manifest.kind, manifest.body, folder))
            self._tried[key] = self._registry_of(sorted(packs, key=lambda p: p.name))
        return self._tried[key]

    def _registry_of(self, packs: list[EnabledPack]) -> Registry:
        """The registry ``packs`` give, built without importing a pack's code that is not
        hooked already (a code pack being checked adds its metadata, not its hooks)."""
        current = self.site.state()
        try:
            self.site.reload(packs=packs, import_code=False)
            return self.site.registry
        finally:
            self.site.restore(current)  # also unhooks a code pack that was tried

    def _owned_by(self, name: str) -> set[tuple[str, str]]:
        return {(k, n) for k, n, _ in self.objects(name)}

    def _objects_of(self, manifest: Manifest, folder: Path, registry: Registry
                    ) -> list[tuple[str, str]]:
        """Every object the pack brings, as (kind, name): what ownership records."""
        kind = manifest.kind
        out: list[tuple[str, str]] = []
        if kind == "language":
            out += [("translation", code) for code in manifest.provides.get("languages", [])]
        elif kind == "theme":
            out.append(("theme", manifest.name))
        elif kind == "holiday":
            out.append(("holiday_set", manifest.name))
        if kind not in ("module", "upgrade"):
            return out
        base = self._registry_without(manifest.name)
        for document in read_folder(folder, []) + read_extensions(folder, []):
            if document.kind == "dropdowns":
                out += [("dropdown", name) for name in document.body]
                continue
            module = registry.modules[document.body["name"]]
            if module.name not in base.modules:  # the pack's own module: all of it
                out += [("module", module.name), ("table", module.table)]
                out += [("table", module.link_table(rel)) for rel, spec in
                        module.relationships.items() if spec["kind"] == "many_to_many"
                        and rel in document.body.get("relationships", {})]
                continue
            for name in document.body.get("fields", {}):  # an overlay: what it adds
                out.append(("field", f"{module.name}.{name}"))
                if name not in base.modules[module.name].fields:
                    out += [("column", f"{module.table}.{f.name}")
                            for f in module.expand(name) if f.stored]
            out += [("layout", f"{module.name}.{view}") for view in document.body.get("layouts", {})]
        for sub, kind_name in (("templates", "template"), ("static", "static")):
            out += [(kind_name, p.relative_to(folder / sub).as_posix())
                    for p in sorted((folder / sub).rglob("*")) if p.is_file()]
        return sorted(set(out))

    def _registry_without(self, name: str) -> Registry:
        if not any(p.name == name for p in self.site.enabled_packs):
            return self.site.registry
        key = (name, "")  # an upgrade's base, needed by validate, compatibility and apply
        if key not in self._tried:
            self._tried[key] = self._registry_of([p for p in self.site.enabled_packs
                                                  if p.name != name])
        return self._tried[key]

    def _compatible(self, manifest: Manifest, staged: Path, batch: dict[str, Manifest]) -> None:
        problems = []
        spec = manifest.requires.get("crbm")
        if spec and not SpecifierSet(spec).contains(Version(CRBM_VERSION), prereleases=True):
            problems.append(Problem(f"{MANIFEST}: $.requires.crbm",
                                    f"needs CRBM {spec}; this is CRBM {CRBM_VERSION}"))
        dialect = "mysql" if self.site.engine.dialect.name in ("mysql", "mariadb") \
            else self.site.engine.dialect.name
        databases = manifest.requires.get("databases")
        if databases and dialect not in databases:
            problems.append(Problem(f"{MANIFEST}: $.requires.databases",
                                    f"works on {', '.join(databases)}; this site runs on {dialect}"))
        installed = {p.name: p for p in self.installed()}
        for name, wanted in manifest.required_packs().items():
            have = installed.get(name)
            version = Version(have.version) if have and have.status == "enabled" else \
                (batch[name].version if name in batch else None)
            if version is None:
                state = f" ({have.status})" if have else ""
                problems.append(Problem(f"{MANIFEST}: $.requires.packs.{name}",
                                        f"needs pack {name} {wanted or ''}".rstrip()
                                        + f", which is not installed{state}"))
            elif not wanted.contains(version, prereleases=True):
                problems.append(Problem(f"{MANIFEST}: $.requires.packs.{name}",
                                        f"needs {name} {wanted}; version {version} is installed"))
        current = installed.get(manifest.name)
        if current and current.status != "uninstalled":
            if Version(current.version) > manifest.version:
                problems.append(Problem(manifest.name, f"version {manifest.version} would downgrade "
                                        f"the installed {current.version}; uninstall it first"))
            elif Version(current.version) == manifest.version:
                problems.append(Problem(manifest.name, f"version {current.version} is already "
                                        "installed"))
            elif current.kind != manifest.kind:
                problems.append(Problem(manifest.name, f"is installed as a {current.kind} pack"))
        if manifest.kind != "personality":
            problems += self._ownership_conflicts(manifest, staged)
        if problems:
            raise PackError(problems, "compatibility")

    def _ownership_conflicts(self, manifest: Manifest, staged: Path) -> list[Problem]:
        registry = self._registry_with(manifest, staged)
        owners = {(k, n): p for k, n, p in self.objects()}
        return [Problem(f"{kind} {name}", f"already belongs to pack {owners[(kind, name)]}")
                for kind, name in self._objects_of(manifest, staged, registry)
                if owners.get((kind, name), manifest.name) != manifest.name]

    def _permitted(self, archive: Archive, user) -> None:
        if user is not None and not getattr(user, "is_admin", False):
            raise refuse(archive.manifest.name, "only administrators install packs", "permission")
        if archive.has_code and not self.site.settings.get(CODE_SETTING, False):
            raise refuse(archive.manifest.name,
                         _code_refused([n for n in archive.files if n.endswith(".py")]),
                         "permission")

    # -- installing ---------------------------------------------------------------------------

    def install(self, data: bytes, user=None, source: str = "pack", *,
                overwrite_newer: bool = False, batch: dict[str, Manifest] | None = None) -> Report:
        """Install (or upgrade) a pack. Raises ``PackError`` (with ``.report``) when refused
        or failed; the site is then exactly as before."""
        report = Report("install")
        if batch is None:  # a batch's packs are installed one after the other, by this process
            self.recover_interrupted()
        attempt = Attempt.start(self._scratch("staging"), "install", source, user)
        try:
            try:
                archive, staged = self._run_checks(data, source, user, report, attempt.folder,
                                                   batch, attempt)
                if report.conflicts and not overwrite_newer:
                    raise PackError([Problem(c, "changed on this site after the pack's version; "
                                             "confirm overwriting newer changes to install")
                                     for c in report.conflicts], "validate")
                bundled = self._install_bundled(staged, user, report) \
                    if archive.manifest.kind == "personality" else []
            except PackError as exc:
                name = report.manifest.name if report.manifest else source
                version = str(report.manifest.version) if report.manifest else None
                self._record_alone("install", name, version, "refused", str(exc), user)
                exc.report = report
                report.problems = exc.problems
                report.steps.append(Step(exc.step, False, str(exc)))
                raise
            try:
                self._apply(archive, staged, report, user, attempt)
            except PackError:
                for name in reversed(bundled):  # all or nothing, bundled packs included
                    self.remove(name, "purge", user)
                raise
        finally:
            attempt.close()
        report.passed("cleanup")
        return report

    def _install_bundled(self, staged: Path, user, report: Report) -> list[str]:
        """Install the packs a personality carries (those not installed at that version or
        newer), in dependency order; returns the names newly installed."""
        sources = []
        installed = {p.name: Version(p.version) for p in self.installed()
                     if p.status == "enabled"}
        for path in sorted((staged / "packs").glob("*.zip")):
            data = path.read_bytes()
            manifest = open_archive(data, path.name).manifest
            if manifest.name in installed and installed[manifest.name] >= manifest.version:
                report.changes.append(f"bundled pack {manifest} already installed")
                continue
            sources.append((data, path.name))
        done = []
        try:
            for bundled in self.install_many(sources, user):
                done.append(bundled.manifest.name)
                report.changes.append(f"installed bundled pack {bundled.manifest}")
        except PackError:
            for name in reversed(done):
                self.remove(name, "purge", user)
            raise
        return done

    def install_many(self, sources: list[tuple[bytes, str]], user=None) -> list[Report]:
        """Install several packs, each after the packs it requires (cycles refused)."""
        archives = {}
        for data, source in sources:
            archive = open_archive(data, source)
            archives[archive.manifest.name] = (archive.manifest, data, source)
        manifests = {name: m for name, (m, _, _) in archives.items()}
        have = {p.name for p in self.installed() if p.status == "enabled"}
        for name in sorted(manifests):
            missing = missing_chain(name, manifests, have)
            if missing:
                raise refuse(name, f"missing requirement: {' -> '.join(missing)} "
                             f"({missing[-1]} is neither installed nor among these packs)",
                             "compatibility")
        return [self.install(archives[name][1], user, archives[name][2], batch=manifests)
                for name in install_order(manifests)]

    def _apply(self, archive: Archive, staged: Path, report: Report, user,
               attempt: Attempt) -> None:
        manifest = archive.manifest
        site = self.site
        target = site.pack_folder(manifest.name)
        backup = None
        schema = database.SchemaDiff([], [])
        before = site.state()
        previous = self.get(manifest.name)
        step = "files"
        moved = False
        # what recovery needs if this process dies from here on: where the files go, and
        # where the ones there now are kept (written before anything moves)
        kept = self._scratch("trash") / uuid.uuid4().hex if target.exists() else None
        attempt.write(step=step, target=target.name, had_target=kept is not None,
                      backup=kept.name if kept else None,
                      record_as="upgrade" if previous and previous.status != "uninstalled"
                      else "install")
        try:
            if kept is not None:  # an upgrade, or leftovers of an uninstall: keep to restore
                target.rename(kept)
                backup = kept
            self._fail_if_injected(step)
            shutil.move(str(staged), str(target))
            moved = True
            report.passed(step, str(target.relative_to(site.folder)))

            step = "registry"
            attempt.write(step=step)
            self._fail_if_injected(step)
            pack = EnabledPack(manifest.name, manifest.kind, manifest.body, target)
            packs = sorted([p for p in site.enabled_packs if p.name != manifest.name] + [pack],
                           key=lambda p: p.name)
            plan = personality.plan(site, target) if manifest.kind == "personality" else None
            site.reload(packs=packs, customizations=plan.result() if plan else None)
            objects = (plan.objects() if plan else
                       self._objects_of(manifest, target, site.registry))
            report.passed(step, f"{len(objects)} objects owned")

            step = "schema"
            attempt.write(step=step)
            self._fail_if_injected(step)
            schema = database.sync(site.engine, site.registry, metadata=site.tables,
                                   only=database.changed_tables(before[1], site.tables))
            # what the schema step created is the pack's, whatever made it (a module, a
            # personality's custom field): a purge can take exactly that away
            objects = sorted({*objects, *(("table", t) for t in schema.created_tables),
                              *(("column", f"{t}.{c}") for t, c in schema.added_columns
                                if t not in schema.created_tables)})
            report.passed(step, "; ".join(schema.pending) or "no change")

            step = "hook"
            attempt.write(step=step)
            with site.engine.begin() as conn:
                self._write_registry_rows(conn, archive, objects, user, data_kept=previous)
                if plan:
                    plan.write(conn, getattr(user, "id", None))
                    self._save_undo(target, plan)
                self._fail_if_injected(step)
                site.hook.crbm_pack_installed(site=site, pack=manifest, connection=conn)
                report.passed(step)
                step = "history"
                attempt.write(step=step)
                action = "upgrade" if previous and previous.status != "uninstalled" else "install"
                detail = f"{len(objects)} objects" + \
                    (f", upgraded from {previous.version}" if action == "upgrade" else "")
                self._record(conn, action, manifest.name, str(manifest.version), "ok", detail, user)
                self._fail_if_injected(step)
            report.passed(step)
        except Exception as exc:  # noqa: BLE001 - whatever failed, the site goes back as it was
            self._undo_apply(target, moved, backup, schema, before)
            reason = exc.problems if isinstance(exc, PackError) else \
                [Problem(step, _one_line(exc))]
            self._record_alone("install", manifest.name, str(manifest.version), "failed",
                               f"step {step}: {'; '.join(map(str, reason))}", user)
            report.steps.append(Step(step, False, "; ".join(map(str, reason))))
            report.problems = reason
            error = PackError(reason, step)
            error.report = report
            raise error from None
        site.after_sync()  # counters of new modules, built-in roles
        i18n.reload_translations()  # a language pack may have changed catalogs in place
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)

    def _write_registry_rows(self, conn, archive: Archive, objects, user, data_kept) -> None:
        manifest = archive.manifest
        packs, owned = self._table("crbm_packs"), self._table("crbm_pack_objects")
        conn.execute(packs.delete().where(packs.c.name == manifest.name))
        conn.execute(packs.insert().values(
            name=manifest.name, kind=manifest.kind, version=str(manifest.version),
            title=manifest.title[:200], status="enabled", manifest=json.dumps(manifest.body),
            digest=archive.digest, installed_at=_now(), installed_by=getattr(user, "id", None)))
        # an upgrade's objects replace the old version's; data objects of an earlier
        # version stay the pack's (their data is still there)
        conn.execute(owned.delete().where(owned.c.pack == manifest.name,
                                          owned.c.kind.not_in(DATA_OBJECTS)))
        kept = {(r.kind, r.name) for r in conn.execute(
            sa.select(owned.c.kind, owned.c.name).where(owned.c.pack == manifest.name))}
        rows = [{"kind": k, "name": n, "pack": manifest.name, "version": str(manifest.version)}
                for k, n in objects if (k, n) not in kept]
        if rows:
            try:
                conn.execute(owned.insert(), rows)
            except sa.exc.IntegrityError:  # a concurrent install claimed one: refuse, name it
                raise refuse(manifest.name, "another pack claimed one of its objects meanwhile; "
                             "try again to see which", "registry") from None

    def _undo_apply(self, target: Path, moved: bool, backup: Path | None,
                    schema: database.SchemaDiff, before) -> None:
        """Put files, schema and the in-memory registry back as they were."""
        database.drop(self.site.engine, schema.created_tables, schema.added_columns)
        if moved:
            shutil.rmtree(target, ignore_errors=True)
        if backup is not None:
            backup.rename(target)
        self.site.restore(before)

    # -- disabling, uninstalling, purging -----------------------------------------------------

    def plan_removal(self, name: str, mode: str) -> Report:
        """The dry run: exactly what ``mode`` would change, or why it is refused."""
        report = Report(mode)
        pack = self.get(name)
        if mode not in REMOVAL_MODES:
            report.problems.append(Problem(name, f"unknown operation {mode!r}"))
            return report
        if pack is None:
            report.problems.append(Problem(name, "no such pack is installed"))
            return report
        if pack.kind == "upgrade":
            report.problems.append(Problem(name, "upgrade packs cannot be disabled or removed"))
            return report
        if mode == "disable" and pack.status != "enabled":
            report.problems.append(Problem(name, f"is {pack.status} already"))
        if mode == "uninstall" and pack.status == "uninstalled":
            report.problems.append(Problem(name, "is uninstalled already (purge removes its data)"))
        dependents = [p.name for p in self.installed() if name in p.requires and p.name != name]
        if dependents:
            report.problems.append(Problem(name, f"required by {', '.join(dependents)}; "
                                           f"remove {'it' if len(dependents) == 1 else 'them'} first"))
        objects = self.objects(name)
        folder = self.site.pack_folder(name)
        if pack.status == "enabled":
            modules = [n for k, n, _ in objects if k == "module"]
            if (folder / "plugin.py").is_file():
                report.changes.append("unhook the pack's plugin code")
            if modules:
                report.changes.append(f"hide modules: {', '.join(modules)} (their data is kept"
                                      + (")" if mode != "purge" else " until the purge below)"))
            for kind, obj, _ in objects:
                if kind not in DATA_OBJECTS and kind != "module":
                    report.changes.append(f"remove {kind} {obj}")
            if pack.kind == "personality":
                report.changes += personality.describe_undo(self.site, folder)
        if mode in ("uninstall", "purge") and folder.exists():
            count = sum(1 for p in folder.rglob("*") if p.is_file())
            report.changes.append(f"delete the pack's files: packs/{name} ({count} files)")
        if mode == "purge":
            tables, columns = self._data_objects(objects)
            if tables or columns:
                report.changes.append(f"export the pack's data to packs/.exports/{name}-*.zip")
            counts = self._row_counts(tables)
            report.changes += [f"drop table {t} ({counts[t]} rows)" for t in tables]
            report.changes += [f"drop column {t}.{c}" for t, c in columns]
        if mode == "uninstall":
            tables, columns = self._data_objects(objects)
            report.changes += [f"keep table {t} and its data (restored on reinstall)" for t in tables]
            report.changes += [f"keep column {t}.{c} and its data" for t, c in columns]
        return report

    def _data_objects(self, objects) -> tuple[list[str], list[tuple[str, str]]]:
        tables = [n for k, n, _ in objects if k == "table"]
        columns = [tuple(n.split(".", 1)) for k, n, _ in objects if k == "column"]
        return tables, columns

    def _row_counts(self, tables: list[str]) -> dict[str, int]:
        existing = set(sa.inspect(self.site.engine).get_table_names())
        with self.site.engine.connect() as conn:
            return {t: conn.execute(sa.select(sa.func.count()).select_from(sa.table(t))).scalar()
                    if t in existing else 0 for t in tables}

    def remove(self, name: str, mode: str, user=None) -> Report:
        """Disable, uninstall or purge. Raises ``PackError`` (with ``.report``) if refused."""
        report = self.plan_removal(name, mode)
        if report.problems:
            self._record_alone(mode, name, None, "refused", "; ".join(map(str, report.problems)),
                               user)
            error = PackError(report.problems, mode)
            error.report = report
            raise error
        if user is not None and not getattr(user, "is_admin", False):
            raise refuse(name, "only administrators remove packs", "permission")
        pack = self.get(name)
        site = self.site
        folder = site.pack_folder(name)
        objects = self.objects(name)
        tables, columns = self._data_objects(objects)
        if mode == "purge" and (tables or columns):
            report.export = self._export_data(name, pack.version, tables, columns)
        trash = None
        before = site.state()
        try:
            undo = personality.undo_items(site, folder) if pack.kind == "personality" and \
                pack.status == "enabled" else None
            if mode != "disable" and folder.exists():
                trash = self._scratch("trash") / uuid.uuid4().hex
                folder.rename(trash)
            remaining = [p for p in site.enabled_packs if p.name != name]
            site.reload(packs=remaining, customizations=undo.result() if undo else None)
            with site.engine.begin() as conn:
                if pack.status == "enabled":
                    site.hook.crbm_pack_removing(site=site, pack=_manifest_of(pack), mode=mode,
                                                 connection=conn)
                if undo:
                    undo.write(conn, getattr(user, "id", None))
                packs, owned = self._table("crbm_packs"), self._table("crbm_pack_objects")
                if mode == "disable":
                    conn.execute(packs.update().where(packs.c.name == name).values(status="disabled"))
                elif mode == "uninstall":
                    conn.execute(packs.update().where(packs.c.name == name)
                                 .values(status="uninstalled"))
                    conn.execute(owned.delete().where(owned.c.pack == name,
                                                      owned.c.kind.not_in(DATA_OBJECTS)))
                else:
                    conn.execute(packs.delete().where(packs.c.name == name))
                    conn.execute(owned.delete().where(owned.c.pack == name))
                    self._forget_modules(conn, [n for k, n, _ in objects if k == "module"])
                self._record(conn, mode, name, pack.version, "ok",
                             f"data exported to {report.export.name}" if report.export else "",
                             user)
        except Exception as exc:  # noqa: BLE001 - whatever failed, the site goes back as it was
            if trash is not None:
                trash.rename(folder)
            site.restore(before)
            self._record_alone(mode, name, pack.version, "failed", _one_line(exc), user)
            error = PackError([Problem(name, _one_line(exc))], mode)
            error.report = report
            raise error from None
        if mode == "purge":
            report.changes = database.drop(site.engine, tables, columns) + \
                [c for c in report.changes if not c.startswith("drop ")]
        site.reload()
        i18n.reload_translations()
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
        return report

    def _forget_modules(self, conn, modules: list[str]) -> None:
        """A purge leaves no orphans: the kernel's rows about the modules' records (change
        log, record teams and denies, recent items, role rules, counters) go too."""
        if not modules:
            return
        for table in self.site.tables.sorted_tables:
            if table.name.startswith("crbm_") and "module" in table.c:
                conn.execute(table.delete().where(table.c.module.in_(modules)))
        counters = self._table("crbm_sequences")
        conn.execute(counters.delete().where(counters.c.name.in_(modules)))

    def enable(self, name: str, user=None) -> Report:
        """Turn a disabled pack back on (its files, schema and data were kept)."""
        pack = self.get(name)
        report = Report("enable")
        if pack is None or pack.status != "disabled":
            self._record_alone("enable", name, None, "refused", "is not a disabled pack", user)
            raise refuse(name, "is not a disabled pack", "enable")
        site = self.site
        before = site.state()
        folder = site.pack_folder(name)
        code = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.py"))
        if code and not site.settings.get(CODE_SETTING, False):  # enabling imports it
            self._record_alone("enable", name, pack.version, "refused", _code_refused(code), user)
            raise refuse(name, _code_refused(code), "permission")
        try:
            packs = sorted(site.enabled_packs + [EnabledPack(name, pack.kind, pack.manifest, folder)],
                           key=lambda p: p.name)
            plan = personality.plan(site, folder) if pack.kind == "personality" else None
            site.reload(packs=packs, customizations=plan.result() if plan else None)
            schema = database.sync(site.engine, site.registry, metadata=site.tables,
                                   only=database.changed_tables(before[1], site.tables))
            with site.engine.begin() as conn:
                table = self._table("crbm_packs")
                conn.execute(table.update().where(table.c.name == name).values(status="enabled"))
                if plan:
                    plan.write(conn, getattr(user, "id", None))
                    self._save_undo(folder, plan)
                site.hook.crbm_pack_installed(site=site, pack=_manifest_of(pack), connection=conn)
                self._record(conn, "enable", name, pack.version, "ok", "", user)
        except Exception as exc:  # noqa: BLE001 - whatever failed, the site goes back as it was
            site.restore(before)
            self._record_alone("enable", name, pack.version, "failed", _one_line(exc), user)
            raise PackError([Problem(name, _one_line(exc))], "enable") from None
        report.changes = schema.pending
        site.reload()
        return report

    def _export_data(self, name: str, version: str, tables: list[str],
                     columns: list[tuple[str, str]]) -> Path:
        """A zip of CSV files: each owned table whole, each owned column with the row ids."""
        path = self._scratch("exports") / f"{name}-{version}-{_now():%Y%m%d%H%M%S}.zip"
        existing = set(sa.inspect(self.site.engine).get_table_names())
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out, \
                self.site.engine.connect() as conn:
            for table_name in tables:
                if table_name in existing:
                    table = sa.Table(table_name, sa.MetaData(), autoload_with=conn)
                    out.writestr(f"{table_name}.csv", _csv(conn.execute(sa.select(table))))
            for table_name, column in columns:
                if table_name in existing:
                    table = sa.Table(table_name, sa.MetaData(), autoload_with=conn)
                    if column in table.c:
                        out.writestr(f"{table_name}.{column}.csv", _csv(conn.execute(
                            sa.select(table.c.id, table.c[column]))))
        return path

    def _save_undo(self, folder: Path, plan) -> None:
        (folder / ".undo.json").write_text(json.dumps(plan.undo_record(), default=str))


@dataclass(frozen=True)
class _JournalUser:
    id: str | None
    username: str | None


class Attempt:
    """One check or install while it runs: its staging folder (``.staging/<id>/``), its
    journal (``<id>.json``) and its lock (``<id>.lock``), held until ``close``.

    The lock file is created and locked under a hidden name and only then renamed into
    place, and the journal and folder come after it: so whoever finds a journal or folder
    finds its lock too, and a lock anyone else can take belongs to a dead process."""

    def __init__(self, staging: Path, attempt_id: str, fd: int | None, state: dict):
        self.staging, self.id, self._fd, self.state = staging, attempt_id, fd, state
        self.folder = staging / attempt_id

    @classmethod
    def start(cls, staging: Path, kind: str, source: str, user) -> Attempt:
        attempt_id = uuid.uuid4().hex
        fd = None
        if fcntl is not None:
            fd, hidden = tempfile.mkstemp(dir=staging, prefix=".", suffix=".lock")
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.rename(hidden, staging / f"{attempt_id}.lock")
        attempt = cls(staging, attempt_id, fd, {})
        attempt.write(kind=kind, source=source[:100], user_id=getattr(user, "id", None),
                      username=getattr(user, "username", None), started=_now().isoformat())
        return attempt

    @classmethod
    def claim(cls, staging: Path, attempt_id: str) -> Attempt | None:
        """The attempt, if its process is gone (its lock is free); None while it runs."""
        lock = staging / f"{attempt_id}.lock"
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:  # from before journals, or its owner just finished
            fd = None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
        try:
            state = json.loads((staging / f"{attempt_id}.json").read_text())
        except (OSError, ValueError):
            state = {}  # no journal (yet, or any more): only debris to remove
        return cls(staging, attempt_id, fd, state if isinstance(state, dict) else {})

    def write(self, **changes) -> None:
        """Update the journal (whole, atomically: a kill leaves the old or the new one)."""
        self.state.update(changes)
        scratch = self.staging / f"{self.id}.tmp"
        scratch.write_text(json.dumps(self.state))
        os.replace(scratch, self.staging / f"{self.id}.json")

    def close(self) -> None:
        """Remove the staging folder, the journal and the lock, in that order."""
        shutil.rmtree(self.folder, ignore_errors=True)
        for suffix in (".tmp", ".json", ".lock"):
            (self.staging / f"{self.id}{suffix}").unlink(missing_ok=True)
        self.release()

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _code_refused(files: list[str]) -> str:
    return (f"contains Python code ({', '.join(files)}); this site does not accept code "
            f"packs. An administrator can allow them with the site setting {CODE_SETTING} "
            f"(`crbm settings set {CODE_SETTING} true`)")


def _manifest_of(pack: InstalledPack) -> Manifest:
    return Manifest(pack.name, pack.kind, Version(pack.version), pack.title, pack.manifest)


def _inside_pack(source: str) -> str:
    """".../packs/.staging/<id>/loyalty/modules/x.yaml" -> "loyalty/modules/x.yaml"."""
    return re.sub(r"^.*?/packs/\.staging/[0-9a-f]+/", "", source)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


def _csv(result) -> str:
    """Rows as CSV; text that a spreadsheet would run as a formula gets a leading ' (numbers
    are written as they are: core/web/csv_export.py)."""
    buffer = io.StringIO()
    writer = csv_export.writer(buffer)
    writer.writerow(result.keys())
    writer.writerows(result)
    return buffer.getvalue()


def missing_chain(name: str, manifests: dict[str, Manifest], installed: set[str],
                  chain: tuple[str, ...] = ()) -> list[str] | None:
    """The first chain of requirements from ``name`` that ends at a pack that is neither
    installed nor in ``manifests``, e.g. ["crm_extras", "loyalty", "points"]."""
    chain = (*chain, name)
    if name not in manifests:
        return None if name in installed else list(chain)
    for required in sorted(manifests[name].required_packs()):
        if required not in chain:
            found = missing_chain(required, manifests, installed, chain)
            if found:
                return found
    return None


def install_order(manifests: dict[str, Manifest]) -> list[str]:
    """The names in an order where each pack comes after those it requires (among these).
    A cycle is refused with its chain: "a -> b -> a"."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, chain: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = chain[chain.index(name):] + [name]
            raise refuse(name, f"dependency cycle: {' -> '.join(cycle)}", "compatibility")
        state[name] = "visiting"
        for required in sorted(manifests[name].required_packs()):
            if required in manifests:
                visit(required, chain + [name])
        state[name] = "done"
        order.append(name)

    for name in sorted(manifests):
        visit(name, [])
    return order
