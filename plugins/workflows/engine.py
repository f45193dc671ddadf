"""The workflow engine (implementation guide §7.5.5): which workflows a save, a delete or
the scheduler sets off, and running their actions.

**Saves and deletes** (``on_write``, from ``crbm_after_save`` / ``crbm_after_delete``, inside
the write's transaction, once per batch): the module's active workflows come from a cache
(per site, emptied when a workflow is saved or deleted in this process, and at most
``CACHE_SECONDS`` old, so another process's change is seen soon) — a module without
workflows costs one dictionary lookup; conditions are compiled once
(``conditions.compile_condition`` on the stored JSON text) and tested with one ``Clock``
per batch. *Applies to* new / existing / both; *execute as* the saving user, the
administrator (CRBM's system user) or the record's owner (its assigned user, else its
creator).

**Actions.** Those that write records (``set_fields``, ``create_record``, ``assign``,
``start_workflow``) run at once in the same transaction through the record service, each
in a savepoint: one that fails is logged on the run history (status failed) and the save
goes on. Whatever talks to the outside (``send_email``, ``webhook``, ``notify``, plugin
actions) and every delayed action becomes a *pending* run (a ``workflow_runs`` row written
in the transaction) handed to the job queue **after commit** (``after_commit``: a rolled-back
save leaves no run and enqueues nothing). A delay enqueues with ``at``; with *Unique* the
key is workflow + record + action index, so a new pending action replaces the old one
(the older run is marked cancelled): the guide's "5 quiet days". When a delayed action
fires, the job re-reads the record and runs the action **without checking the conditions
again** — as 1CRM does; a record deleted meanwhile cancels the run.

**Depth.** An action that saves a record sets off that module's workflows again, at most
``MAX_DEPTH`` levels deep (the depth travels in jobs too); past it the run is logged
"skipped: depth limit" — a workflow that sets a field on its own record never loops.

**Scheduled workflows** (trigger ``scheduled``): the scheduler task ``workflows.process``
(every 15 minutes) selects each workflow's matching records in one statement
(``Compiled.to_sql``, read as the system: the module's access rules do not apply) and acts
once per workflow, record and due day (a unique run key: a retried task does nothing
twice).

**Failures at run time** (a template broken since, a field removed in the Studio, no
recipient, a webhook answering 500) are logged on the workflow's run history with the
message. A job whose failure may pass (the mail server or the webhook down: ``ActionFailed``
with ``permanent=False``) raises after logging, so the queue retries it; one that cannot
succeed later (permanent) is logged failed and the job ends without a retry. Nothing
raises into a worker or a user's save.
"""
from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import threading
import time
import uuid
import weakref
from dataclasses import dataclass

import sqlalchemy as sa

from core.kernel.errors import N_, CrbmError
from core.kernel.records import SYSTEM_USER, User
from plugins.workflows import actions as actions_mod
from plugins.workflows import conditions, history
from plugins.workflows.dates import date_settings
from plugins.workflows.history import said

log = logging.getLogger(__name__)

MAX_DEPTH = 5  # workflows setting off workflows (a save by an action), levels deep
CACHE_SECONDS = 10.0  # another process's workflow change is seen within this
JOB = "workflows.action"
TASK = "workflows.process"
IN_TRANSACTION = frozenset({"set_fields", "create_record", "assign", "start_workflow"})
OWN_MODULES = frozenset({"workflows", "workflow_runs"})

_DEPTH: contextvars.ContextVar[int] = contextvars.ContextVar("workflow_depth", default=0)


@dataclass
class Loaded:
    """A workflow as the engine keeps it: the record's values, its compiled condition
    (None when there is none: always holds) or the reason it cannot compile now."""

    id: str
    name: str
    module: str
    trigger: str
    applies_to: str
    execute_as: str
    actions: list
    compiled: conditions.Compiled | None
    error: str | None


class _Cache:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_module: dict[tuple[str, str], list[Loaded]] | None = None
        self.loaded_at = 0.0


_CACHES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _cache(site) -> _Cache:
    found = _CACHES.get(site)
    if found is None:
        found = _CACHES.setdefault(site, _Cache())
    return found


def invalidate(site) -> None:
    """Forget the loaded workflows (a workflow was saved or deleted)."""
    _cache(site).by_module = None


