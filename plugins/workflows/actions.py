"""Workflow actions (implementation guide §7.5.5, "Actions"): what a workflow does when its
conditions hold — the registry the engine runs and the editor draws.

**The registry.** ``action_types(site) -> {name: ActionType}``: the built-ins below plus
what plugins add through the workflows plugin's own hook ``crbm_workflow_actions(site)``
(``plugins/workflows/hookspecs.py``; a plugin implementing it requires ``workflows`` in its
manifest). An ``ActionType`` says, for the editor, its parameters (``Param``: name, label,
kind, required, choices) and, for the engine, ``run(ctx, params) -> str | None`` (a one-line
result for the run history) and ``check(site, module, params) -> list[str]`` (what saving a
workflow refuses: a field removed in the Studio, a template that does not render, an
inactive user, a bad address...). ``can_delay``: whether the action may wait (a delay).

**The actions JSON** a workflow stores (a list, run in order)::

    [{"type": "send_email", "delay": null, "unique": false, "template_id": "...",
      "to": [{"kind": "assigned_user"}, {"kind": "owner"},
             {"kind": "related_contact", "field": "contact_id"},
             {"kind": "address", "address": "sales@example.com"}]},
     {"type": "set_fields", "values": {"status": "contacted"}},
     {"type": "create_record", "module": "tasks", "link_field": "parent_id",
      "values": {"name": "Follow up {{ name }}"}},
     {"type": "assign", "user_id": "..."} | {"type": "assign", "team_id": "...",
                                             "round_robin": true},
     {"type": "webhook", "url": "https://...", "secret": "..."},
     {"type": "notify", "to": [{"kind": "assigned_user"}], "message": "..."},
     {"type": "start_workflow", "workflow_id": "..."}]

``delay`` is null or ``{"amount": N, "unit": "minutes|hours|days|weeks"}``; ``unique``
matters only with a delay. Recipients: ``assigned_user`` (the record's assigned user),
``owner`` (the user who created it), ``related_contact`` (the record a link ``field``
names: its ``email`` or ``email1``), ``address``.

**Running.** ``ActionContext`` carries the site, the workflow, the module, the record as
stored, the acting user (the workflow's *execute as*), the connection (the save's
transaction for immediate record writes; None in a job, which then writes in its own),
the run's key (the idempotency key of what it sends) and the depth (``engine``). An action
that cannot run raises ``ActionFailed`` with a message for a person: the engine logs it on
the workflow's run history; ``permanent`` says a retry would fail the same way.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from core.kernel import i18n
from core.kernel.errors import N_, CrbmError
from plugins.workflows.history import said

DELAY_UNITS = {"minutes": N_("minutes"), "hours": N_("hours"), "days": N_("days"),
               "weeks": N_("weeks")}
MAX_DELAY_DAYS = 3660
RECIPIENT_KINDS = {"assigned_user": N_("Assigned user"), "owner": N_("Record owner"),
                   "related_contact": N_("Related contact"), "address": N_("Email address")}
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SIGNATURE_HEADER = "X-CRBM-Signature"  # as core.apps.webhooks signs its deliveries
WEBHOOK_TIMEOUT = 10.0


@dataclass(frozen=True)
class Param:
    name: str
    label: str          # English, N_-marked
    kind: str           # text | textarea | number | url | choice | field | field_values
                        # | user | team | module | template | recipients | workflow
    required: bool = True
    choices: tuple[tuple[str, str], ...] = ()   # for kind "choice": (value, label)


@dataclass(frozen=True)
class ActionType:
    name: str           # "send_email", "set_fields", ... or "<plugin>.<action>"
    label: str
    params: tuple[Param, ...]
    run: Callable       # run(ctx, params) -> str | None (one-line result for the history)
    check: Callable | None = None   # check(site, module, params) -> list[str] problems
    can_delay: bool = True


class ActionFailed(CrbmError):
    """An action that could not run; ``permanent``: retrying would fail the same way (a
    removed field, a missing recipient), so the job is not retried."""

    def __init__(self, message: str, *, permanent: bool = True):
        super().__init__(message)
        self.permanent = permanent


@dataclass
class ActionContext:
    site: Any
    workflow: Mapping          # the workflow record (id, name, trigger_module, ...)
    module: Any                # the trigger module's ModuleDef
    record: dict               # the record as stored now
    user: Any                  # the acting User (execute as)
    connection: Any = None     # the save's transaction, or None (a job: its own)
    key: str = ""              # the run's idempotency key
    depth: int = 0
    index: int = 0             # the action's position in the workflow
    previous: dict | None = None
    extra: dict = field(default_factory=dict)


def _(text: str) -> str:
    """``text`` in the language of the page at work (a save from the web: its reader's;
    a job: English), marked for the catalog."""
    return i18n.active().gettext(text)


# -- helpers ---------------------------------------------------------------------------------

def delay_of(action: Mapping) -> dt.timedelta | None:
    """The action's delay as a timedelta, None when it runs at once."""
    delay = action.get("delay")
    if not delay:
        return None
    return dt.timedelta(**{delay["unit"]: int(delay["amount"])})


