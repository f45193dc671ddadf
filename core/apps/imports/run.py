"""An import: a file, its mapping and options, run as a background job a batch at a time.

``start`` checks the user's Import right and the file, keeps the file beside the site
(``imports/<session id>/``, where every web and job worker of a site reads its files) and
queues the job ``imports.run``; ``run_session`` (the job, or ``crbm import`` in the
foreground) does the work. One import is one **import session** (``crbm_import_sessions``)
whose summary counts what was created, updated and skipped, with each skipped row's
reason and original cells (``crbm_import_skipped``).

Each batch of ``BATCH`` rows is one transaction that writes the records, what the session
did to them (``crbm_import_records``: created, or updated with the values it replaced, so
"Reject and delete" can undo it), the skipped rows and the session's progress. A worker
that dies, or a retried job, starts again after the last committed batch: no row is
imported twice, and the session is never left halfway in an unknown state.

Rows go through the record service's batch path (``create_many``: validation, access,
hooks and change log once per batch). A batch the service refuses is halved until each
bad row is alone and skipped with its reason, so one bad row costs its own row, not its
4,999 neighbours.

Related fields take ids or names: one query per batch and target module finds them (ids
first, then names, among the records the user may see); a name nobody has creates an
empty record of that module, as 1CRM's import does for a contact's unknown account — made
in the same transaction and recorded in the session, so rejecting it removes those too.
User fields take an id, a user name or a full name.
"""
from __future__ import annotations

import datetime as dt
import gc
import json
import shutil
import uuid
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from core import jobs
from core.apps.imports import files
from core.apps.imports import mapping as mappings
from core.apps.imports.parse import DEFERRED_TYPES, Reader
from core.kernel.errors import N_, CrbmError, Message, NotFoundError, ValidationError, VetoError
from core.kernel.fields import FieldError
from core.kernel.records import Query, User, now

BATCH = 5_000  # rows a transaction: on SQLite each commit writes every page its index
# inserts touched (random keys: one page each), so 500-row batches took twice as long
JOB = "imports.run"
DUPLICATE_CHOICES = ("import", "skip", "update")


class _RolledBack(Exception):
    """Ends a dry run's transaction: everything it wrote is rolled back."""


class ImportRefused(CrbmError):
    """The import cannot start: the message says why (nothing was written)."""


@dataclass
class Options:
    source: str = mappings.CUSTOM
    locale: str = "en_US"  # how the file writes dates and numbers
    timezone: str = "UTC"  # the file's times, when they carry no offset
    duplicates: str = "import"  # likely duplicates (the module's rules): import, skip, update
    match_on: str | None = None  # update mode: records with the same value are updated
    create_missing: bool = True  # an unknown related name creates an empty record
    add_to: str | None = None  # "<many-to-many relationship>:<record id>": a target list

    @classmethod
    def of(cls, data: dict | None) -> Options:
        data = data or {}
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


@dataclass
class Summary:
    """What an import did (a dry run's, too)."""
    total: int = 0
    processed: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    skipped_rows: list = field(default_factory=list)  # (line, reason) of a dry run


# -- starting ------------------------------------------------------------------------------

def _sessions(site) -> sa.Table:
    return site.tables.tables["crbm_import_sessions"]


def upload_dir(site, session_id: str) -> Path:
    return site.folder / "imports" / session_id


def check_start(site, user: User, module_name: str) -> object:
    module = site.registry.module(module_name)
    if not module.features.get("importable"):
        raise ImportRefused(Message(N_("%(module)s cannot be imported."), module=module.label))
    if not site.access.can(user, module, "import"):
        raise ImportRefused(Message(N_("You may not import %(module)s."), module=module.label))
    return module