def _load(site, connection=None) -> dict[tuple[str, str], list[Loaded]]:
    table = site.records.table(site.registry.module("workflows"))
    query = sa.select(table).where(table.c.active.is_(True), table.c.deleted.is_(False)) \
        .order_by(table.c.name, table.c.id)
    if connection is not None:
        rows = connection.execute(query).mappings().all()
    else:
        with site.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
    found: dict[tuple[str, str], list[Loaded]] = {}
    for row in rows:
        loaded = _loaded(site, row)
        found.setdefault((loaded.module, loaded.trigger), []).append(loaded)
    return found


def _loaded(site, row) -> Loaded:
    compiled, error = None, None
    try:
        parsed_actions = json.loads(row["actions"] or "[]")
    except ValueError as exc:
        parsed_actions, error = [], f"actions: {exc}"
    text = (row["conditions"] or "").strip()
    if text and text not in ("{}", "null"):
        try:
            compiled = conditions.compile_condition(site, row["trigger_module"], text)
        except (conditions.ConditionError, ValueError, KeyError, CrbmError) as exc:
            error = f"conditions: {exc}"
    return Loaded(str(row["id"]), row["name"], row["trigger_module"], row["trigger"],
                  row["applies_to"] or "both", row["execute_as"] or "trigger_user",
                  parsed_actions, compiled, error)


def workflows_for(site, module: str, trigger: str, connection=None) -> list[Loaded]:
    cache = _cache(site)
    by_module = cache.by_module
    if by_module is None or time.monotonic() - cache.loaded_at > CACHE_SECONDS:
        with cache.lock:
            by_module = _load(site, connection)
            cache.by_module, cache.loaded_at = by_module, time.monotonic()
    return by_module.get((module, trigger), [])


# -- after commit ----------------------------------------------------------------------------

_PENDING = "workflows_pending"
_COMMITTED = "workflows_committed"
_LISTENING: weakref.WeakSet = weakref.WeakSet()


def after_commit(site, connection, job: tuple) -> None:
    """Hand ``job`` (name, payload, at, key) to the queue once ``connection``'s transaction
    has committed; forgotten if it rolls back. The engine's ``commit`` event moves it to
    the committed list (the commit is then under way); the pool's ``checkin`` (the
    connection given back, after the commit) enqueues it."""
    engine = connection.engine
    if engine not in _LISTENING:
        _listen(site, engine)
    connection.info.setdefault(_PENDING, []).append(job)


def _listen(site, engine) -> None:
    site_ref = weakref.ref(site)

    def committed(conn):
        pending = conn.info.pop(_PENDING, None)
        if pending:
            conn.info.setdefault(_COMMITTED, []).extend(pending)

    def rolled_back(conn):
        conn.info.pop(_PENDING, None)

    def checked_in(dbapi_connection, record):
        jobs_ = record.info.pop(_COMMITTED, None)
        record.info.pop(_PENDING, None)  # never committed: dropped
        found = site_ref()
        if jobs_ and found is not None:
            dispatch(found, jobs_)

    sa.event.listen(engine, "commit", committed)
    sa.event.listen(engine, "rollback", rolled_back)
    sa.event.listen(engine.pool, "checkin", checked_in)
    _LISTENING.add(engine)


def dispatch(site, jobs_: list[tuple]) -> None:
    """Enqueue committed runs; a queue that refuses is logged and its run stays pending
    on the history (visible, not retried by itself)."""
    for name, payload, at, key in jobs_:
        try:
            enqueue(site, name, payload, at=at, key=key)
        except Exception:
            log.exception("workflows: could not enqueue %s %s", name, payload)


def enqueue(site, name, payload, *, at=None, key=None):
    from core import jobs
    return jobs.enqueue(site, name, payload, at=at, key=key)


# -- triggers --------------------------------------------------------------------------------

def on_write(site, module, batch, user, connection, trigger: str) -> None:
    """The workflows a save (``batch`` of RecordChange) or delete (``batch`` of record
    dicts) sets off."""
    found = workflows_for(site, module.name, trigger, connection)  # none on OWN_MODULES
    if not found:
        return
    clock = conditions.Clock(None, None, date_settings(site))
    depth = _DEPTH.get()
    for item in batch:
        if trigger == "deleted":
            record, previous, is_new = item, item, False
        else:
            record, is_new = item.record, item.is_new
            previous = None if is_new else {
                **record, **{name: old for name, (old, _new) in item.changes.items()}}
        for workflow in found:
            if (workflow.applies_to == "new" and not is_new) or \
                    (workflow.applies_to == "existing" and is_new):
                continue
            if workflow.error:
                _log(site, connection, workflow, record["id"], trigger, None, "failed",
                     workflow.error)
                continue
            if workflow.compiled is not None and \
                    not workflow.compiled.test(record, previous, clock):
                continue
            if depth >= MAX_DEPTH:
                _log(site, connection, workflow, record["id"], trigger, None, "skipped",
                     said(N_("skipped: depth limit")))
                continue
            run_workflow(site, workflow, module, record, previous, user, connection, depth,
                         trigger)


