"""Changing the access model: teams, roles, who holds them, role rules, record denies,
the access control settings and delegation.

Each function is one transaction and bumps the access epoch, so every worker reloads
its cached grants on its next request. Bad input raises ``ValidationError`` naming the
field, and changes nothing. Who may call what is the web layer's business (admins; users
with delegation may only assign roles and teams).
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping

import sqlalchemy as sa

from core.apps.admin import reports_to
from core.kernel.access import ACTIONS, DEFAULT_SETTINGS, SETTINGS_KEY, Rule, check_rule
from core.kernel.errors import N_, Message, NotFoundError, ValidationError
from core.kernel.records import now

BUILTIN_ROLES = {"default": "Default Role", "dpm": "Data Privacy Manager"}


def _t(site, name: str) -> sa.Table:
    return site.tables.tables[name]


def bump_epoch(conn, tables: sa.MetaData) -> None:
    epoch = tables.tables["crbm_access_epoch"]
    if conn.execute(epoch.update().where(epoch.c.id == 1)
                    .values(epoch=epoch.c.epoch + 1)).rowcount == 0:
        conn.execute(epoch.insert().values(id=1, epoch=1))


def ensure_builtins(site) -> None:
    """The Default Role and the Data Privacy Manager role exist (after a schema sync)."""
    roles = _t(site, "crbm_roles")
    with site.engine.begin() as conn:
        have = set(conn.execute(sa.select(roles.c.builtin).where(roles.c.builtin.is_not(None)))
                   .scalars())
        missing = [(b, name) for b, name in BUILTIN_ROLES.items() if b not in have]
        for builtin, name in missing:
            stamp = now()
            conn.execute(roles.insert().values(id=str(uuid.uuid4()), name=name,
                                               builtin=builtin, created_at=stamp,
                                               modified_at=stamp))
        if missing or not conn.execute(sa.select(_t(site, "crbm_access_epoch").c.epoch)).first():
            bump_epoch(conn, site.tables)  # (not at every sync: nothing changed)


def _name(value, errors: dict, label: str = "name") -> str:
    text = " ".join(str(value or "").split())
    if not text:
        errors[label] = Message(N_("is required"))
    elif len(text) > 100:
        errors[label] = Message(N_("is longer than %(max)d characters"), max=100)
    return text


def _unique(conn, table: sa.Table, name: str, errors: dict, own_id: str | None = None) -> None:
    clash = conn.execute(sa.select(table.c.id).where(
        sa.func.lower(table.c.name) == name.lower())).scalar()
    if clash and clash != own_id:
        errors["name"] = Message(N_("%(name)s is already taken"), name=repr(name))


def _exists(conn, table: sa.Table, row_id: str, what: str) -> sa.Row:
    row = conn.execute(sa.select(table).where(table.c.id == str(row_id))).first()
    if row is None:
        raise NotFoundError(f"no {what} with id {row_id}")
    return row


def _save_named(site, table_name: str, what: str, row_id: str | None, name: str,
                description: str | None, **values) -> str:
    """Create (``row_id`` None) or update a team or a role: the name is required and
    unique (in any letter case); the access epoch moves on. Returns the id."""
    table = _t(site, table_name)
    errors: dict = {}
    name = _name(name, errors)
    with site.engine.begin() as conn:
        if row_id is not None:
            _exists(conn, table, row_id, what)
        if not errors:
            _unique(conn, table, name, errors, row_id)
        if errors:
            raise ValidationError(errors)
        values.update(name=name, description=description or None, modified_at=now())
        if row_id is None:
            row_id = str(uuid.uuid4())
            conn.execute(table.insert().values(id=row_id, created_at=values["modified_at"],
                                               **values))
        else:
            conn.execute(table.update().where(table.c.id == row_id).values(**values))
        bump_epoch(conn, site.tables)
    return row_id


# -- teams ---------------------------------------------------------------------------------

def create_team(site, name: str, description: str | None = None,
                non_inheritable: bool = False) -> str:
    return _save_named(site, "crbm_teams", "team", None, name, description,
                       non_inheritable=bool(non_inheritable))


def update_team(site, team_id: str, *, name: str, description: str | None,
                non_inheritable: bool) -> None:
    _save_named(site, "crbm_teams", "team", team_id, name, description,
                non_inheritable=bool(non_inheritable))


def delete_team(site, team_id: str) -> None:
    """A team and everything that points at it: memberships, roles, record links, denies."""
    with site.engine.begin() as conn:
        _exists(conn, _t(site, "crbm_teams"), team_id, "team")
        for name in ("crbm_team_members", "crbm_role_teams", "crbm_record_teams",
                     "crbm_record_denies"):
            table = _t(site, name)
            conn.execute(table.delete().where(table.c.team_id == team_id))
        teams = _t(site, "crbm_teams")
        conn.execute(teams.delete().where(teams.c.id == team_id))
        bump_epoch(conn, site.tables)


def teams(site) -> list[dict]:
    """Every team with its member count, by name."""
    teams, members = _t(site, "crbm_teams"), _t(site, "crbm_team_members")
    count = sa.select(sa.func.count()).where(members.c.team_id == teams.c.id).scalar_subquery()
    with site.engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            sa.select(teams, count.label("member_count")).order_by(teams.c.name)).mappings()]


def team_names(site) -> list[tuple[str, str]]:
    """(id, name) of every team, by name: for pickers on record pages (no counts)."""
    teams = _t(site, "crbm_teams")
    with site.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.select(teams.c.id, teams.c.name).order_by(teams.c.name))]


def get_team(site, team_id: str) -> dict:
    with site.engine.connect() as conn:
        return dict(_exists(conn, _t(site, "crbm_teams"), team_id, "team")._mapping)


# -- roles ---------------------------------------------------------------------------------

def create_role(site, name: str, description: str | None = None) -> str:
    return _save_named(site, "crbm_roles", "role", None, name, description)


def update_role(site, role_id: str, *, name: str, description: str | None) -> None:
    _save_named(site, "crbm_roles", "role", role_id, name, description)


def delete_role(site, role_id: str) -> None:
    roles = _t(site, "crbm_roles")
    with site.engine.begin() as conn:
        row = _exists(conn, roles, role_id, "role")
        if row.builtin:
            raise ValidationError({"role": Message(N_("%(name)s is built in and cannot be "
                                                      "deleted"), name=row.name)})
        for name in ("crbm_role_users", "crbm_role_teams", "crbm_role_rules"):
            table = _t(site, name)
            conn.execute(table.delete().where(table.c.role_id == role_id))
        conn.execute(roles.delete().where(roles.c.id == role_id))
        bump_epoch(conn, site.tables)


def roles(site) -> list[dict]:
    roles, users, teams = _t(site, "crbm_roles"), _t(site, "crbm_role_users"), \
        _t(site, "crbm_role_teams")
    user_count = sa.select(sa.func.count()).where(users.c.role_id == roles.c.id).scalar_subquery()
    team_count = sa.select(sa.func.count()).where(teams.c.role_id == roles.c.id).scalar_subquery()
    with site.engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            sa.select(roles, user_count.label("user_count"), team_count.label("team_count"))
            .order_by(roles.c.builtin.is_(None), roles.c.name)).mappings()]


def get_role(site, role_id: str) -> dict:
    with site.engine.connect() as conn:
        return dict(_exists(conn, _t(site, "crbm_roles"), role_id, "role")._mapping)


def role_rules(site, role_id: str) -> dict[str, Rule]:
    """module -> the role's stored rule (modules without one have the defaults)."""
    rules = _t(site, "crbm_role_rules")
    with site.engine.connect() as conn:
        return {r.module: Rule(r.access, {a: getattr(r, a) for a in ACTIONS})
                for r in conn.execute(sa.select(rules).where(rules.c.role_id == role_id))}