def start(site, user: User, module_name: str, path: Path, file_name: str,
          columns: list, options: Options, *, queue: bool = True) -> str:
    """A new import session for the file at ``path`` (moved into the site), queued."""
    session_id = draft(site, user, module_name, path, file_name)
    try:
        begin(site, user, session_id, columns, options, queue=queue)
    except CrbmError:  # refused: no trace of it
        with site.engine.begin() as conn:
            conn.execute(_sessions(site).delete().where(_sessions(site).c.id == session_id))
        shutil.rmtree(upload_dir(site, session_id), ignore_errors=True)
        raise
    return session_id


def draft(site, user: User, module_name: str, path: Path, file_name: str) -> str:
    """The wizard's first step: the file checked and kept, a session waiting for its
    mapping (status "draft"). ``FileProblem`` or ``ImportRefused`` leave nothing."""
    module = check_start(site, user, module_name)
    table = files.open_table(path, max_bytes=max_bytes(site))
    if not table.samples(1):
        raise files.FileProblem(Message(N_("The file has a header but no rows.")))
    session_id = str(uuid.uuid4())
    folder = upload_dir(site, session_id)
    folder.mkdir(parents=True)
    shutil.move(str(path), folder / ("upload.xlsx" if table.kind == "xlsx" else "upload.csv"))
    with site.engine.begin() as conn:
        conn.execute(_sessions(site).insert().values(
            id=session_id, module=module.name, user_id=user.id, username=user.username,
            file_name=file_name[:255], header=table.header, columns=[None] * len(table.header),
            options=asdict(Options()), status="draft", total=None, processed=0, created=0,
            updated=0, skipped=0, created_at=now()))
    return session_id


def kept_file(site, session_id: str) -> Path | None:
    return next(upload_dir(site, session_id).glob("upload.*"), None)


def begin(site, user: User, session_id: str, columns: list, options: Options, *,
          queue: bool = True) -> None:
    """A draft's mapping and options set, and its job queued (once: a second click on
    "Import" finds the session no longer a draft)."""
    t = _sessions(site)
    with site.engine.begin() as conn:
        session = conn.execute(sa.select(t).where(t.c.id == session_id)).first()
        if session is None or session.user_id != user.id:
            raise NotFoundError(f"no import {session_id}")
        if session.status != "draft":
            return
        module = check_start(site, user, session.module)
        columns = mappings.check(module, session.header, columns)
        if not any(columns):
            raise ImportRefused(Message(N_("No column is mapped to a field.")))
        if options.match_on and options.match_on not in module.fields:
            raise ImportRefused(Message(N_("%(field)s is not a field of %(module)s."),
                                        field=options.match_on, module=module.label))
        if options.add_to:
            list_target(site, user, module, options.add_to)
        conn.execute(t.update().where(t.c.id == session_id).values(
            columns=columns, options=asdict(options), status="queued"))
        if queue:
            jobs.after_commit(site, conn, JOB, {"session_id": session_id},
                              key=f"import:{session_id}")


def lists_of(module) -> dict[str, str]:
    """The module's many-to-many relationships (a contact's target lists): name -> the
    other module's name."""
    return {name: rel["module"] for name, rel in module.relationships.items()
            if rel.get("kind") == "many_to_many"}


def list_target(site, user: User, module, add_to: str) -> tuple[str, str]:
    """(relationship, record id) of the "add to" option, checked: a many-to-many
    relationship of the module and a record of its other side the user may view."""
    relationship, _, record_id = add_to.partition(":")
    other = lists_of(module).get(relationship)
    try:
        if other is None:
            raise NotFoundError(relationship)
        site.records.get(other, record_id, user)
    except NotFoundError:
        raise ImportRefused(Message(N_("There is no such list to add the records to."))) \
            from None
    return relationship, record_id


