"""What a detail page shows besides the record itself, in one statement.

A detail page used to run a statement per subpanel (rows for every related module, most of
them empty), one for the buttons' rights, one for the record's teams, one for the team
names, one for the access denies and one for the names in the change log: 19 in all for an
account. Here they are one ``UNION ALL`` of small selects, each answering
``(kind, key, n, label)`` rows:

- ``right``: for edit and delete, 1 if the user may do it to this record;
- ``count``: per subpanel, how many related records the user may list (capped at
  ``COUNT_CAP`` + 1: "1,000+"), with the same access predicate as the rows — a count never
  includes a record its reader may not see; and (``panel:activities``, ``panel:history``)
  the Activities and History panels' (core/apps/activities/panels.py ``count_selects``);
- ``team``: the teams (the record's own with n = 1; an administrator gets every team, the
  deny form's choices);
- ``deny``: an administrator's view of the record's denies (n = 1 for a user);
- ``user``: the names of whoever created the record or appears in its change log;
- ``open``: the panels of the module this user keeps open (``crbm_panel_state``, the
  activities app's table, where installed): the page renders them open, their rows fetched
  at once, and the user's choice follows them from browser to browser.

Subpanel rows are read only when a subpanel is opened (``subpanel_view``, a fragment that
crbm.js fetches; without JavaScript the same URL is a page of its own).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from core.kernel.records import Query, User
from core.kernel.registry import ModuleDef

COUNT_CAP = 1000
_TEXT = sa.String(255)


@dataclass
class Facts:
    rights: dict[str, bool] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    teams: list[str] = field(default_factory=list)  # the record's team names, sorted
    team_choices: list[tuple[str, str]] = field(default_factory=list)  # (id, name) by name
    denies: list[dict] = field(default_factory=list)
    user_names: dict[str, str] = field(default_factory=dict)
    open_panels: set[str] = field(default_factory=set)


def _row(kind: str, key, n, label=None) -> list:
    return [sa.cast(sa.literal(kind), _TEXT).label("kind"), sa.cast(key, _TEXT).label("key"),
            sa.cast(n, sa.Integer).label("n"),
            sa.cast(label if label is not None else sa.null(), _TEXT).label("label")]


def _facts_select(site, module: ModuleDef, user: User, panels: list[dict]) -> sa.CompoundSelect:
    tables, access = site.tables.tables, site.access
    table = site.records.table(module)
    record_id = sa.bindparam("record_id", type_=table.c.id.type)
    parts = []
    for action in ("edit", "delete"):
        allowed = sa.and_(table.c.id == record_id, table.c.deleted.is_(False),
                          access.predicate(user, module, action, table))
        parts.append(sa.select(*_row("right", sa.literal(action), sa.func.count()))
                     .select_from(table).where(allowed))
    for panel in panels:
        related = site.records.related_select(
            module.name, record_id, panel["name"], user,
            Query(fields=["id"], limit=COUNT_CAP + 1)).order_by(None)
        counted = sa.select(sa.func.count()).select_from(related.subquery()).scalar_subquery()
        parts.append(sa.select(*_row("count", sa.literal(panel["name"]), counted)))
    if module.features.get("team_owned"):
        teams, links = tables["crbm_teams"], tables["crbm_record_teams"]
        mine = sa.and_(links.c.team_id == teams.c.id, links.c.module == module.name,
                       links.c.record_id == record_id)
        member = sa.case((links.c.team_id.is_(None), 0), else_=1)
        stmt = sa.select(*_row("team", teams.c.id, member, teams.c.name)) \
            .select_from(teams.outerjoin(links, mine))
        parts.append(stmt if user.is_admin else stmt.where(links.c.team_id.is_not(None)))
    if user.is_admin:
        denies, users, teams = tables["crbm_record_denies"], tables["crbm_users"], \
            tables["crbm_teams"]
        name = sa.func.coalesce(users.c.display_name, users.c.username, teams.c.name)
        parts.append(sa.select(*_row("deny", denies.c.id,
                                     sa.case((denies.c.user_id.is_(None), 0), else_=1), name))
                     .select_from(denies.outerjoin(users, users.c.id == denies.c.user_id)
                                  .outerjoin(teams, teams.c.id == denies.c.team_id))
                     .where(denies.c.module == module.name, denies.c.record_id == record_id))
    if module.features.get("audited"):
        users, log = tables["crbm_users"], tables["crbm_change_log"]
        writers = sa.select(log.c.changed_by).where(log.c.module == module.name,
                                                    log.c.record_id == record_id)
        created_by = sa.bindparam("created_by", type_=users.c.id.type)
        parts.append(sa.select(*_row("user", users.c.id, sa.literal(0), sa.func.coalesce(
            users.c.display_name, users.c.username))).where(sa.or_(
                users.c.id == created_by, users.c.id.in_(writers))))
    if module.features.get("activities"):  # the Activities and History panels' counts
        from core.apps.activities.panels import count_selects
        for name, counted in count_selects(site, module, record_id, user).items():
            parts.append(sa.select(*_row("count", sa.literal(f"panel:{name}"), counted)))
    if "crbm_panel_state" in tables:
        state = tables["crbm_panel_state"]
        user_id = sa.bindparam("user_id", type_=state.c.user_id.type)
        parts.append(sa.select(*_row("open", state.c.panel, sa.literal(1)))
                     .where(state.c.user_id == user_id, state.c.module == module.name))
    return sa.union_all(*parts)


def facts(site, module: ModuleDef, record: dict, user: User, panels: list[dict]) -> Facts:
    """Rights, subpanel counts, teams, denies and log names of one record: one statement."""
    # Built once per user's grants, module and subpanels, the record's id and creator bound
    # at run time: building these selects (and SQLAlchemy's cache key of them) cost more
    # than running them. The grants' own cache holds it, so it goes when they do (a role,
    # team or registry change).
    cache = site.access.grants(user).compiled
    key = ("web.detail.facts", module.name, user.is_admin, tuple(p["name"] for p in panels))
    if key not in cache:
        cache[key] = _facts_select(site, module, user, panels)
    with site.engine.connect() as conn:
        rows = conn.execute(cache[key], {"record_id": str(record["id"]),
                                         "created_by": record.get("created_by"),
                                         "user_id": str(user.id)}).all()
    out = Facts(rights={"edit": False, "delete": False})
    for kind, key, n, label in rows:
        if kind == "right":
            out.rights[key] = bool(n)
        elif kind == "count":
            out.counts[key] = n
        elif kind == "team":
            out.team_choices.append((key, label))
            if n:
                out.teams.append(label or "")
        elif kind == "deny":
            out.denies.append({"id": int(key), "name": label, "user_id": n or None})
        elif kind == "user":
            out.user_names[key] = label
        elif kind == "open":
            out.open_panels.add(key)
    out.teams.sort()
    out.team_choices.sort(key=lambda t: t[1] or "")
    out.denies.sort(key=lambda d: d["id"])
    return out


def parent_labels(site, module: ModuleDef, record: dict, user: User) -> None:
    """Name the record a "Related to" link (a related field with ``modules``: the target's
    module is in its type field) points to, as ``<field>__label`` — the record service
    joins the names of plain links only. Read through the record service with the reader:
    a record they may not see is "(no access)"; one statement per such link that is set
    (a note's, a call's page: one)."""
    for f in module.fields.values():
        value = record.get(f.name)
        if f.type.name != "related" or "modules" not in f.spec or not value:
            continue
        target = record.get(f.spec.get("type_field"))
        other = site.registry.modules.get(target) if target in (f.spec["modules"] or ()) \
            else None
        if other is None or other.name_field is None or \
                site.access.mode(user, other) == "disabled":
            continue
        found = site.records.list(other.name, user, Query(
            filters=[("id", "eq", value)], fields=["id", other.name_field], limit=1), "view")
        record[f"{f.name}__label"] = str(found[0][other.name_field] or value) if found else None