def set_role_rules(site, role_id: str, matrix: Mapping[str, tuple[str, Mapping[str, str]]]
                   ) -> dict[str, Rule]:
    """Store a role's matrix: module -> (access, {action: level}). All cells are checked
    first (errors keyed ``module.action``); nothing is stored unless all are valid.
    Returns the rules as stored (limited access and prerequisites applied)."""
    errors, clean = {}, {}
    for module, (access, levels) in matrix.items():
        if module not in site.registry.modules:
            errors[module] = Message(N_("no such module"))
            continue
        try:
            clean[module] = check_rule(access, levels)
        except ValidationError as exc:
            errors.update({f"{module}.{k}": v for k, v in exc.errors.items()})
    if errors:
        raise ValidationError(errors)
    rules = _t(site, "crbm_role_rules")
    with site.engine.begin() as conn:
        _exists(conn, _t(site, "crbm_roles"), role_id, "role")
        if clean:
            conn.execute(rules.delete().where(rules.c.role_id == role_id,
                                              rules.c.module.in_(list(clean))))
            conn.execute(rules.insert(), [{"role_id": role_id, "module": m, "access": r.access,
                                           **r.levels} for m, r in clean.items()])
        bump_epoch(conn, site.tables)
    return clean


# -- who holds what ------------------------------------------------------------------------