def check_delay(action: Mapping, can_delay: bool) -> list[str]:
    delay = action.get("delay")
    if not delay:
        return []
    if not can_delay:
        return [_("this action cannot be delayed")]
    if not isinstance(delay, Mapping) or delay.get("unit") not in DELAY_UNITS:
        return [_("a delay needs an amount and a unit (minutes, hours, days or weeks)")]
    try:
        amount = int(delay.get("amount"))
    except (TypeError, ValueError):
        return [_("the delay's amount must be a whole number")]
    if amount < 0 or dt.timedelta(**{delay["unit"]: amount}) > dt.timedelta(MAX_DELAY_DAYS):
        return [_("the delay must be between 0 and 10 years")]
    return []


def _users(site, user_ids, connection=None) -> dict[str, dict]:
    table = site.tables.tables["crbm_users"]
    ids = [str(i) for i in user_ids if i]
    if not ids:
        return {}
    query = sa.select(table.c.id, table.c.username, table.c.email, table.c.active,
                      table.c.display_name, table.c.is_admin).where(table.c.id.in_(ids))
    if connection is not None:
        rows = connection.execute(query).mappings().all()
    else:
        with site.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
    return {str(r["id"]): dict(r) for r in rows}


def _user_problem(site, user_id, what: str) -> str | None:
    found = _users(site, [user_id]).get(str(user_id))
    if found is None:
        return _("%s: no such user") % what
    if not found["active"]:
        return _("%(what)s: user %(user)s is inactive") % {"what": what,
                                                          "user": found["username"]}
    return None


def _field_problems(module, names, what: str) -> list[str]:
    return [_("%(what)s: field '%(field)s' does not exist in %(module)s")
            % {"what": what, "field": name, "module": module.name}
            for name in names if name not in module.fields]


def _link_fields(module) -> dict[str, str]:
    """Link field name -> the module it points to."""
    found = {}
    for f in module.fields.values():
        if f.type.is_link:
            target = f.spec.get("module") or f.spec.get("target")
            if f.name == "assigned_user_id" or f.type.name == "user":
                target = "users"
            found[f.name] = target
    return found


# -- recipients ------------------------------------------------------------------------------

