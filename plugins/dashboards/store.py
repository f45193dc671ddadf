"""Users' dashboards: tabs, each an ordered list of dashlets with their sizes and options.

One row per dashboard in ``dashboards_tabs`` (the plugin's own table, ``crbm_tables``):
its user, its place among their tabs, its name and its dashlets as JSON —
``[{"id": "3f2a…", "type": "opportunities.pipeline_by_stage", "width": 2, "options": {}}]``
— so drawing a tab is one read and rearranging it one write. ``role_id`` set: an
administrator published this dashboard as the default of that role (one per role).

A user who has no dashboard of their own sees a *starting* one, not stored: a copy of the
default their role's administrator published (the first of their roles that has one),
else the standard one built from the dashlet types flagged ``default``. It becomes
theirs, stored, at their first change (``own``): a GET writes nothing, and a published
default reaches every user who has not changed theirs yet.

The site setting ``dashboards`` (``{"max_dashlets": 12}``, Admin → Dashboards) caps the
dashlets of one dashboard; adding past it is refused with the number.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa

from core.kernel.database import ID
from core.kernel.errors import N_, Message, ValidationError
from core.kernel.i18n import label
from core.kernel.records import now
from plugins.dashboards.dashlets import WIDTHS, Registry

TABLE = "dashboards_tabs"
SETTING = "dashboards"
MAX_DASHLETS, MAX_LIMIT, MAX_TABS = 12, 50, 20
STARTING = "new"  # the id of a user's starting dashboard, until it is stored
NAME_SIZE = 60


def tables(metadata) -> None:
    sa.Table(TABLE, metadata,
             sa.Column("id", ID, primary_key=True),
             sa.Column("user_id", ID, nullable=False, index=True),
             sa.Column("position", sa.Integer, nullable=False, default=0),
             sa.Column("name", sa.String(100), nullable=False),
             sa.Column("dashlets", sa.Text, nullable=False),
             sa.Column("role_id", ID, nullable=True, index=True),
             sa.Column("modified_at", sa.DateTime(timezone=True), nullable=True))


@dataclass
class Dashboard:
    id: str
    name: str
    dashlets: list[dict] = field(default_factory=list)
    role_id: str | None = None
    stored: bool = True


def max_dashlets(site) -> int:
    stored = site.settings.get(SETTING)
    value = stored.get("max_dashlets") if isinstance(stored, dict) else None
    return value if isinstance(value, int) and 1 <= value <= MAX_LIMIT else MAX_DASHLETS


def clean_settings(form) -> tuple[dict, dict[str, Message]]:
    text = str(form.get("max_dashlets") or "").strip()
    number = int(text) if text.isdigit() else None
    if number is None or not 1 <= number <= MAX_LIMIT:
        return {"max_dashlets": text}, {"max_dashlets": Message(N_(
            "%(value)s is not a whole number from 1 to %(high)s"), value=repr(text),
            high=MAX_LIMIT)}
    return {"max_dashlets": number}, {}


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def _table(site) -> sa.Table:
    return site.tables.tables[TABLE]


def _of(row) -> Dashboard:
    try:
        dashlets = json.loads(row.dashlets or "[]")
    except ValueError:
        dashlets = []
    return Dashboard(row.id, row.name, [d for d in dashlets if isinstance(d, dict)],
                     row.role_id)


def dashboards(site, user) -> list[Dashboard]:
    """The user's dashboards in tab order; their starting one when they have none (one
    statement, two when a role default is looked for)."""
    table = _table(site)
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(table).where(table.c.user_id == user.id)
                            .order_by(table.c.position, table.c.id)).all()
        if rows:
            return [_of(r) for r in rows]
        return [starting(site, user, conn)]


def starting(site, user, conn) -> Dashboard:
    roles = sorted(r.id for r in site.access.grants(user).roles)
    table = _table(site)
    if roles:
        row = conn.execute(sa.select(table).where(table.c.role_id.in_(roles))
                           .order_by(table.c.role_id).limit(1)).first()
        if row is not None:
            copied = _of(row)
            return Dashboard(STARTING, copied.name, copied.dashlets, None, stored=False)
    return standard(site)


def standard(site) -> Dashboard:
    types = Registry.of(site).standard()
    return Dashboard(STARTING, label(N_("My dashboard")),
                     [{"id": t.name.replace(".", "-"), "type": t.name, "width": t.width,
                       "options": {}} for t in types], None, stored=False)


def own(site, user, dashboard_id: str, conn) -> str:
    """The stored id of ``dashboard_id`` for ``user``: their starting dashboard is stored
    first (with its dashlets' ids, so a posted dashlet id still names its dashlet)."""
    if dashboard_id != STARTING:
        return dashboard_id
    table = _table(site)
    found = conn.execute(sa.select(table.c.id).where(table.c.user_id == user.id)
                         .order_by(table.c.position, table.c.id).limit(1)).scalar()
    if found:
        return found
    start = starting(site, user, conn)
    new = str(uuid.uuid4())
    conn.execute(sa.insert(table).values(id=new, user_id=user.id, position=0,
                                         name=start.name, dashlets=json.dumps(start.dashlets),
                                         modified_at=now()))
    return new


def _load(conn, site, user, dashboard_id: str) -> Dashboard:
    table = _table(site)
    row = conn.execute(sa.select(table).where(table.c.id == dashboard_id,
                                              table.c.user_id == user.id)
                       .with_for_update()).first()
    if row is None:
        raise ValidationError({"dashboard": Message(N_("you have no such dashboard"))})
    return _of(row)


def _save(conn, site, dashboard: Dashboard) -> None:
    table = _table(site)
    conn.execute(sa.update(table).where(table.c.id == dashboard.id).values(
        name=dashboard.name, dashlets=json.dumps(dashboard.dashlets), modified_at=now()))


def change(site, user, dashboard_id: str, edit) -> str:
    """Apply ``edit(dashboard)`` to the user's dashboard in one transaction (storing their
    starting one first); its stored id."""
    with site.engine.begin() as conn:
        stored = own(site, user, dashboard_id, conn)
        dashboard = _load(conn, site, user, stored)
        edit(dashboard)
        _save(conn, site, dashboard)
    return stored


def add_dashlet(site, user, dashboard_id: str, type_name: str, option: str | None = None) -> str:
    types = Registry.of(site).types
    kind = types.get(type_name)
    if kind is None:
        raise ValidationError({"type": Message(N_("there is no dashlet %(name)s"),
                                               name=repr(type_name))})
    options = {}
    if kind.choices is not None:
        allowed = dict(kind.choices(site, user))
        if option not in allowed:
            raise ValidationError({"option": Message(N_("choose one of the offered values"))})
        options = {"value": option}
    most = max_dashlets(site)

    def edit(d: Dashboard) -> None:
        if len(d.dashlets) >= most:
            raise ValidationError({"dashlets": Message(N_(
                "a dashboard holds at most %(max)s dashlets (the administrator's limit): "
                "remove one first"), max=most)})
        d.dashlets.append({"id": new_id(), "type": type_name, "width": kind.width,
                           "options": options})
    return change(site, user, dashboard_id, edit)


def _index(d: Dashboard, dashlet_id: str) -> int:
    for i, item in enumerate(d.dashlets):
        if item.get("id") == dashlet_id:
            return i
    raise ValidationError({"dashlet": Message(N_("this dashboard has no such dashlet"))})


def remove_dashlet(site, user, dashboard_id: str, dashlet_id: str) -> str:
    return change(site, user, dashboard_id, lambda d: d.dashlets.pop(_index(d, dashlet_id)))


def resize_dashlet(site, user, dashboard_id: str, dashlet_id: str, width) -> str:
    try:
        width = int(width)
    except (TypeError, ValueError):
        width = 0
    if width not in WIDTHS:
        raise ValidationError({"width": Message(N_("a width is 1, 2 or 3 columns"))})

    def edit(d: Dashboard) -> None:
        d.dashlets[_index(d, dashlet_id)]["width"] = width
    return change(site, user, dashboard_id, edit)


def move_dashlet(site, user, dashboard_id: str, dashlet_id: str, step: int) -> str:
    def edit(d: Dashboard) -> None:
        i = _index(d, dashlet_id)
        j = max(0, min(len(d.dashlets) - 1, i + step))
        d.dashlets.insert(j, d.dashlets.pop(i))
    return change(site, user, dashboard_id, edit)


def reorder(site, user, dashboard_id: str, ids: list[str]) -> str:
    """The dashlets in the order of ``ids``, each named once; dashlets the page did not
    show (their plugin is disabled: they come back with it) keep their place after them."""
    def edit(d: Dashboard) -> None:
        by_id = {item.get("id"): item for item in d.dashlets}
        if not ids or not set(ids) <= set(by_id) or len(set(ids)) != len(ids):
            raise ValidationError({"order": Message(N_(
                "the order must name each dashlet of the dashboard once; reload the page"))})
        d.dashlets[:] = [by_id[i] for i in ids] + [x for x in d.dashlets if x.get("id") not in ids]
    return change(site, user, dashboard_id, edit)


def _name(text) -> str:
    name = str(text or "").strip()
    if not name:
        raise ValidationError({"name": Message(N_("is required"))})
    if len(name) > NAME_SIZE:
        raise ValidationError({"name": Message(N_("at most %(n)s characters"), n=NAME_SIZE)})
    return name


def rename(site, user, dashboard_id: str, name) -> str:
    name = _name(name)

    def edit(d: Dashboard) -> None:
        d.name = name
    return change(site, user, dashboard_id, edit)


def add_tab(site, user, name) -> str:
    name = _name(name)
    table = _table(site)
    with site.engine.begin() as conn:
        own(site, user, STARTING, conn)  # the starting tab stays the first
        count, last = conn.execute(sa.select(sa.func.count(), sa.func.max(table.c.position))
                                   .where(table.c.user_id == user.id)).one()
        if count >= MAX_TABS:
            raise ValidationError({"name": Message(N_("you have %(max)s dashboards already: "
                                                      "delete one first"), max=MAX_TABS)})
        new = str(uuid.uuid4())
        conn.execute(sa.insert(table).values(id=new, user_id=user.id,
                                             position=(last or 0) + 1, name=name,
                                             dashlets="[]", modified_at=now()))
    return new


def delete_tab(site, user, dashboard_id: str) -> None:
    """Delete one of the user's dashboards; their last one cannot go (the home page shows
    one)."""
    table = _table(site)
    with site.engine.begin() as conn:
        stored = own(site, user, dashboard_id, conn)
        count = conn.execute(sa.select(sa.func.count()).where(
            table.c.user_id == user.id)).scalar()
        if count <= 1:
            raise ValidationError({"dashboard": Message(N_(
                "this is your only dashboard: it cannot be deleted"))})
        done = conn.execute(sa.delete(table).where(table.c.id == stored,
                                                   table.c.user_id == user.id)).rowcount
        if not done:
            raise ValidationError({"dashboard": Message(N_("you have no such dashboard"))})


def roles(site) -> list[tuple[str, str]]:
    t = site.tables.tables["crbm_roles"]
    with site.engine.connect() as conn:
        return [(r.id, r.name) for r in conn.execute(sa.select(t.c.id, t.c.name)
                                                     .order_by(t.c.name))]


def publish(site, user, dashboard_id: str, role_id: str | None) -> str:
    """Make the admin's dashboard the default of ``role_id`` (None: of no role any more);
    the role's previous default stops being one."""
    if not user.is_admin:
        raise ValidationError({"role": Message(N_(
            "only administrators publish default dashboards"))})
    if role_id and role_id not in dict(roles(site)):
        raise ValidationError({"role": Message(N_("there is no such role"))})
    table = _table(site)
    with site.engine.begin() as conn:
        stored = own(site, user, dashboard_id, conn)
        if role_id:
            conn.execute(sa.update(table).where(table.c.role_id == role_id)
                         .values(role_id=None))
        conn.execute(sa.update(table).where(table.c.id == stored, table.c.user_id == user.id)
                     .values(role_id=role_id or None))
    return stored


def published(site) -> list[dict]:
    """Every published default: role, dashboard and whose it is."""
    table, users = _table(site), site.tables.tables["crbm_users"]
    role_names = dict(roles(site))
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.id, table.c.name, table.c.role_id,
                                      users.c.display_name, users.c.username)
                            .join(users, users.c.id == table.c.user_id)
                            .where(table.c.role_id.is_not(None))).all()
    return sorted(({"role": role_names.get(r.role_id, r.role_id), "name": r.name,
                    "owner": r.display_name or r.username} for r in rows),
                  key=lambda r: r["role"].lower())