def _set_pairs(site, table_name: str, fixed: tuple[str, str], other: str,
               add: Iterable[str], remove: Iterable[str]) -> None:
    table = _t(site, table_name)
    column, value = fixed
    add, remove = list(dict.fromkeys(map(str, add))), list(map(str, remove))
    with site.engine.begin() as conn:
        if remove:
            conn.execute(table.delete().where(table.c[column] == value,
                                              table.c[other].in_(remove)))
        if add:
            have = set(conn.execute(sa.select(table.c[other]).where(
                table.c[column] == value, table.c[other].in_(add))).scalars())
            rows = [{column: value, other: o} for o in add if o not in have]
            if rows:
                conn.execute(table.insert(), rows)
        bump_epoch(conn, site.tables)


def _check_ids(site, table_name: str, ids: Iterable[str], what: str) -> None:
    ids = set(map(str, ids))
    if not ids:
        return
    table = _t(site, table_name)
    with site.engine.connect() as conn:
        found = set(conn.execute(sa.select(table.c.id).where(table.c.id.in_(ids))).scalars())
    if ids - found:
        raise NotFoundError(f"no {what} with id {min(ids - found)}")


def set_team_members(site, team_id: str, add: Iterable[str] = (), remove: Iterable[str] = ()):
    add = list(add)
    _check_ids(site, "crbm_teams", [team_id], "team")
    _check_ids(site, "crbm_users", add, "user")
    _set_pairs(site, "crbm_team_members", ("team_id", str(team_id)), "user_id", add, remove)


def set_role_users(site, role_id: str, add: Iterable[str] = (), remove: Iterable[str] = ()):
    add = list(add)
    _check_ids(site, "crbm_roles", [role_id], "role")
    _check_ids(site, "crbm_users", add, "user")
    _set_pairs(site, "crbm_role_users", ("role_id", str(role_id)), "user_id", add, remove)


def set_role_teams(site, role_id: str, add: Iterable[str] = (), remove: Iterable[str] = ()):
    add = list(add)
    _check_ids(site, "crbm_roles", [role_id], "role")
    _check_ids(site, "crbm_teams", add, "team")
    _set_pairs(site, "crbm_role_teams", ("role_id", str(role_id)), "team_id", add, remove)


def set_user_teams(site, user_id: str, team_ids: Iterable[str]) -> None:
    """Make exactly these the user's teams."""
    team_ids = set(map(str, team_ids))
    _check_ids(site, "crbm_users", [user_id], "user")
    _check_ids(site, "crbm_teams", team_ids, "team")
    current = set(user_teams(site, user_id))
    _set_pairs(site, "crbm_team_members", ("user_id", str(user_id)), "team_id",
               team_ids - current, current - team_ids)


def set_user_roles(site, user_id: str, role_ids: Iterable[str]) -> None:
    """Make exactly these the roles given to the user directly."""
    role_ids = set(map(str, role_ids))
    _check_ids(site, "crbm_users", [user_id], "user")
    _check_ids(site, "crbm_roles", role_ids, "role")
    current = set(user_roles(site, user_id))
    _set_pairs(site, "crbm_role_users", ("user_id", str(user_id)), "role_id",
               role_ids - current, current - role_ids)


def _column_of(site, table_name: str, where: tuple[str, str], column: str) -> list[str]:
    table = _t(site, table_name)
    with site.engine.connect() as conn:
        return list(conn.execute(sa.select(table.c[column])
                                 .where(table.c[where[0]] == str(where[1]))).scalars())


def user_teams(site, user_id: str) -> list[str]:
    return _column_of(site, "crbm_team_members", ("user_id", user_id), "team_id")


def user_roles(site, user_id: str) -> list[str]:
    return _column_of(site, "crbm_role_users", ("user_id", user_id), "role_id")


def team_members(site, team_id: str) -> list[str]:
    return _column_of(site, "crbm_team_members", ("team_id", team_id), "user_id")


def team_roles(site, team_id: str) -> list[str]:
    return _column_of(site, "crbm_role_teams", ("team_id", team_id), "role_id")


def role_users(site, role_id: str) -> list[str]:
    return _column_of(site, "crbm_role_users", ("role_id", role_id), "user_id")


def role_teams(site, role_id: str) -> list[str]:
    return _column_of(site, "crbm_role_teams", ("role_id", role_id), "team_id")