def check_recipients(site, module, recipients) -> list[str]:
    if not isinstance(recipients, list) or not recipients:
        return [_("at least one recipient is needed")]
    problems = []
    for number, r in enumerate(recipients, 1):
        kind = r.get("kind") if isinstance(r, Mapping) else None
        where = _("recipient %d") % number
        if kind not in RECIPIENT_KINDS and kind != "user":
            problems.append(_("%s: unknown kind of recipient") % where)
        elif kind == "address" and not EMAIL_RE.match(str(r.get("address") or "")):
            problems.append(_("%(where)s: '%(address)s' is not an email address")
                            % {"where": where, "address": r.get("address") or ""})
        elif kind == "assigned_user" and "assigned_user_id" not in module.fields:
            problems.append(_("%(where)s: %(module)s has no assigned user")
                            % {"where": where, "module": module.name})
        elif kind == "related_contact":
            name = r.get("field") or ""
            if name not in _link_fields(module):
                problems.append(_("%(where)s: field '%(field)s' is not a link in %(module)s")
                                % {"where": where, "field": name, "module": module.name})
        elif kind == "user":
            problem = _user_problem(site, r.get("user_id"), where)
            if problem:
                problems.append(problem)
    return problems


def resolve_recipients(ctx: ActionContext, recipients) -> tuple[list[dict], list[str]]:
    """[{"address", "user_id"}] and what could not be found (a person's words)."""
    record, site = ctx.record, ctx.site
    found: list[dict] = []
    missing: list[str] = []
    user_ids = []
    for r in recipients:
        kind = r.get("kind")
        if kind == "assigned_user":
            user_ids.append(("assigned user", record.get("assigned_user_id")))
        elif kind == "owner":
            user_ids.append(("record owner", record.get("created_by")))
        elif kind == "user":
            user_ids.append(("user", r.get("user_id")))
        elif kind == "address":
            found.append({"address": r["address"], "user_id": None})
        elif kind == "related_contact":
            name = r.get("field")
            target = _link_fields(ctx.module).get(name)
            other_id = record.get(name)
            if not target or not other_id:
                missing.append(f"{name}: no related record")
                continue
            other = _read(ctx, target, other_id)
            address = other and (other.get("email") or other.get("email1"))
            if not address:
                missing.append(f"{name}: the related record has no email address")
            else:
                found.append({"address": address, "user_id": None})
    users = _users(site, [uid for _w, uid in user_ids], ctx.connection)
    for what, uid in user_ids:
        user = users.get(str(uid)) if uid else None
        if user is None:
            missing.append(f"{what}: none")
        elif not user["active"]:
            missing.append(f"{what}: {user['username']} is inactive")
        elif not user["email"]:
            missing.append(f"{what}: {user['username']} has no email address")
        else:
            found.append({"address": user["email"], "user_id": str(uid)})
    unique, seen = [], set()
    for item in found:
        if item["address"].lower() not in seen:
            seen.add(item["address"].lower())
            unique.append(item)
    return unique, missing


def _read(ctx: ActionContext, module_name: str, record_id) -> dict | None:
    from core.kernel.records import SYSTEM_USER
    try:
        return ctx.site.records.get(module_name, str(record_id), SYSTEM_USER,
                                    connection=ctx.connection)
    except (CrbmError, KeyError):  # gone, or its module removed: "no related record"
        return None


# -- send_email ------------------------------------------------------------------------------

def _templates():
    """The email templates plugin's API, or None when it is not installed."""
    try:
        from plugins.email_templates import render
    except ImportError:
        return None
    return render


def _check_send_email(site, module, params) -> list[str]:
    problems = []
    api = _templates()
    template_id = params.get("template_id")
    if not template_id:
        problems.append(_("a template is needed"))
    elif api is None:
        problems.append(_("the email templates plugin is not installed"))
    else:
        try:
            problem = api.problem_for(site, template_id, module.name)
        except CrbmError as exc:  # no such template
            problem = exc
        if problem:
            problems.append(_("template: %s") % problem)
    return problems + check_recipients(site, module, params.get("to"))


