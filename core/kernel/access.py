"""Who may do what to which records (implementation guide 7.3), compiled to SQL.

The model, all of it data that administrators edit:

- **Users** belong to any number of **teams**; **roles** are given to users and to teams.
  A user's roles are their own plus their teams'; a user left with none has the
  **Default Role**.
- A role says, per module, its **access** (enabled / limited / disabled) and, per
  **action** (view, list, edit, ...), a **level**: none, admin, owner, role, team or all.
- **Records** belong to any number of teams, and one record can be **denied** to a user or
  a team whatever their roles say.
- **Additive rights** on: a user gets what *any* of their roles grants (the union);
  off: only what *every* role grants (the intersection).
- Administrators see everything except modules flagged ``hr``; there they are subject
  to roles like everyone else. A ``private`` module's records are their owner's alone,
  admins' too (roles narrow that, never widen it); ``private: [fields]``: until one is set.

``AccessControl.predicate(user, module, action, table)`` is the one enforcement point:
it turns (user, module, action) into a SQL boolean over the module's table, which the
record service adds to every statement. Nothing is ever filtered in Python.

What each level admits, for a user *u* and a record *r* (the record's *owner* is its
assigned user, or its creator where the module has no assigned user):

    all    every record          team   r is in one of u's teams, or u owns r
    owner  u owns r              role   r's owner has the role (or u owns r)
    admin  nothing (u is not an administrator)                none   nothing

An action also needs its prerequisites (edit needs view, export needs list, ...): a
record admitted for edit must be admitted for view by the same role. Limited access
forces report, import, export, edit and delete to admin.

Grants (a user's teams, roles, rules) are loaded with a few small queries and cached per
user; every change to teams, roles, rules, denies or settings bumps one counter in the
database (``crbm_access_epoch``), so every worker sees a change on its next request.
"""
from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa

from core.kernel.errors import N_, Message, ValidationError
from core.kernel.registry import ModuleDef

ACTIONS = ("view", "list", "edit", "delete", "export", "import", "report", "approve", "personal")
LEVELS = ("none", "admin", "owner", "role", "team", "all")  # narrowest first
ACCESS_MODES = ("enabled", "limited", "disabled")
PREREQUISITE = {"list": "view", "edit": "view", "delete": "view", "personal": "view",
                "export": "list", "report": "list", "approve": "edit"}
LIMITED_TO_ADMIN = ("report", "import", "export", "edit", "delete")
IMPORT_LEVELS = ("none", "all")

SETTINGS_KEY = "access_control"
DEFAULT_SETTINGS = {
    "additive": True,  # broadest of all roles (on) or narrowest (off)
    "inherit_created_by": True,  # a new record gets its creator's teams
    "inherit_assigned": False,  # ... and its assigned user's
    "inherit_related": False,  # ... and those of the record it belongs to (module feature)
}


@dataclass(frozen=True)
class Rule:
    """One role's rights in one module."""

    access: str = "enabled"
    levels: Mapping[str, str] = field(default_factory=lambda: {
        **{a: "all" for a in ACTIONS}, "personal": "none"})

    def level(self, action: str) -> str:
        return self.levels.get(action, "none")


DEFAULT_RULE = Rule()  # what a role holds for a module it says nothing about
# The Data Privacy Manager may also erase personal data (guide 7.3.3, "Personal")
PRIVACY_RULE = Rule(levels={a: "all" for a in ACTIONS})


def check_rule(access: str, levels: Mapping[str, str]) -> Rule:
    """A rule as the guide allows it, or ValidationError naming each bad cell.

    Limited access forces report/import/export/edit/delete to admin; an action whose
    prerequisite is none is none too.
    """
    errors = {}
    if access not in ACCESS_MODES:
        errors["access"] = Message(N_("%(value)s is not an access setting"), value=repr(access))
    clean = {}
    for action in ACTIONS:
        level = levels.get(action, DEFAULT_RULE.level(action))
        if level not in LEVELS:
            errors[action] = Message(N_("%(value)s is not a level"), value=repr(level))
        elif action == "import" and level not in IMPORT_LEVELS and access != "limited":
            errors[action] = Message(N_("Import can only be All or None"))  # limited: see below
        clean[action] = level
    unknown = set(levels) - set(ACTIONS)
    for action in sorted(unknown):
        errors[action] = Message(N_("no such action"))
    if errors:
        raise ValidationError(errors)
    if access == "limited":
        for action in LIMITED_TO_ADMIN:
            clean[action] = "admin" if clean[action] != "none" else "none"
    for action in ACTIONS:  # ACTIONS lists each prerequisite before what needs it
        needed = PREREQUISITE.get(action)
        # (an admin-only prerequisite is left to evaluation: for an administrator in an
        # hr module "admin" admits everything, so it must not raise or lower the action)
        if needed and clean[needed] == "none":
            clean[action] = "none"
    return Rule(access, clean)