def set_delegation(site, user_id: str, allowed: bool) -> None:
    """Let a non-admin user assign roles and teams to users (guide 7.3.2)."""
    users = _t(site, "crbm_users")
    with site.engine.begin() as conn:
        _exists(conn, users, user_id, "user")
        conn.execute(users.update().where(users.c.id == user_id)
                     .values(can_assign_access=bool(allowed), modified_at=now()))
        bump_epoch(conn, site.tables)


# -- record denies -------------------------------------------------------------------------

def add_deny(site, module: str, record_id: str, *, user_id: str | None = None,
             team_id: str | None = None, by: str | None = None) -> None:
    """Hide one record from one user or one team."""
    if (user_id is None) == (team_id is None):
        raise ValidationError({"deny": Message(N_("Choose a user or a team."))})
    site.registry.module(module)
    if user_id:
        _check_ids(site, "crbm_users", [user_id], "user")
    else:
        _check_ids(site, "crbm_teams", [team_id], "team")
    denies = _t(site, "crbm_record_denies")
    with site.engine.begin() as conn:
        clash = conn.execute(sa.select(denies.c.id).where(
            denies.c.module == module, denies.c.record_id == str(record_id),
            denies.c.user_id == user_id if user_id else denies.c.team_id == team_id)).first()
        if clash is None:
            conn.execute(denies.insert().values(module=module, record_id=str(record_id),
                                                user_id=user_id, team_id=team_id,
                                                created_at=now(), created_by=by))
        bump_epoch(conn, site.tables)


def remove_deny(site, deny_id: int) -> None:
    denies = _t(site, "crbm_record_denies")
    with site.engine.begin() as conn:
        conn.execute(denies.delete().where(denies.c.id == int(deny_id)))
        bump_epoch(conn, site.tables)


def denies_of(site, module: str, record_id: str) -> list[dict]:
    """The record's denies, each with the denied user's or team's name."""
    denies, users, teams = _t(site, "crbm_record_denies"), _t(site, "crbm_users"), \
        _t(site, "crbm_teams")
    name = sa.func.coalesce(users.c.display_name, users.c.username, teams.c.name)
    with site.engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            sa.select(denies.c.id, denies.c.user_id, denies.c.team_id, name.label("name"))
            .outerjoin(users, users.c.id == denies.c.user_id)
            .outerjoin(teams, teams.c.id == denies.c.team_id)
            .where(denies.c.module == module, denies.c.record_id == str(record_id))
            .order_by(denies.c.id)).mappings()]


# -- settings ------------------------------------------------------------------------------

def save_settings(site, values: Mapping[str, bool]) -> dict:
    unknown = set(values) - set(DEFAULT_SETTINGS)
    if unknown:
        raise ValidationError({k: Message(N_("no such setting")) for k in sorted(unknown)})
    merged = {**DEFAULT_SETTINGS, **(site.settings.get(SETTINGS_KEY) or {}),
              **{k: bool(v) for k, v in values.items()}}
    settings = _t(site, "crbm_settings")
    with site.engine.begin() as conn:  # the setting and the epoch move together
        conn.execute(settings.delete().where(settings.c.key == SETTINGS_KEY))
        conn.execute(settings.insert().values(key=SETTINGS_KEY, value=json.dumps(merged)))
        bump_epoch(conn, site.tables)
        site.settings_changed(conn)
    return merged


# -- for the administration screens --------------------------------------------------------

USER_COLUMNS = ("id", "username", "display_name", "email", "is_admin", "active", "auth_source",
                "can_assign_access", "must_change_password", "last_login_at", "created_at",
                "reports_to_id", "department")


def _user_columns(users: sa.Table) -> list:
    return [users.c[name] for name in USER_COLUMNS if name in users.c]


def _user_search(users: sa.Table, search: str):
    text = " ".join(str(search or "").split())
    if not text:
        return sa.true()
    return sa.or_(*(users.c[name].icontains(text, autoescape=True)
                    for name in ("username", "display_name", "email")))


