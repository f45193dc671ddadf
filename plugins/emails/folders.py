"""Email folders: each user's own (Inbox, Sent, Drafts, Trash and the ones they add) and the
group folders every user may read (implementation guide §7.4.3-7.4.4: Group Inbox, Customer
Support, Campaign Responses, and the ones administrators add).

Contract:

- A folder is a row of ``emails_folders``: ``owner_user_id`` (None for a group folder),
  ``kind`` (``inbox``, ``sent``, ``drafts``, ``trash``, ``custom`` for a user's own;
  ``group`` for a group folder), ``name`` (the standard folders' English name, translated
  when shown — ``label``), ``position``.
- An email is in one folder: its ``folder_id`` (modules/emails.yaml). Which folder a reader
  may open is decided here, in SQL: their own and the group folders (``visible``); an id
  of anyone else's folder is the same as no folder (``find`` returns None).
- The standard folders are made when first needed (``ensure_personal``, ``ensure_group``),
  idempotently: a unique key (owner, kind, name) makes two workers creating them at once
  end with one set.
"""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from core.kernel.database import ID
from core.kernel.errors import N_
from core.kernel.fields import UTCDateTime

TABLE = "emails_folders"
PERSONAL = (("inbox", N_("Inbox")), ("sent", N_("Sent")), ("drafts", N_("Drafts")),
            ("trash", N_("Trash")))
GROUP = (N_("Group Inbox"), N_("Customer Support"), N_("Campaign Responses"))
STANDARD_KINDS = {kind for kind, _ in PERSONAL}


@dataclass(frozen=True)
class Folder:
    id: str
    owner_user_id: str | None
    kind: str
    name: str
    position: int

    @property
    def is_group(self) -> bool:
        return self.owner_user_id is None

    def label(self, gettext) -> str:
        """The name to show: a standard folder's in the reader's language."""
        standard = self.kind in STANDARD_KINDS or (self.is_group and self.name in GROUP)
        return gettext(self.name) if standard else self.name


def tables(metadata) -> None:
    sa.Table(TABLE, metadata,
             sa.Column("id", ID, primary_key=True),
             sa.Column("owner_user_id", ID),  # None: a group folder
             sa.Column("kind", sa.String(20), nullable=False),
             sa.Column("name", sa.String(100), nullable=False),
             sa.Column("position", sa.Integer, nullable=False, default=0),
             sa.Column("created_at", UTCDateTime(), nullable=False),
             sa.UniqueConstraint("owner_user_id", "kind", "name", name="uq_emails_folders"))


def _table(site) -> sa.Table:
    return site.tables.tables[TABLE]


def _of(row) -> Folder:
    return Folder(row.id, row.owner_user_id, row.kind, row.name, row.position)


def _insert_missing(conn, table, wanted: list[dict]) -> None:
    """Insert the rows not there yet; one made meanwhile by another worker is kept."""
    for values in wanted:
        exists = conn.execute(sa.select(table.c.id).where(
            table.c.owner_user_id.is_(None) if values["owner_user_id"] is None
            else table.c.owner_user_id == values["owner_user_id"],
            table.c.kind == values["kind"], table.c.name == values["name"])).first()
        if exists is None:
            try:
                with conn.begin_nested():
                    conn.execute(table.insert().values(
                        id=str(uuid.uuid4()), created_at=dt.datetime.now(dt.UTC), **values))
            except sa.exc.IntegrityError:
                pass  # made by another worker: theirs is the one


def ensure_personal(site, conn, user_id: str) -> dict[str, str]:
    """{kind: folder id} of the user's standard folders, made if missing."""
    table = _table(site)
    _insert_missing(conn, table, [{"owner_user_id": user_id, "kind": kind, "name": name,
                                   "position": i} for i, (kind, name) in enumerate(PERSONAL)])
    rows = conn.execute(sa.select(table.c.kind, table.c.id).where(
        table.c.owner_user_id == user_id, table.c.kind.in_(STANDARD_KINDS))).all()
    return {r.kind: r.id for r in rows}


def ensure_group(site, conn) -> dict[str, str]:
    """{name: folder id} of the standard group folders, made if missing."""
    table = _table(site)
    _insert_missing(conn, table, [{"owner_user_id": None, "kind": "group", "name": name,
                                   "position": i} for i, name in enumerate(GROUP)])
    rows = conn.execute(sa.select(table.c.name, table.c.id).where(
        table.c.owner_user_id.is_(None), table.c.name.in_(GROUP))).all()
    return {r.name: r.id for r in rows}


def visible(site, user) -> list[Folder]:
    """The reader's folders then the group folders, each in order; the standard ones are
    made on the way."""
    table = _table(site)
    with site.engine.begin() as conn:
        ensure_personal(site, conn, user.id)
        ensure_group(site, conn)
        rows = conn.execute(sa.select(table).where(sa.or_(
            table.c.owner_user_id == user.id, table.c.owner_user_id.is_(None)))
            .order_by(table.c.owner_user_id.is_(None), table.c.position, table.c.name)).all()
    return [_of(r) for r in rows]


def find(site, user, folder_id: str | None) -> Folder | None:
    """The folder if the reader may open it (their own or a group folder), else None."""
    if not folder_id:
        return None
    table = _table(site)
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.id == str(folder_id), sa.or_(
            table.c.owner_user_id == user.id, table.c.owner_user_id.is_(None)))).first()
    return _of(row) if row else None


def create(site, user, name: str, *, group: bool = False) -> Folder:
    """A folder of the user's own, or (``group``, administrators) a group folder.
    Raises ValueError for an empty or taken name."""
    name = " ".join(str(name or "").split())[:100]
    if not name:
        raise ValueError("a folder needs a name")
    owner = None if group else user.id
    table = _table(site)
    with site.engine.begin() as conn:
        ensure_group(site, conn) if group else ensure_personal(site, conn, user.id)  # first
        taken = conn.execute(sa.select(table.c.id).where(
            table.c.owner_user_id.is_(None) if owner is None else table.c.owner_user_id == owner,
            sa.func.lower(table.c.name) == name.lower())).first()
        if taken:
            raise ValueError(f"there is already a folder called {name!r}")
        position = conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.position), 0))
                                .where(table.c.owner_user_id.is_(None) if owner is None
                                       else table.c.owner_user_id == owner)).scalar() + 1
        folder = Folder(str(uuid.uuid4()), owner, "group" if group else "custom", name,
                        position)
        conn.execute(table.insert().values(id=folder.id, owner_user_id=owner, kind=folder.kind,
                                           name=name, position=position,
                                           created_at=dt.datetime.now(dt.UTC)))
    return folder