# -- what a user holds ---------------------------------------------------------------------

@dataclass(frozen=True)
class RoleGrant:
    id: str
    rules: Mapping[str, Rule]  # module name -> rule (absent: DEFAULT_RULE)
    members: frozenset  # ids of the users holding this role (for the "role" level)
    fallback: Rule = DEFAULT_RULE  # for modules the role has no rule for

    def rule(self, module: str) -> Rule:
        return self.rules.get(module, self.fallback)


@dataclass(frozen=True)
class Grants:
    user_id: str
    is_admin: bool
    teams: tuple  # team ids
    roles: tuple  # RoleGrant
    additive: bool
    denied_modules: frozenset  # modules where some record is denied to the user or a team
    # predicates built from these grants, by (module, action, table, scan): SQLAlchemy
    # clauses are immutable and reusable, and building one costs more than the query
    compiled: dict = field(default_factory=dict, compare=False, repr=False)


# A term of a role's clause: ("all",), ("owner",), ("team",), ("role", members) or ("none",)
ALL, NONE = ("all",), ("none",)


def _terms(grants: Grants, role: RoleGrant, module: ModuleDef, action: str) -> frozenset:
    """The conjunction of level terms one role sets for an action (with prerequisites)."""
    rule = role.rule(module.name)
    if rule.access == "disabled":
        return frozenset([NONE])
    terms = set()
    while action:
        level = rule.level(action)
        if level == "admin":
            level = "all" if grants.is_admin else "none"  # only reached for hr modules
        if level == "role":
            terms.add(("role", role.members))
        elif level != "all":
            terms.add((level,))
        action = PREREQUISITE.get(action)
    if private := module.definition.get("private"):  # true, or the fields that share a record
        terms.add(("private", tuple(private) if isinstance(private, list) else ()))
    return frozenset([NONE]) if NONE in terms else frozenset(terms)


def _bypass(user, module: ModuleDef) -> bool:  # administrators pass, but in hr and private
    return user.is_admin and not (module.definition.get("hr") or module.definition.get("private"))


def _dnf(grants: Grants, module: ModuleDef, action: str) -> list[frozenset]:
    """The user's right as OR of ANDs of terms; [] admits nothing, [frozenset()] all."""
    if module.definition.get("access_level") == "fixed":
        return []  # an administrators' module: no role opens it (admins bypass all this)
    per_role = [_terms(grants, role, module, action) for role in grants.roles]
    if grants.additive:
        alive = {t for t in per_role if NONE not in t}
        return [frozenset()] if frozenset() in alive else sorted(alive, key=repr)
    merged = frozenset().union(*per_role) if per_role else frozenset([NONE])
    return [] if NONE in merged else [merged]