def max_bytes(site) -> int:
    return int(site.settings.get("imports_max_mb") or files.MAX_BYTES // 2**20) * 2**20


# -- running -------------------------------------------------------------------------------

def run_job(site, payload: dict) -> None:
    run_session(site, payload["session_id"])


def run_session(site, session_id: str, progress=None) -> Summary:
    """Import what is left of a session's file; ``progress(done, total)`` after each batch."""
    t = _sessions(site)
    with site.engine.connect() as conn:
        session = conn.execute(sa.select(t).where(t.c.id == session_id)).first()
    if session is None or session.status not in ("queued", "running"):
        return _summary(session)  # done, accepted, rejected (a redelivery): nothing to do
    user = User(session.user_id, session.username, _is_admin(site, session.user_id))
    kept = kept_file(site, session_id)
    try:
        module = check_start(site, user, session.module)
        if kept is None:
            raise ImportRefused(Message(N_("The uploaded file is gone.")))
        table = files.open_table(kept, max_bytes=max_bytes(site))
    except (CrbmError, NotFoundError) as exc:
        _finish(site, session_id, "failed", str(exc))
        return _summary(session)
    total = session.total
    if total is None:
        total = table.count()
        with site.engine.begin() as conn:
            conn.execute(t.update().where(t.c.id == session_id).values(total=total,
                                                                        status="running"))
    importer = Importer(site, user, module, table.header, session.columns,
                        Options.of(session.options), session_id)
    done = session.processed
    for batch in _batches(table.rows(), skip=done):
        with site.engine.begin() as conn, _without_cycle_collection():
            counts = importer.batch(conn, batch)
            done += len(batch)
            conn.execute(t.update().where(t.c.id == session_id).values(
                processed=done, created=t.c.created + counts.created,
                updated=t.c.updated + counts.updated, skipped=t.c.skipped + counts.skipped))
        if progress is not None:
            progress(done, total)
    with site.engine.begin() as conn:
        missing = importer.link_pending(conn)
    notes = []
    if table.mixed_lines:
        notes.append(str(Message(N_("%(count)s lines were not UTF-8 and were read as "
                                    "Windows-1252."), count=table.mixed_lines)))
    if missing:
        notes.append(str(Message(N_("%(count)s links to records of the same module were "
                                    "not found and were left empty."), count=missing)))
    message = " ".join(notes) or None
    _finish(site, session_id, "done", message)
    shutil.rmtree(upload_dir(site, session_id), ignore_errors=True)
    with site.engine.connect() as conn:
        return _summary(conn.execute(sa.select(t).where(t.c.id == session_id)).first())


def dry_run(site, user: User, module_name: str, path: Path, columns: list,
            options: Options, progress=None) -> Summary:
    """What the import would do, written nowhere: the same batches in one transaction
    that is rolled back."""
    module = check_start(site, user, module_name)
    table = files.open_table(path, max_bytes=max_bytes(site))
    columns = mappings.check(module, table.header, columns)
    importer = Importer(site, user, module, table.header, columns, options, None)
    summary = Summary()
    try:
        with site.engine.begin() as conn:  # (engine.connect() reads in autocommit)
            for batch in _batches(table.rows()):
                with _without_cycle_collection():
                    counts = importer.batch(conn, batch)
                summary.processed += len(batch)
                summary.created += counts.created
                summary.updated += counts.updated
                summary.skipped += counts.skipped
                summary.skipped_rows += counts.skipped_rows
                if progress is not None:
                    progress(summary.processed, None)
            raise _RolledBack
    except _RolledBack:
        pass
    summary.total = summary.processed
    return summary


def _is_admin(site, user_id: str) -> bool:
    users = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(users.c.is_admin, users.c.active)
                           .where(users.c.id == user_id)).first()
    if row is None or not row.active:
        raise ImportRefused(Message(N_("The user who started the import is no longer active.")))
    return bool(row.is_admin)


def _batches(rows: Iterable, skip: int = 0, size: int = BATCH):
    batch = []
    for index, row in enumerate(rows):
        if index < skip:
            continue
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@contextmanager
def _without_cycle_collection():
    """Python's cycle collector paused while a batch is made and written. A batch holds
    tens of thousands of new dicts and lists at once, and each time enough of them
    survive, a full collection walks every object the process has (the site's registry,
    SQLAlchemy's metadata): a fifth of an import's time went there. The batch's objects
    hold no cycles and are freed by their reference counts; the collector runs again
    after it, as usual. (Another thread's import running alongside may turn it back on
    early: that costs speed, nothing else.)"""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _finish(site, session_id: str, status: str, message: str | None) -> None:
    t = _sessions(site)
    with site.engine.begin() as conn:
        conn.execute(t.update().where(t.c.id == session_id).values(
            status=status, message=message, finished_at=now()))