def acting_user(site, workflow: Loaded, record, user, connection=None) -> User:
    if workflow.execute_as == "admin" or user is None:
        return SYSTEM_USER
    if workflow.execute_as == "owner":
        owner = record.get("assigned_user_id") or record.get("created_by")
        row = actions_mod._users(site, [owner], connection).get(str(owner)) if owner else None
        if row is not None and row["active"]:
            return User(str(row["id"]), row["username"], bool(row["is_admin"]))
        return SYSTEM_USER
    return user


def run_workflow(site, workflow: Loaded, module, record, previous, user, connection,
                 depth: int, trigger: str, run_key: str | None = None,
                 started: set | None = None) -> None:
    """Run (or hand over) each action of ``workflow`` on ``record`` in ``connection``'s
    transaction."""
    acting = acting_user(site, workflow, record, user, connection)
    types = actions_mod.action_types(site)
    started = (started or set()) | {workflow.id}
    for index, action in enumerate(workflow.actions):
        kind = action.get("type")
        type_ = types.get(kind)
        if type_ is None:
            _log(site, connection, workflow, record["id"], trigger, index, "failed",
                 said(N_("unknown action '%s' (its plugin removed?)"), kind))
            continue
        delay = actions_mod.delay_of(action)
        if delay is None and kind in IN_TRANSACTION:
            ctx = actions_mod.ActionContext(
                site, {"id": workflow.id, "name": workflow.name}, module, record, acting,
                connection, key=f"{run_key or uuid.uuid4().hex}:{index}", depth=depth,
                index=index, previous=previous, extra={"started": started,
                                                       "trigger": trigger})
            _run_now(site, workflow, type_, action, ctx, trigger)
            continue
        at = (dt.datetime.now(dt.UTC) + delay) if delay else None
        key = None
        if delay and action.get("unique"):
            key = f"workflow:{workflow.id}:{record['id']}:{index}"
            _cancel_pending(site, connection, workflow.id, record["id"], index)
        run_id = _log(site, connection, workflow, record["id"], trigger, index, "pending",
                      said(N_("due %s"), at.isoformat(timespec="minutes")) if at else None,
                      run_key=(f"{run_key}:{index}" if run_key else None))
        after_commit(site, connection, (JOB, {
            "run_id": run_id, "workflow_id": workflow.id, "record_id": str(record["id"]),
            "module": module.name, "index": index, "user_id": acting.id,
            "username": acting.username, "is_admin": acting.is_admin, "depth": depth,
            "trigger": trigger}, at, key))


def _run_now(site, workflow, type_, action, ctx, trigger) -> None:
    token = _DEPTH.set(ctx.depth + 1)
    try:
        with ctx.connection.begin_nested():
            result = type_.run(ctx, action)
    except sa.exc.OperationalError:  # a deadlock or a lost connection ends the whole
        raise  # transaction, the user's save with it: say so, never lose it silently
    except (CrbmError, sa.exc.SQLAlchemyError) as exc:
        _log(site, ctx.connection, workflow, ctx.record["id"], trigger, ctx.index, "failed",
             _said(exc))
        return
    finally:
        _DEPTH.reset(token)
    _log(site, ctx.connection, workflow, ctx.record["id"], trigger, ctx.index, "done", result)


def start_workflow(ctx: actions_mod.ActionContext, workflow_id: str) -> str:
    """The ``start_workflow`` action: the other workflow's actions on the same record
    (whatever its trigger and conditions), refusing cycles at run time too."""
    started = ctx.extra.get("started", set())
    if workflow_id in started:
        raise actions_mod.ActionFailed(f"workflow cycle: {workflow_id} already runs")
    row = _workflow_row(ctx.site, workflow_id, ctx.connection)
    if row is None or not row["active"]:
        raise actions_mod.ActionFailed("the workflow to start is missing or inactive")
    other = _loaded(ctx.site, row)
    if other.module != ctx.module.name:
        raise actions_mod.ActionFailed("the workflow to start is on another module")
    if ctx.depth + 1 >= MAX_DEPTH:
        return "skipped: depth limit"
    run_workflow(ctx.site, other, ctx.module, ctx.record, ctx.previous, ctx.user,
                 ctx.connection, ctx.depth + 1, ctx.extra.get("trigger", "saved"),
                 started=started)
    return f"started {other.name}"