class AccessControl:
    """Compiles grants to SQL; loads and caches each user's grants."""

    def __init__(self, engine: sa.Engine, tables: sa.MetaData, settings):
        self.engine, self.tables = engine, tables
        self._settings = settings  # () -> the site's settings dict
        self._cache: dict[str, tuple[int, Grants]] = {}
        self._lock = threading.Lock()

    # -- the enforcement point -------------------------------------------------------------

    def predicate(self, user, module: ModuleDef, action: str, table: sa.Table, scan: bool = False):
        """SQL that is true for the records of ``module`` the user may ``action``.

        Shapes of the same truth, for the database's planner: by default team membership
        is ``id IN (records of my teams)``, to gather the visible records first (sparse
        rights); with ``scan`` a correlated ``EXISTS``, checked row by row while an index is
        read in sort order (a list the user sees much of); ``"parts"``: disjoint clauses
        that a capped count adds up (UNION ALL), each reading its own index (the owner's,
        the team links) until the cap, where one OR fetches every row first."""
        if not self.restricts(user, module, action):
            return [sa.true()] if scan == "parts" else sa.true()
        grants = self.grants(user)
        key = (module.name, action, table, scan)
        if key not in grants.compiled:
            grants.compiled[key] = self._compile(grants, module, action, table, scan)
        return grants.compiled[key]

    def _compile(self, grants: Grants, module: ModuleDef, action: str, table: sa.Table, scan):
        ways = {}  # the ways in (key -> SQL): a one-term disjunct's alternatives, or an AND
        for c in _dnf(grants, module, action):  # (of no term: every record)
            alts = [self._term_sql(t, grants, module, table, scan) for t in sorted(c)]
            ways.update(alts[0] if len(alts) == 1 else {c: sa.and_(*(
                sa.or_(*alt.values()) for alt in alts)) if alts else sa.true()})
        unless, denies = sa.true(), self.tables.tables["crbm_record_denies"]
        if module.name in grants.denied_modules:
            unless = table.c.id.not_in(sa.select(denies.c.record_id).where(
                denies.c.module == module.name, sa.or_(denies.c.user_id == grants.user_id,
                                                       denies.c.team_id.in_(grants.teams))))
        ways = list(ways.values())
        if scan != "parts":
            return sa.and_(sa.or_(*ways), unless) if ways else sa.false()
        return [sa.and_(way, unless, *(sa.not_(sa.func.coalesce(w, sa.false())) for w in
                                       ways[:i])) for i, way in enumerate(ways)] or [sa.false()]

    def restricts(self, user, module: ModuleDef, action: str) -> bool:
        """Whether the user's predicate is anything but "every record"."""
        if _bypass(user, module):
            return False
        grants = self.grants(user)
        return _dnf(grants, module, action) != [frozenset()] or module.name in grants.denied_modules

    def _term_sql(self, term: tuple, grants: Grants, module: ModuleDef, table: sa.Table,
                  scan) -> dict:
        """A term's alternatives (key -> SQL), any of which admits a record."""
        owner = table.c[owner_field(module)]
        ways = {"mine": owner == grants.user_id}
        if term[0] == "role":
            ways[term] = owner.in_(sorted(term[1]))
        elif term[0] == "private":  # shared once a field is set (one a plugin took: never)
            ways.update({f: table.c[f].is_not(None) for f in term[1] if f in table.c})
        elif term[0] == "team" and module.features.get("team_owned") and grants.teams:
            links = self.tables.tables["crbm_record_teams"]
            mine = sa.and_(links.c.module == module.name, links.c.team_id.in_(grants.teams))
            ways["teams"] = sa.exists().where(mine, links.c.record_id == table.c.id) \
                if scan is True else table.c.id.in_(sa.select(links.c.record_id).where(mine))
        return ways

    def can(self, user, module: ModuleDef, action: str) -> bool:
        """Whether the user may ``action`` some record of the module (buttons, menus)."""
        return _bypass(user, module) or bool(_dnf(self.grants(user), module, action))

    def mode(self, user, module: ModuleDef) -> str:
        """The module's access for the user: enabled, limited or disabled."""
        if _bypass(user, module):
            return "enabled"
        if module.definition.get("access_level") == "fixed":
            return "disabled"
        grants = self.grants(user)
        modes = [ACCESS_MODES.index(r.rule(module.name).access) for r in grants.roles]
        return ACCESS_MODES[min(modes) if grants.additive else max(modes)]

    # -- loading grants --------------------------------------------------------------------

    def epoch(self) -> int:
        table = self.tables.tables["crbm_access_epoch"]
        with self.engine.connect() as conn:
            return conn.execute(sa.select(table.c.epoch).where(table.c.id == 1)).scalar() or 0

    def grants(self, user) -> Grants:
        epoch = getattr(user, "access_epoch", None)
        epoch = self.epoch() if epoch is None else epoch
        cached = self._cache.get(user.id)
        if cached and cached[0] == epoch:
            return cached[1]
        grants = self._load(user)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[user.id] = (epoch, grants)
        return grants

    def _load(self, user) -> Grants:
        members, roles_users, roles_teams, roles, rules, denies = (self.tables.tables[n] for n in (
            "crbm_team_members", "crbm_role_users", "crbm_role_teams", "crbm_roles",
            "crbm_role_rules", "crbm_record_denies"))
        with self.engine.connect() as conn:
            teams = tuple(sorted(conn.execute(
                sa.select(members.c.team_id).where(members.c.user_id == user.id)).scalars()))
            role_ids = set(conn.execute(
                sa.select(roles_users.c.role_id).where(roles_users.c.user_id == user.id)
                .union(sa.select(roles_teams.c.role_id).where(roles_teams.c.team_id.in_(teams))))
                .scalars())
            if not role_ids:
                role_ids = set(conn.execute(sa.select(roles.c.id)
                                            .where(roles.c.builtin == "default")).scalars())
            builtin = dict(conn.execute(sa.select(roles.c.id, roles.c.builtin)
                                        .where(roles.c.id.in_(role_ids))).all())
            by_role: dict[str, dict[str, Rule]] = {r: {} for r in role_ids}
            for row in conn.execute(sa.select(rules).where(rules.c.role_id.in_(role_ids))):
                by_role[row.role_id][row.module] = Rule(
                    row.access, {a: getattr(row, a) for a in ACTIONS})
            needs_members = {r for r, rs in by_role.items()
                             if any("role" in rule.levels.values() for rule in rs.values())}
            holders = role_holders(conn, self.tables, needs_members)
            denied = frozenset(conn.execute(sa.select(denies.c.module).distinct().where(
                sa.or_(denies.c.user_id == user.id, denies.c.team_id.in_(teams)))).scalars())
        grants = tuple(RoleGrant(r, by_role[r], frozenset(holders.get(r, ())),
                                 PRIVACY_RULE if builtin.get(r) == "dpm" else DEFAULT_RULE)
                       for r in sorted(role_ids))
        additive = bool(settings_of(self._settings())["additive"])
        return Grants(user.id, bool(user.is_admin), teams, grants, additive, denied)