def _run_send_email(ctx: ActionContext, params) -> str:
    api = _templates()
    if api is None:
        raise ActionFailed(said(N_("the email templates plugin is not installed")))
    from core.apps.documents.mail import MailError
    recipients, missing = resolve_recipients(ctx, params.get("to") or [])
    if not recipients:
        raise ActionFailed(said(N_("no recipient: %s"), "; ".join(missing)))
    addresses = [item["address"] for item in recipients]
    try:  # one message to all: a retry cannot have sent to some and not others
        api.send(ctx.site, params["template_id"], ctx.module.name, ctx.record["id"],
                 addresses, user=ctx.user, idempotency_key=ctx.key)
    except api.TemplateError as exc:
        raise ActionFailed(said(N_("template: %s"), exc)) from exc
    except MailError as exc:  # an address refused: for good; the server down: later
        raise ActionFailed(said(N_("sending failed: %s"), exc),
                           permanent=getattr(exc, "field", None) is not None) from exc
    sent_to = ", ".join(addresses) + (" (" + "; ".join(missing) + ")" if missing else "")
    return said(N_("email sent to %s"), sent_to)


# -- set_fields ------------------------------------------------------------------------------

def _check_set_fields(site, module, params) -> list[str]:
    values = params.get("values")
    if not isinstance(values, Mapping) or not values:
        return [_("at least one field to set is needed")]
    problems = _field_problems(module, values, _("field to set"))
    if problems:
        return problems
    errors = site.records.validate(module.name, dict(values), {})
    return [_("%(field)s: %(problem)s") % {"field": name, "problem": errors[name]}
            for name in values if name in errors]


def _run_set_fields(ctx: ActionContext, params) -> str:
    values = dict(params.get("values") or {})
    gone = [n for n in values if n not in ctx.module.fields]
    if gone:
        raise ActionFailed(said(N_("field '%s' no longer exists"), "', '".join(gone)))
    ctx.site.records.update(ctx.module.name, ctx.record["id"], values, ctx.user,
                            connection=ctx.connection)
    return said(N_("fields set: %s"), ", ".join(values))


# -- create_record ---------------------------------------------------------------------------

def _render_value(ctx: ActionContext, value):
    """``{{ field }}`` of the trigger record in a text value: the sandbox of the email
    templates plugin (plain names only); literal when that plugin is absent."""
    if not isinstance(value, str) or "{{" not in value:
        return value
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    try:
        names = {k: ("" if v is None else v) for k, v in ctx.record.items()}
        return env.from_string(value).render(**names)
    except TemplateError as exc:
        raise ActionFailed(said(N_("value '%(value)s': %(error)s"), value=value,
                                error=exc)) from exc


def _check_create_record(site, module, params) -> list[str]:
    target_name = params.get("module")
    registry = site.registry
    if not target_name or target_name not in registry.modules:
        return [_("module '%s' does not exist") % (target_name or "")]
    target = registry.module(target_name)
    link = params.get("link_field")
    problems = []
    if link:
        if link not in target.fields:
            problems.append(_("link field '%(field)s' does not exist in %(module)s")
                            % {"field": link, "module": target_name})
        elif not target.fields[link].type.is_link:
            problems.append(_("field '%(field)s' of %(module)s is not a link")
                            % {"field": link, "module": target_name})
    values = params.get("values") or {}
    if not isinstance(values, Mapping):
        return problems + [_("values must be field: value pairs")]
    problems += _field_problems(target, values, _("value"))
    for name, value in values.items():
        if isinstance(value, str) and "{{" in value:
            for var in re.findall(r"{{\s*([A-Za-z_][A-Za-z0-9_]*)", value):
                if var not in module.fields:
                    problems.append(_("value of '%(field)s': unknown variable {{ %(var)s }}")
                                    % {"field": name, "var": var})
            try:
                ImmutableSandboxedEnvironment().parse(value)
            except TemplateSyntaxError as exc:
                problems.append(_("value of '%(field)s': %(error)s")
                                % {"field": name, "error": exc})
    return problems