def _workflow_row(site, workflow_id, connection):
    table = site.records.table(site.registry.module("workflows"))
    query = sa.select(table).where(table.c.id == str(workflow_id), table.c.deleted.is_(False))
    if connection is not None:
        return connection.execute(query).mappings().first()
    with site.engine.connect() as conn:
        return conn.execute(query).mappings().first()


# -- the run history -------------------------------------------------------------------------

def _runs(site):
    return site.records.table(site.registry.module("workflow_runs"))


def _log(site, connection, workflow: Loaded, record_id, trigger, index, status, message,
         run_key: str | None = None) -> str:
    """A row of the workflow's run history (in ``connection``'s transaction)."""
    now = dt.datetime.now(dt.UTC)
    label = workflow.name if index is None else f"{workflow.name} · {index + 1}"
    values = {"name": f"{label}: {status}"[:250], "workflow_id": workflow.id,
              "module_name": workflow.module, "record_id": str(record_id), "trigger": trigger,
              "action_index": index, "status": status,
              "message": (message or "")[:4000] or None,
              "message_i18n": history.stored(message), "started_at": now,
              "finished_at": None if status == "pending" else now,
              "run_key": run_key or uuid.uuid4().hex}
    created = site.records.create("workflow_runs", values, SYSTEM_USER,
                                  connection=connection)
    return str(created["id"])


REPLACED = said(N_("replaced (unique)"))


def _said(exc: Exception) -> str:
    """An error's message, kept translatable when it was written so (a ``Said``/``Message``)."""
    first = exc.args[0] if exc.args else None
    return first if history.said_of(first) is not None else str(exc)


def _cancel_pending(site, connection, workflow_id, record_id, index) -> None:
    table = _runs(site)
    connection.execute(table.update().where(
        table.c.workflow_id == str(workflow_id), table.c.record_id == str(record_id),
        table.c.action_index == index, table.c.status == "pending",
        table.c.deleted.is_(False)).values(status="cancelled",
                                           finished_at=dt.datetime.now(dt.UTC),
                                           message=REPLACED, message_i18n=history.stored(REPLACED)))


def _finish(site, conn, run_id, status, message) -> None:
    table = _runs(site)
    conn.execute(table.update().where(table.c.id == run_id).values(
        status=status, message=(message or "")[:4000] or None,
        message_i18n=history.stored(message),
        finished_at=dt.datetime.now(dt.UTC), name=sa.func.replace(
            table.c.name, ": pending", f": {status}")))


# -- the job ---------------------------------------------------------------------------------