def owner_field(module: ModuleDef) -> str:
    """The field naming a record's owner: its assigned user, else its creator."""
    return "assigned_user_id" if "assigned_user_id" in module.fields else "created_by"


def role_holders(conn, tables: sa.MetaData, role_ids: Iterable[str]) -> dict[str, set[str]]:
    """role id -> ids of the users who hold it: directly, through a team, or (the Default
    Role) by holding no role at all."""
    role_ids = set(role_ids)
    if not role_ids:
        return {}
    t = tables.tables
    users, members = t["crbm_users"], t["crbm_team_members"]
    roles_users, roles_teams, roles = t["crbm_role_users"], t["crbm_role_teams"], t["crbm_roles"]
    out: dict[str, set[str]] = {r: set() for r in role_ids}
    direct = sa.select(roles_users.c.role_id, roles_users.c.user_id)
    via_team = sa.select(roles_teams.c.role_id, members.c.user_id) \
        .join(members, members.c.team_id == roles_teams.c.team_id)
    holding = set()
    for role_id, user_id in conn.execute(direct.union(via_team)):
        holding.add(user_id)
        if role_id in out:
            out[role_id].add(user_id)
    default = conn.execute(sa.select(roles.c.id).where(roles.c.builtin == "default")).scalar()
    if default in out:
        out[default] |= set(conn.execute(sa.select(users.c.id)).scalars()) - holding
    return out


def settings_of(site_settings: Mapping) -> dict:
    return {**DEFAULT_SETTINGS, **(site_settings.get(SETTINGS_KEY) or {})}


# -- record teams --------------------------------------------------------------------------

def record_teams(conn, tables: sa.MetaData, module: str, record_ids: Iterable[str]
                 ) -> dict[str, list[str]]:
    """record id -> its team ids (one query)."""
    links = tables.tables["crbm_record_teams"]
    out, ids = {}, list(record_ids)  # record id -> its team ids
    for start in range(0, len(ids), 500):
        for row in conn.execute(sa.select(links.c.record_id, links.c.team_id).where(
                links.c.module == module, links.c.record_id.in_(ids[start:start + 500]))):
            out.setdefault(row.record_id, []).append(row.team_id)
    return out