def _run_create_record(ctx: ActionContext, params) -> str:
    target = params["module"]
    if target not in ctx.site.registry.modules:
        raise ActionFailed(said(N_("module '%s' does not exist"), target))
    values = {k: _render_value(ctx, v) for k, v in (params.get("values") or {}).items()}
    link = params.get("link_field")
    if link:
        values[link] = ctx.record["id"]
        spec = ctx.site.registry.module(target).fields.get(link)
        if spec is not None and spec.type.name == "parent" or \
                f"{(link or '').removesuffix('_id')}_type" in ctx.site.registry.module(target).fields:
            values.setdefault(f"{link.removesuffix('_id')}_type", ctx.module.name)
    created = ctx.site.records.create(target, values, ctx.user, connection=ctx.connection)
    return said(N_("record created in %(module)s: %(id)s"), module=target, id=created["id"])


# -- assign ----------------------------------------------------------------------------------

def _check_assign(site, module, params) -> list[str]:
    if "assigned_user_id" not in module.fields:
        return [_("%s has no assigned user") % module.name]
    if params.get("team_id"):
        teams = site.tables.tables["crbm_teams"]
        with site.engine.connect() as conn:
            if conn.execute(sa.select(teams.c.id).where(
                    teams.c.id == str(params["team_id"]))).first() is None:
                return [_("team: no such team")]
        return []
    if not params.get("user_id"):
        return [_("a user or a team is needed")]
    problem = _user_problem(site, params["user_id"], _("assign to"))
    return [problem] if problem else []


def prepare_round_robin(site, workflows: list[Mapping], conn) -> None:
    """Make the counter rows of the workflows' round-robin assignments as they are saved
    (counter -1: no turn taken yet), so an assigning save only bumps an existing row: two
    first assignments inserting the same missing row at once deadlock on MariaDB's gap
    locks, and a deadlock ends the user's whole transaction."""
    wanted = set()
    for workflow in workflows:
        try:
            listed = json.loads(workflow.get("actions") or "[]")
        except ValueError:
            continue
        wanted |= {(str(workflow["id"]), index) for index, action in enumerate(listed)
                   if isinstance(action, dict) and action.get("type") == "assign"
                   and action.get("round_robin")}
    if not wanted:
        return
    rr = site.tables.tables["workflow_round_robin"]
    have = set(conn.execute(sa.select(rr.c.workflow_id, rr.c.action_index).where(
        rr.c.workflow_id.in_(sorted({w for w, _ in wanted})))).tuples())
    if wanted - have:
        conn.execute(rr.insert(), [{"workflow_id": w, "action_index": i, "counter": -1}
                                   for w, i in sorted(wanted - have)])


def _round_robin(ctx: ActionContext, team_id: str, conn) -> str | None:
    """The next active member of the team for this workflow action: a counter row in
    ``workflow_round_robin`` bumped by an UPDATE (its row lock orders concurrent saves)."""
    members_t = ctx.site.tables.tables["crbm_team_members"]
    users_t = ctx.site.tables.tables["crbm_users"]
    members = list(conn.execute(
        sa.select(members_t.c.user_id).join(users_t, users_t.c.id == members_t.c.user_id)
        .where(members_t.c.team_id == str(team_id), users_t.c.active.is_(True))
        .order_by(users_t.c.username)).scalars())
    if not members:
        return None
    rr = ctx.site.tables.tables["workflow_round_robin"]
    where = (rr.c.workflow_id == str(ctx.workflow["id"])) & (rr.c.action_index == ctx.index)
    if conn.execute(rr.update().where(where).values(counter=rr.c.counter + 1)).rowcount == 0:
        try:
            with conn.begin_nested():
                conn.execute(rr.insert().values(workflow_id=str(ctx.workflow["id"]),
                                                action_index=ctx.index, counter=0))
        except sa.exc.IntegrityError:  # a concurrent save made it first
            conn.execute(rr.update().where(where).values(counter=rr.c.counter + 1))
    counter = conn.execute(sa.select(rr.c.counter).where(where)).scalar_one()
    return str(members[counter % len(members)])