def run_job(site, payload: dict) -> None:
    """The ``workflows.action`` job: run one pending action. Idempotent: a run no longer
    pending (done, cancelled by Unique, failed) is left alone; what it sends is keyed on
    the run's id."""
    runs = _runs(site)
    with site.engine.connect() as conn:
        run = conn.execute(sa.select(runs).where(runs.c.id == payload["run_id"])) \
            .mappings().first()
    if run is None or run["status"] != "pending":
        return
    row = _workflow_row(site, payload["workflow_id"], None)
    if row is None:
        with site.engine.begin() as conn:
            _finish(site, conn, run["id"], "cancelled", said(N_("the workflow was deleted")))
        return
    workflow = _loaded(site, row)
    index = int(payload["index"])
    module_name = payload["module"]
    try:
        module = site.registry.module(module_name)
        record = _deleted_record(site, module, payload["record_id"]) \
            if payload.get("trigger") == "deleted" else \
            site.records.get(module_name, payload["record_id"], SYSTEM_USER)
    except (CrbmError, KeyError):
        record = None
    if record is None:
        with site.engine.begin() as conn:
            _finish(site, conn, run["id"], "cancelled", said(N_("the record was deleted")))
        return
    if index >= len(workflow.actions):
        with site.engine.begin() as conn:
            _finish(site, conn, run["id"], "failed",
                    said(N_("the action was removed from the workflow")))
        return
    action = workflow.actions[index]
    type_ = actions_mod.action_types(site).get(action.get("type"))
    user = User(payload["user_id"], payload["username"], bool(payload["is_admin"]))
    token = _DEPTH.set(int(payload.get("depth", 0)) + 1)
    try:
        if type_ is None:
            raise actions_mod.ActionFailed(said(N_("unknown action '%s'"), action.get("type")))
        ctx = actions_mod.ActionContext(
            site, {"id": workflow.id, "name": workflow.name}, module, record, user, None,
            key=str(run["id"]), depth=int(payload.get("depth", 0)), index=index,
            extra={"started": {workflow.id}, "trigger": payload.get("trigger")})
        if action.get("type") in IN_TRANSACTION:  # the writes and "done" stand together
            with site.engine.begin() as conn:
                ctx.connection = conn
                _finish(site, conn, run["id"], "done", type_.run(ctx, action))
        else:  # outward: no transaction held open while it talks (and writes its own)
            result = type_.run(ctx, action)
            with site.engine.begin() as conn:
                _finish(site, conn, run["id"], "done", result)
    except actions_mod.ActionFailed as exc:
        with site.engine.begin() as conn:
            if exc.permanent:
                _finish(site, conn, run["id"], "failed", _said(exc))
                return
            retrying = said(N_("retrying: %s"), str(exc)[:3900])
            conn.execute(runs.update().where(runs.c.id == run["id"])
                         .values(message=retrying, message_i18n=history.stored(retrying)))
        raise
    except CrbmError as exc:
        with site.engine.begin() as conn:
            _finish(site, conn, run["id"], "failed", _said(exc))
    finally:
        _DEPTH.reset(token)


def _deleted_record(site, module, record_id) -> dict | None:
    """A (soft) deleted record as it was stored: what a "deleted" workflow's delayed or
    outward action is about."""
    table = site.records.table(module)
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(*(table.c[f.name] for f in module.stored_fields))
                           .where(table.c.id == str(record_id))).mappings().first()
    return dict(row) if row else None


# -- the scheduled scan ----------------------------------------------------------------------

def process(site, due: dt.datetime) -> str:
    """The ``workflows.process`` task: each active scheduled workflow's matching records
    (one statement per workflow), acted on once per due day."""
    invalidate(site)
    found = [w for (module, trigger), ws in _load(site).items() if trigger == "scheduled"
             for w in ws]
    settings = date_settings(site)
    day = due.astimezone(conditions.Clock(due, None, settings).tz).date().isoformat()
    acted = failed = 0
    for workflow in found:
        if workflow.error:
            with site.engine.begin() as conn:
                _log_once(site, conn, workflow, "", "failed", workflow.error,
                          f"scan:{workflow.id}:{day}")
            failed += 1
            continue
        try:
            module = site.registry.module(workflow.module)
        except KeyError:
            continue
        table = site.records.table(module)
        query = sa.select(table).where(table.c.deleted.is_(False))
        if workflow.compiled is not None:
            query = query.where(workflow.compiled.to_sql(table, now=due, settings=settings))
        with site.engine.connect() as conn:
            ids = list(conn.execute(query.with_only_columns(table.c.id)).scalars())
        for record_id in ids:
            run_key = f"{workflow.id}:{record_id}:{day}"
            with site.engine.begin() as conn:
                if not _claim(site, conn, workflow, record_id, run_key):
                    continue
                record = site.records.get(module.name, str(record_id), SYSTEM_USER,
                                          connection=conn)
                run_workflow(site, workflow, module, record, record, None, conn, 0,
                             "scheduled", run_key=run_key)
            acted += 1
    return f"{acted} record(s) acted on" + (f", {failed} workflow(s) failed" if failed else "")


def _claim(site, conn, workflow, record_id, run_key) -> bool:
    """The run of (workflow, record, day), unless one is there already (a retried task)."""
    try:
        with conn.begin_nested():
            _log(site, conn, workflow, record_id, "scheduled", None, "done", said(N_("matched")),
                 run_key=run_key)
    except (sa.exc.IntegrityError, CrbmError):
        return False
    return True


def _log_once(site, conn, workflow, record_id, status, message, run_key) -> None:
    try:
        with conn.begin_nested():
            _log(site, conn, workflow, record_id, "scheduled", None, status, message,
                 run_key=run_key)
    except (sa.exc.IntegrityError, CrbmError):
        pass