def add_record_teams(conn, tables: sa.MetaData, module: str, record_ids: Iterable[str],
                     team_ids: Iterable[str]) -> None:
    """Put records in teams (set-based; pairs already there are left alone)."""
    links = tables.tables["crbm_record_teams"]
    record_ids, team_ids = list(dict.fromkeys(record_ids)), list(dict.fromkeys(team_ids))
    if not record_ids or not team_ids:
        return
    have = set()
    for start in range(0, len(record_ids), 500):
        have |= {(r.record_id, r.team_id) for r in conn.execute(
            sa.select(links.c.record_id, links.c.team_id).where(
                links.c.module == module, links.c.record_id.in_(record_ids[start:start + 500]),
                links.c.team_id.in_(team_ids)))}
    rows = [{"module": module, "record_id": r, "team_id": t}
            for r in record_ids for t in team_ids if (r, t) not in have]
    if rows:
        conn.execute(links.insert(), rows)


def remove_record_teams(conn, tables: sa.MetaData, module: str, record_ids: Iterable[str],
                        team_ids: Iterable[str]) -> None:
    links = tables.tables["crbm_record_teams"]
    record_ids, team_ids = list(record_ids), list(team_ids)
    for start in range(0, len(record_ids), 500):
        conn.execute(links.delete().where(links.c.module == module,
                                          links.c.record_id.in_(record_ids[start:start + 500]),
                                          links.c.team_id.in_(team_ids)))


def inherited_teams(conn, tables: sa.MetaData, registry, module: ModuleDef, records: list[dict],
                    creator_id: str, settings: Mapping) -> dict[str, set[str]]:
    """record id -> the teams a new record inherits under the inheritance rules.

    Non-inheritable teams are never inherited. The "related" rule follows the field the
    module names in ``features.inherit_teams_from`` (e.g. a contact's account; a dynamic
    parent — an activity's "Related to" — to the record of whichever module it names).
    """
    t = tables.tables
    members, teams = t["crbm_team_members"], t["crbm_teams"]
    settings = {**DEFAULT_SETTINGS, **settings}
    wanted_users = set()
    if settings["inherit_created_by"]:
        wanted_users.add(creator_id)
    if settings["inherit_assigned"]:
        wanted_users |= {r.get("assigned_user_id") for r in records} - {None}
    user_teams: dict[str, set[str]] = {}
    if wanted_users:
        for row in conn.execute(sa.select(members.c.user_id, members.c.team_id)
                                .join(teams, teams.c.id == members.c.team_id)
                                .where(members.c.user_id.in_(wanted_users),
                                       teams.c.non_inheritable.is_(False))):
            user_teams.setdefault(row.user_id, set()).add(row.team_id)
    parent_teams: dict[tuple, set[str]] = {}
    source = module.features.get("inherit_teams_from")
    spec = module.fields[source].spec if source else {}

    def parent(r: Mapping) -> tuple:  # (module, id) of the record a new one inherits from
        return spec.get("module") or r.get(spec.get("type_field", "")), r.get(source)
    if settings["inherit_related"] and source:
        parents = {parent(r) for r in records if all(parent(r))}
        if parents:
            links = t["crbm_record_teams"]
            for row in conn.execute(sa.select(links.c.module, links.c.record_id, links.c.team_id)
                                    .join(teams, teams.c.id == links.c.team_id)
                                    .where(sa.tuple_(links.c.module, links.c.record_id)
                                           .in_(sorted(parents)),
                                           teams.c.non_inheritable.is_(False))):
                parent_teams.setdefault((row.module, row.record_id), set()).add(row.team_id)
    out = {}
    for record in records:
        found = set()
        if settings["inherit_created_by"]:
            found |= user_teams.get(creator_id, set())
        if settings["inherit_assigned"]:
            found |= user_teams.get(record.get("assigned_user_id"), set())
        if source and settings["inherit_related"]:
            found |= parent_teams.get(parent(record), set())
        out[record["id"]] = found
    return out