def _summary(session) -> Summary:
    if session is None:
        return Summary()
    return Summary(session.total or 0, session.processed, session.created, session.updated,
                   session.skipped)


# -- one batch -----------------------------------------------------------------------------

def _json(value):
    """A stored value as JSON (what an update replaced), read back by the field's type."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def reason(template: str, **params) -> dict:
    return {"template": template, "params": {k: str(v) for k, v in params.items()}}


class Importer:
    """Turns batches of rows into records for one session (or a dry run: ``session_id``
    None writes no session rows)."""

    def __init__(self, site, user: User, module, header: list[str], columns: list,
                 options: Options, session_id: str | None):
        self.site, self.user, self.module = site, user, module
        self.header, self.columns, self.options = header, columns, options
        self.session_id = session_id
        source = mappings.sources().get(options.source)
        self.reader = Reader(site, module, options.locale, options.timezone,
                             source.values(module.name) if source else None)
        # (cell index, field, resolved by a query) of the mapped columns, worked out once
        self.mapped = [(i, module.fields[c], module.fields[c].type.name in DEFERRED_TYPES)
                       for i, c in enumerate(columns) if c]
        # our own full-site export writes a related record's name beside its id
        # ("account_id__name"): the name finds it on a site where its id differs
        self.companions = {h.removesuffix("__name"): i for i, h in enumerate(header)
                           if h.endswith("__name")}
        self.match_field = module.fields.get(options.match_on) if options.match_on else None

    # a batch: parse, resolve, decide create or update, write, record
    def batch(self, conn, rows: list[tuple[int, list[str]]]) -> Summary:
        counts = Summary()
        self._pending: dict[int, dict[str, str]] = {}  # line -> field -> text, to link later
        parsed, deferred = [], []
        for line_no, cells in rows:
            values, later, problem = self._parse(cells)
            if problem:
                self._skip(conn, counts, line_no, cells, problem)
                continue
            parsed.append((line_no, cells, values))
            deferred.append(later)
        if not parsed:
            return counts
        self._resolve(conn, counts, parsed, deferred)
        creates, updates = self._plan(conn, counts, parsed)
        self._create(conn, counts, creates)
        self._update(conn, counts, updates)
        return counts

    def _parse(self, cells: list[str]):
        if len(cells) > len(self.header) and any(c.strip() for c in cells[len(self.header):]):
            return None, None, reason(N_("the row has %(count)s cells; the header has "
                                         "%(columns)s"), count=len(cells),
                                      columns=len(self.header))
        values, later = {}, {}
        for index, f, deferred in self.mapped:
            if index >= len(cells) or not (text := cells[index].strip()):
                continue
            if deferred:
                later[f.name] = text
                other = self.companions.get(f.name)
                if other is not None and other < len(cells) and cells[other].strip():
                    later[f"{f.name}__name"] = cells[other].strip()
                continue
            try:
                values[f.name] = self.reader.value(f, text)
            except FieldError as exc:
                return None, None, reason(N_("%(field)s: %(problem)s"), field=f.label,
                                          problem=exc.args[0])
        return values, later, None

    def _skip(self, conn, counts: Summary, line_no: int, cells: list[str], why: dict) -> None:
        counts.skipped += 1
        if self.session_id is None:
            counts.skipped_rows.append((line_no, why))
            return
        conn.execute(self.site.tables.tables["crbm_import_skipped"].insert().values(
            session_id=self.session_id, line_no=line_no, reason=why, cells=cells))

    # -- related values -----------------------------------------------------------------

    def _resolve(self, conn, counts, parsed: list, deferred: list[dict]) -> None:
        """Ids for the related and user cells of the batch: one query per target."""
        wanted: dict[str, set[str]] = {}
        for later in deferred:
            for name, text in later.items():
                wanted.setdefault(name.removesuffix("__name"), set()).add(text)
        found = {name: self._lookup(conn, self.module.fields[name], texts)
                 for name, texts in wanted.items()}
        keep = []
        for (line_no, cells, values), later in zip(parsed, deferred, strict=True):
            problem = None
            for name, text in later.items():
                if name.endswith("__name"):
                    continue
                target = found[name].get(text) or found[name].get(text.casefold())
                alias = later.get(f"{name}__name")
                if target is None and alias:
                    target = found[name].get(alias) or found[name].get(alias.casefold())
                f = self.module.fields[name]
                if target is None and f.type.name == "user":
                    continue  # a user of the old system: the record is the importer's
                if target is None and f.spec.get("module") == self.module.name and \
                        self.session_id is not None:
                    # a parent account further down the file: linked once all are in
                    self._pending.setdefault(line_no, {})[name] = text
                    continue
                if target is None:
                    problem = reason(N_("%(field)s: nothing is called %(value)s"),
                                     field=f.label, value=repr(text))
                    break
                values[name] = target
            if problem:
                self._skip(conn, counts, line_no, cells, problem)
            else:
                keep.append((line_no, cells, values))
        parsed[:] = keep

    def _lookup(self, conn, f, texts: set[str]) -> dict[str, str]:
        """text -> id for a related or user field's cells; unknown names of a related
        module with a name field create empty records (``create_missing``)."""
        if f.type.name == "user":
            users = self.site.tables.tables["crbm_users"]
            full = users.c.display_name
            out = {}
            for row in conn.execute(sa.select(users.c.id, users.c.username, full.label("full"))
                                    .where(sa.or_(users.c.id.in_(texts),
                                                  users.c.username.in_(texts),
                                                  full.in_(texts)))):
                for key in (row.id, row.username, row.full):
                    if key:
                        out.setdefault(key, row.id)
            return out
        if "modules" in f.spec:  # a parent link: ids only (its type is another column)
            return {t: t for t in texts}
        target = self.site.registry.module(f.spec["module"])
        out: dict[str, str] = {}
        service = self.site.records
        ids = [t for t in texts if len(t) == 36]  # (a filter refuses what is no id)
        for r in service.list(target.name, self.user, Query(
                filters=[("id", "in", ids)], fields=["id"], limit=None),
                connection=conn) if ids else ():
            out[r["id"]] = r["id"]
        name_field = target.name_field
        size = target.fields[name_field].spec.get("max_size", 255) if name_field else 0
        rest = [t for t in texts if t not in out and len(t) <= size]
        if not rest or name_field is None:
            return out
        for r in service.list(target.name, self.user, Query(
                filters=[(name_field, "in", rest)], fields=["id", name_field], limit=None,
                sort=f"{name_field},id"), connection=conn):
            out.setdefault(r[name_field], r["id"])
            out.setdefault(str(r[name_field]).casefold(), r["id"])
        missing = [t for t in rest if t not in out and t.casefold() not in out]
        if missing:  # "acme" for "Acme": only the names not found as written
            table = service.table(target)
            column = table.c[name_field]
            visible = sa.and_(table.c.deleted.is_(False), self.site.access.predicate(
                self.user, target, "view", table))
            for row in conn.execute(sa.select(table.c.id, column).where(
                    sa.func.lower(column).in_([m.lower() for m in missing]), visible)
                    .order_by(column, table.c.id)):
                out.setdefault(str(row[1]).casefold(), row[0])
            missing = [t for t in missing if t.casefold() not in out]
        if missing and self.options.create_missing and \
                not target.fields[name_field].type.composed(target.fields[name_field].spec) and \
                self.site.access.can(self.user, target, "edit"):
            with conn.begin_nested():
                try:
                    ids = service.create_many(target.name, [{name_field: m} for m in missing],
                                              self.user, connection=conn)
                except (ValidationError, VetoError):
                    ids = None
            if ids:
                out.update(zip(missing, ids, strict=True))
                self._record(conn, target.name, [(i, "created", None) for i in ids])
        return out

    # -- create or update ---------------------------------------------------------------

    def _plan(self, conn, counts, parsed: list) -> tuple[list, list]:
        """Split the rows into records to create and (record, values) to update: by id
        (a file from our own export), by the update mode's field, or by the module's
        duplicate rules."""
        creates, updates = [], []
        ids = [v["id"] for _, _, v in parsed if v.get("id")]
        existing = set()
        if ids:
            table = self.site.records.table(self.module)
            existing = set(conn.execute(sa.select(table.c.id).where(
                table.c.id.in_(ids), table.c.deleted.is_(False))).scalars())
        matches: dict = {}
        key = self.match_field
        if key is not None:
            given = list({v[key.name] for _, _, v in parsed if v.get(key.name) is not None})
            for r in self.site.records.list(self.module.name, self.user, Query(
                    filters=[(key.name, "in", given)], fields=["id", key.name], limit=None),
                    action="edit", connection=conn) if given else ():
                matches.setdefault(r[key.name], []).append(r["id"])
        for line_no, cells, values in parsed:
            if values.get("id") in existing:
                updates.append((line_no, cells, values["id"], values))
                continue
            if key is not None and values.get(key.name) is not None:
                found = matches.get(values[key.name], [])
                if len(found) > 1:
                    self._skip(conn, counts, line_no, cells, reason(
                        N_("%(count)s records have this %(field)s; none was updated"),
                        count=len(found), field=key.label))
                    continue
                if found:
                    updates.append((line_no, cells, found[0], values))
                    continue
            if self.options.duplicates != "import":
                twin = self._duplicate(conn, values)
                if twin is not None:
                    if self.options.duplicates == "skip":
                        self._skip(conn, counts, line_no, cells, reason(
                            N_("likely a duplicate of %(name)s"), name=twin.name))
                    else:
                        updates.append((line_no, cells, twin.id, values))
                    continue
            creates.append((line_no, cells, values))
        return creates, updates

    def _duplicate(self, conn, values):
        from core.apps.duplicates.find import find_duplicates
        found = find_duplicates(self.site, self.module, values, self.user)
        return found[0] if found else None

    def _create(self, conn, counts: Summary, rows: list) -> None:
        """``create_many`` on the rows; a batch it refuses is split in halves and each
        tried again, down to single rows, which get their own verdict. (The service's
        "row N:" keys are not trusted: a plugin's hook saving other records in the same
        transaction numbers its own rows.) k bad rows cost about k·log2(batch) tries."""
        if not rows:
            return
        try:
            with conn.begin_nested():
                ids = self.site.records.create_many(
                    self.module.name, [v for _, _, v in rows], self.user, connection=conn)
        except (ValidationError, VetoError) as exc:
            if len(rows) == 1:
                line_no, cells, _ = rows[0]
                self._skip(conn, counts, line_no, cells, _problem(exc))
                return
            middle = len(rows) // 2
            self._create(conn, counts, rows[:middle])
            self._create(conn, counts, rows[middle:])
            return
        counts.created += len(ids)
        self._record(conn, self.module.name, [(i, "created", None) for i in ids])
        self._keep_links(conn, [(line_no, i) for (line_no, _, _), i in zip(rows, ids,
                                                                            strict=True)])
        self._add_to_list(conn, ids)

    def _update(self, conn, counts: Summary, rows: list) -> None:
        service = self.site.records
        for line_no, cells, record_id, values in rows:
            values = {k: v for k, v in values.items() if k != "id"}
            try:
                with conn.begin_nested():
                    current = service.get(self.module.name, record_id, self.user,
                                          connection=conn, action="edit")
                    before = {k: _json(current.get(k)) for k in values}
                    service.update(self.module.name, record_id, values, self.user,
                                   connection=conn)
            except (ValidationError, VetoError, NotFoundError) as exc:
                self._skip(conn, counts, line_no, cells, _problem(exc))
                continue
            counts.updated += 1
            self._record(conn, self.module.name, [(record_id, "updated", before)])
            self._keep_links(conn, [(line_no, record_id)])
            self._add_to_list(conn, [record_id])

    def _add_to_list(self, conn, record_ids: list[str]) -> None:
        """The "add to" option: link the batch's records to the chosen record (a target
        list), in the batch's transaction; a link already there is kept as it is."""
        if not self.options.add_to or not record_ids:
            return
        relationship, other_id = self.options.add_to.partition(":")[::2]
        _, link, mine, theirs = self.site.records._link_parts(self.module.name, relationship)
        linked = set(conn.execute(sa.select(link.c[mine]).where(
            link.c[theirs] == other_id, link.c[mine].in_(record_ids))).scalars())
        rows = [{mine: i, theirs: other_id, "created_at": now(), "created_by": self.user.id}
                for i in dict.fromkeys(record_ids) if i not in linked]
        if rows:
            conn.execute(link.insert(), rows)

    def _keep_links(self, conn, written: list[tuple[int, str]]) -> None:
        rows = [{"session_id": self.session_id, "record_id": record_id, "field": name,
                 "value": text[:255], "line_no": line_no}
                for line_no, record_id in written
                for name, text in self._pending.get(line_no, {}).items()]
        if rows:
            conn.execute(self.site.tables.tables["crbm_import_links"].insert(), rows)

    def link_pending(self, conn) -> int:
        """Set the links to records that came later in the file; returns how many could
        not be found (their rows are imported without them)."""
        table = self.site.tables.tables["crbm_import_links"]
        links = conn.execute(sa.select(table).where(
            table.c.session_id == self.session_id)).all()
        missing = 0
        by_field: dict[str, set[str]] = {}
        for link in links:
            by_field.setdefault(link.field, set()).add(link.value)
        found = {name: self._lookup(conn, self.module.fields[name], texts)
                 for name, texts in by_field.items() if name in self.module.fields}
        for link in links:
            target = found.get(link.field, {}).get(link.value) or \
                found.get(link.field, {}).get(link.value.casefold())
            try:
                if target is None:
                    raise NotFoundError(link.value)
                with conn.begin_nested():
                    self.site.records.update(self.module.name, link.record_id,
                                             {link.field: target}, self.user, connection=conn)
            except (ValidationError, VetoError, NotFoundError):
                missing += 1
        conn.execute(table.delete().where(table.c.session_id == self.session_id))
        return missing

    def _record(self, conn, module_name: str, done: list[tuple[str, str, dict | None]]) -> None:
        if self.session_id is None or not done:
            return
        table = self.site.tables.tables["crbm_import_records"]
        previous = any(p is not None for _, _, p in done)  # created ones: NULL, no JSON
        rows = [{"session_id": self.session_id, "module": module_name, "record_id": i,
                 "action": action, **({"previous": p} if previous else {})}
                for i, action, p in done]
        if any(r["action"] == "updated" for r in rows):  # the first update of it counts
            known = set(conn.execute(sa.select(table.c.record_id).where(
                table.c.session_id == self.session_id,
                table.c.record_id.in_([r["record_id"] for r in rows]))).scalars())
            rows = [r for r in rows if r["record_id"] not in known]
        if rows:
            conn.execute(table.insert(), rows)


def _problem(exc: Exception) -> dict:
    if isinstance(exc, ValidationError) and exc.errors:
        key, message = next(iter(exc.errors.items()))
        return reason(N_("%(field)s: %(problem)s"), field=key, problem=message)
    return reason("%(problem)s", problem=str(exc))  # the message itself, already in English


def reason_text(why, gettext=lambda s: s) -> str:
    """A skipped row's reason in a language (``gettext``)."""
    if isinstance(why, str):
        try:
            why = json.loads(why)
        except ValueError:
            return why
    return gettext(why["template"]) % why["params"]