def _run_assign(ctx: ActionContext, params) -> str:
    if "assigned_user_id" not in ctx.module.fields:
        raise ActionFailed(said(N_("%s has no assigned user"), ctx.module.name))

    def assign(conn):
        if params.get("team_id"):
            user_id = _round_robin(ctx, params["team_id"], conn)
            if user_id is None:
                raise ActionFailed(said(N_("team has no active member")))
        else:
            user_id = str(params["user_id"])
            user = _users(ctx.site, [user_id], conn).get(user_id)
            if user is None or not user["active"]:
                raise ActionFailed(said(N_("user to assign is missing or inactive")))
        ctx.site.records.update(ctx.module.name, ctx.record["id"],
                                {"assigned_user_id": user_id}, ctx.user, connection=conn)
        return user_id

    if ctx.connection is not None:
        user_id = assign(ctx.connection)
    else:
        with ctx.site.engine.begin() as conn:
            user_id = assign(conn)
    return said(N_("assigned to %s"), _users(ctx.site, [user_id]).get(user_id, {}).get(
        "username", user_id))


# -- webhook ---------------------------------------------------------------------------------

def signature(secret: str, body: bytes) -> str:
    """The X-CRBM-Signature header value, the same as core.apps.webhooks' deliveries."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _check_webhook(site, module, params) -> list[str]:
    parts = urlsplit(str(params.get("url") or ""))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return [_("'%s' is not an http(s) address") % (params.get("url") or "")]
    return []


def _run_webhook(ctx: ActionContext, params) -> str:
    import httpx
    body = json.dumps({"event": "workflow", "workflow_id": str(ctx.workflow["id"]),
                       "module": ctx.module.name, "record": ctx.record},
                      default=str, sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "X-CRBM-Event": "workflow",
               "X-CRBM-Delivery": ctx.key}
    if params.get("secret"):
        headers[SIGNATURE_HEADER] = signature(params["secret"], body)
    try:
        response = httpx.post(params["url"], content=body, headers=headers,
                              timeout=WEBHOOK_TIMEOUT)
    except httpx.HTTPError as exc:
        raise ActionFailed(said(N_("webhook: %s"), exc), permanent=False) from exc
    if response.status_code >= 400:
        raise ActionFailed(said(N_("webhook: HTTP %d"), response.status_code),
                           permanent=response.status_code < 500 and response.status_code != 429)
    return said(N_("webhook: HTTP %d"), response.status_code)


# -- notify ----------------------------------------------------------------------------------

def _notifications():
    try:
        from core.apps.notifications import notify
    except ImportError:
        return None
    return notify


def _check_notify(site, module, params) -> list[str]:
    problems = [] if (params.get("message") or "").strip() else [_("a message is needed")]
    for number, r in enumerate(params.get("to") or [], 1):
        if r.get("kind") not in ("assigned_user", "owner", "user"):
            problems.append(_("recipient %d: only users can be notified") % number)
    return problems + check_recipients(site, module, params.get("to"))


def _run_notify(ctx: ActionContext, params) -> str:
    notify = _notifications()
    if notify is None:
        raise ActionFailed(said(N_("notifications are not available")))
    ids = []
    for r in params.get("to") or []:
        uid = {"assigned_user": ctx.record.get("assigned_user_id"),
               "owner": ctx.record.get("created_by")}.get(r.get("kind"), r.get("user_id"))
        if uid:
            ids.append(str(uid))
    if not ids:
        raise ActionFailed(said(N_("no user to notify")))
    message = _render_value(ctx, params["message"])
    made = notify(ctx.site, ids, message, module=ctx.module.name,
                  record_id=str(ctx.record["id"]), key=f"workflow:{ctx.key}"[:200],
                  connection=None)  # keyed on the run: a redelivered job adds nothing
    return said(N_("notified %d user(s)"), made)


# -- start_workflow --------------------------------------------------------------------------

def _check_start_workflow(site, module, params) -> list[str]:
    if not params.get("workflow_id"):
        return [_("a workflow is needed")]
    return []  # existence, module and cycles: engine.check_workflow (it knows the graph)


def _run_start_workflow(ctx: ActionContext, params) -> str:
    from plugins.workflows import engine
    return engine.start_workflow(ctx, str(params["workflow_id"]))


# -- the registry ----------------------------------------------------------------------------

BUILTINS = (
    ActionType("send_email", N_("Send email"), (
        Param("template_id", N_("Email template"), "template"),
        Param("to", N_("Recipients"), "recipients")),
        _run_send_email, _check_send_email),
    ActionType("set_fields", N_("Set field values"), (
        Param("values", N_("Values"), "field_values"),),
        _run_set_fields, _check_set_fields),
    ActionType("create_record", N_("Create a related record"), (
        Param("module", N_("Module"), "module"),
        Param("link_field", N_("Link field"), "field"),
        Param("values", N_("Values"), "field_values", required=False)),
        _run_create_record, _check_create_record),
    ActionType("assign", N_("Assign"), (
        Param("user_id", N_("User"), "user", required=False),
        Param("team_id", N_("Team"), "team", required=False),
        Param("round_robin", N_("Round-robin over the team's active members"), "choice",
              required=False, choices=(("true", N_("Yes")), ("", N_("No"))))),
        _run_assign, _check_assign),
    ActionType("webhook", N_("Call a webhook"), (
        Param("url", N_("Address"), "url"),
        Param("secret", N_("Signing secret"), "text", required=False)),
        _run_webhook, _check_webhook),
    ActionType("notify", N_("Create a notification"), (
        Param("to", N_("Users"), "recipients"),
        Param("message", N_("Message"), "textarea")),
        _run_notify, _check_notify),
    ActionType("start_workflow", N_("Start another workflow"), (
        Param("workflow_id", N_("Workflow"), "workflow"),),
        _run_start_workflow, _check_start_workflow),
)


def action_types(site) -> dict[str, ActionType]:
    """The built-in action types (``notify`` only when the notifications app is there),
    then every plugin's ``crbm_workflow_actions``; a plugin's name must be
    ``<plugin>.<action>``, a clash keeps the first."""
    found = {a.name: a for a in BUILTINS if a.name != "notify" or _notifications()}
    hook = getattr(site.hook, "crbm_workflow_actions", None)
    if hook is not None:
        for contributed in hook(site=site):
            for action in contributed or ():
                if "." in action.name:
                    found.setdefault(action.name, action)
    return found


def check_actions(site, module, actions) -> list[str]:
    """Every problem of an actions list, each prefixed with where ("Action 2 (Send
    email): template: ...")."""
    if isinstance(actions, str):
        try:
            actions = json.loads(actions or "[]")
        except ValueError as exc:
            return [_("actions are not valid JSON: %s") % exc]
    if not isinstance(actions, list):
        return [_("actions must be a list")]
    types = action_types(site)
    problems = []
    for number, action in enumerate(actions, 1):
        kind = action.get("type") if isinstance(action, Mapping) else None
        type_ = types.get(kind)
        if type_ is None:
            problems.append(_("Action %(n)d: unknown action '%(type)s'")
                            % {"n": number, "type": kind})
            continue
        where = _("Action %(n)d (%(label)s)") % {"n": number, "label": _(type_.label)}
        found = check_delay(action, type_.can_delay)
        for param in type_.params:
            if param.required and action.get(param.name) in (None, "", [], {}):
                found.append(_("'%s' is required") % param.name)
        if not found and type_.check is not None:
            try:
                found = list(type_.check(site, module, action))
            except Exception as exc:  # noqa: BLE001  a plugin's check that breaks: refuse
                found = [str(exc)]
        problems += [_("%(where)s: %(problem)s") % {"where": where, "problem": p}
                     for p in found]
    return problems