def users_overview(site, search: str = "", offset: int = 0, limit: int = 50
                   ) -> tuple[list[dict], int]:
    """A page of users by user name (``search`` matches user name, display name or email)
    and how many match, each user with ``teams`` (names) and ``roles``: (name, via_team)
    pairs, the roles given directly and those of their teams. Users holding no role get
    the Default Role's name with via_team None. Four queries, whatever the page size."""
    t = site.tables.tables
    users, members, teams = t["crbm_users"], t["crbm_team_members"], t["crbm_teams"]
    roles, role_users, role_teams = t["crbm_roles"], t["crbm_role_users"], t["crbm_role_teams"]
    where = _user_search(users, search)
    with site.engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(users).where(where)).scalar()
        rows = [dict(r) for r in conn.execute(
            sa.select(*_user_columns(users)).where(where)
            .order_by(sa.func.lower(users.c.username), users.c.id)
            .offset(offset).limit(limit)).mappings()]
        ids = [r["id"] for r in rows]
        team_names: dict[str, list[str]] = {i: [] for i in ids}
        role_names: dict[str, list[tuple[str, bool | None]]] = {i: [] for i in ids}
        if ids:
            for user_id, name in conn.execute(
                    sa.select(members.c.user_id, teams.c.name)
                    .join(teams, teams.c.id == members.c.team_id)
                    .where(members.c.user_id.in_(ids)).order_by(teams.c.name)):
                team_names[user_id].append(name)
            direct = sa.select(role_users.c.user_id, roles.c.name,
                               sa.literal_column("0").label("via")) \
                .join(roles, roles.c.id == role_users.c.role_id) \
                .where(role_users.c.user_id.in_(ids))
            via_team = sa.select(members.c.user_id, roles.c.name,
                                 sa.literal_column("1").label("via")) \
                .join(role_teams, role_teams.c.team_id == members.c.team_id) \
                .join(roles, roles.c.id == role_teams.c.role_id) \
                .where(members.c.user_id.in_(ids))
            both = sa.union(direct, via_team).subquery()
            seen: set[tuple[str, str]] = set()
            for user_id, name, via in conn.execute(
                    sa.select(both.c.user_id, both.c.name, both.c.via)
                    .order_by(both.c.via, both.c.name)):
                if (user_id, name) not in seen:  # direct wins over the same role via a team
                    seen.add((user_id, name))
                    role_names[user_id].append((name, bool(via)))
            default = conn.execute(sa.select(roles.c.name)
                                   .where(roles.c.builtin == "default")).scalar()
            for user_id, held in role_names.items():
                if not held and default:
                    held.append((default, None))
    for row in rows:
        row["teams"], row["roles"] = team_names[row["id"]], role_names[row["id"]]
    return rows, total or 0


def get_user(site, user_id: str) -> dict:
    """One user's row for the screens (no password hash, no lockout counters)."""
    users = _t(site, "crbm_users")
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(*_user_columns(users))
                           .where(users.c.id == str(user_id))).mappings().first()
    if row is None:
        raise NotFoundError(f"no user with id {user_id}")
    return dict(row)


def user_choices(site) -> list[dict]:
    """Every user (id, username, display_name, active), by user name: for checkbox lists."""
    users = _t(site, "crbm_users")
    with site.engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            sa.select(users.c.id, users.c.username, users.c.display_name, users.c.active)
            .order_by(sa.func.lower(users.c.username), users.c.id)).mappings()]


def update_user_profile(site, user_id: str, *, display_name: str | None, email: str | None,
                        is_admin: bool, can_assign_access: bool,
                        reports_to_id: str | None = None,
                        department: str | None = None) -> None:
    """What an administrator edits on a user's page. Being an administrator changes what
    the access rules admit, so this bumps the access epoch like every change here. A
    manager (``reports_to_id``) making a loop is refused (reports_to.py), nothing saved."""
    users = _t(site, "crbm_users")
    with site.engine.begin() as conn:
        row = _exists(conn, users, user_id, "user")
        reports_to.check_reports_to(conn, users, user_id, reports_to_id)
        conn.execute(users.update().where(users.c.id == str(user_id)).values(
            display_name=display_name or row.username, email=email or None,
            is_admin=bool(is_admin), can_assign_access=bool(can_assign_access),
            reports_to_id=str(reports_to_id) if reports_to_id else None,
            department=(department or "").strip()[:100] or None, modified_at=now()))
        bump_epoch(conn, site.tables)


def set_team_roles(site, team_id: str, role_ids: Iterable[str]) -> None:
    """Make exactly these the roles given to the team."""
    role_ids = set(map(str, role_ids))
    _check_ids(site, "crbm_teams", [team_id], "team")
    _check_ids(site, "crbm_roles", role_ids, "role")
    current = set(team_roles(site, team_id))
    _set_pairs(site, "crbm_role_teams", ("team_id", str(team_id)), "role_id",
               role_ids - current, current - role_ids)
