"""Smart lists: a module's list page saved under a name, shared, and its KPIs.

A smart list (implementation guide §7.5.4, "Smart List Tab Sharing") is a list page's
parameters — quick search ``q``, the ``f_<field>`` filters, ``sort``, ``size`` — with its
columns (ordered) and up to three KPIs, owned by a user and shared with chosen users,
teams or everyone. The list page shows a tab for "All" and one for every smart list its
reader may see (their own and those shared with them, one of their teams or everyone);
``?list=<id>`` opens one. A user's own default columns and KPIs for a module's plain list
live in the same table, as a row without a name (``tables.py``).

What the list page reads (``state``): one statement — every visible smart list of the
module with the reader's default row — and, when the list has KPIs, one more (``kpis``):
the list's own statement (``RecordService.select``: the reader's access predicate, the
deleted rows left out, the filters and search; no paging) with its columns replaced by the
aggregates, so a KPI never counts a record its reader could not find in the list — the
board's totals do the same (core/apps/board/board.py). Sums and averages of a currency
field are grouped by the rows' currency code: amounts in different currencies are never
added up ("$1,000.00 + €200.00").

What was saved is checked again against the registry as it is now whenever it is applied
(``applied``): a field the Studio removed since is dropped from the columns, filters, sort
and KPIs with a notice, never a server error. What is saved is checked as it comes in
(``check_*``): every problem at once, naming where ("KPI 2: Name is not a number field").
"""
from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa

from core.apps.smart_lists.tables import LISTS, SHARES
from core.kernel.errors import N_, CrbmError, Message, NotFoundError
from core.kernel.records import Query
from core.kernel.registry import ModuleDef

MAX_NAME = 80  # characters of a tab's name (the column's size)
MAX_KPIS = 3  # seed 004: "a maximum of three KPI points"
MAX_COLUMNS = 12  # a list page's columns, as the layout's are capped (views._list_columns)
PAGE_SIZES = (10, 20, 50, 100)  # the list page's (views.PAGE_SIZES)
PARAM_KEYS = ("q", "sort", "size")  # besides the f_<field> filters
FUNCTIONS = {"count": N_("Count"), "sum": N_("Sum"), "avg": N_("Average")}
NUMBER_KINDS = ("decimal", "integer", "number")  # what a sum or an average takes
HIDDEN = ("deleted", "version")  # stored, but no column anyone chooses
SHARE_KINDS = ("user", "team", "everyone")
_DEFAULTS = uuid.UUID("6f1f5c1e-3b9a-4b8e-9d1c-5a7e2c0d9b41")  # uuid5 namespace of default rows
MONEY = sa.Numeric(38, 6)


class SmartListError(CrbmError):
    """Input refused: ``problems`` are every reason at once, each naming its place."""

    def __init__(self, problems: list[Message]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


@dataclass(frozen=True)
class Kpi:
    fn: str  # count, sum, avg
    field: str | None = None  # count: None counts the records, a field its filled values

    def as_json(self) -> dict:
        return {"fn": self.fn, "field": self.field}


@dataclass
class SmartList:
    id: str
    module: str
    owner_id: str
    name: str | None  # None: the owner's default columns and KPIs of the plain list
    params: dict
    columns: list[str]
    kpis: list[Kpi]
    shares: list[tuple[str, str | None]] = field(default_factory=list)  # (kind, target id)

    @classmethod
    def of(cls, row) -> SmartList:
        kpis = [Kpi(k.get("fn", ""), k.get("field")) for k in _loads(row.kpis, [])
                if isinstance(k, dict)]
        return cls(row.id, row.module, row.owner_id, row.name, _loads(row.params, {}),
                   [str(c) for c in _loads(row.columns, [])], kpis)


def _loads(text, default):
    try:
        value = json.loads(text or "null")
    except ValueError:
        return default
    return value if isinstance(value, type(default)) else default


def default_id(user_id: str, module: str) -> str:
    """The id of a user's default row for a module: one per pair, kept by the primary key."""
    return str(uuid.uuid5(_DEFAULTS, f"{user_id}\n{module}"))


def _t(site, name: str) -> sa.Table:
    return site.tables.tables[name]


# -- what may be chosen --------------------------------------------------------------------

def choosable_columns(module: ModuleDef) -> list[tuple[str, str]]:
    """(name, label) of every column a list may show: its stored and computed fields, a
    composite (an address) by its group name, a currency with its code; none of the
    bookkeeping ones (deleted, version)."""
    out, seen = [], set()
    for f in module.fields.values():
        name = f.group or f.name
        if name in seen or name in HIDDEN:
            continue
        parts = module.expand(name)
        if not any(p.stored or p.type.derived for p in parts):
            continue
        seen.add(name)
        if name in module.fields:
            label = module.fields[name].label
        else:  # a composite known only by its parts ("Billing address: city"...)
            from core.kernel import i18n
            label = i18n.label(parts[0].spec.get("label_of") or name)
        out.append((name, label))
    return out


def kpi_fields(module: ModuleDef, fn: str) -> list[tuple[str, str]]:
    """(name, label) of the fields a KPI ``fn`` takes: a sum or an average a number or
    currency field, a count any stored field (its records with a value)."""
    out = []
    for f in module.fields.values():
        if not f.stored or f.name in HIDDEN or f.name == "id":
            continue
        if fn in ("sum", "avg") and (f.system or f.type.value_kind(f.spec) not in NUMBER_KINDS
                                     or f.type.name == "currency_code"):
            continue
        out.append((f.name, f.label))
    return out


def chooser_rows(module: ModuleDef, chosen: list[str]) -> list[tuple[str, str, bool]]:
    """The column chooser's rows: (name, label, chosen), the chosen first in their order."""
    labels = dict(choosable_columns(module))
    return [(n, labels[n], True) for n in dict.fromkeys(chosen) if n in labels] + \
        [(n, label, False) for n, label in labels.items() if n not in chosen]


def pickers(module: ModuleDef) -> dict:
    """The column chooser's and the KPI selects' options for ``module`` (the list page's
    and the edit page's): KPIs as "fn:field" values grouped by function."""
    return {"column_choices": choosable_columns(module),
            "kpi_choices": [(fn, label, [(f"{fn}:{n}", lbl) for n, lbl in kpi_fields(module, fn)])
                            for fn, label in FUNCTIONS.items()],
            "max_kpis": MAX_KPIS}


def _currency_code(module: ModuleDef, name: str) -> str | None:
    """A currency field's code sub-field (``<name>_currency``), if it has one."""
    code = f"{name}_currency"
    return code if code in module.fields and module.fields[code].group == name else None


# -- checking what comes in ----------------------------------------------------------------

def check_name(name) -> tuple[str, list[Message]]:
    name = " ".join(str(name or "").split())
    if not name:
        return name, [Message(N_("Name: a smart list needs a name."))]
    if len(name) > MAX_NAME:
        return name, [Message(N_("Name: at most %(max)s characters (this one has %(n)s)."),
                              max=MAX_NAME, n=len(name))]
    return name, []


def check_columns(module: ModuleDef, names: Iterable[str]) -> tuple[list[str], list[Message]]:
    chosen = list(dict.fromkeys(str(n) for n in names if str(n)))
    known = dict(choosable_columns(module))
    problems = [Message(N_("Columns: %(module)s has no field %(field)s."),
                        module=module.label, field=repr(n)) for n in chosen if n not in known]
    if len(chosen) > MAX_COLUMNS:
        problems.append(Message(N_("Columns: at most %(max)s (%(n)s chosen)."),
                                max=MAX_COLUMNS, n=len(chosen)))
    return chosen, problems


def check_kpis(module: ModuleDef, kpis: Iterable[Mapping]) -> tuple[list[Kpi], list[Message]]:
    """KPIs as a form or an API gives them ({"fn", "field"}; one without a function is no
    KPI): each checked against the module, every problem named with the KPI's number."""
    out, problems = [], []
    given = [k for k in kpis if str(k.get("fn") or "").strip()]
    if len(given) > MAX_KPIS:
        problems.append(Message(N_("KPIs: at most %(max)s (%(n)s given)."), max=MAX_KPIS,
                                n=len(given)))
    for number, k in enumerate(given[:MAX_KPIS + 1], 1):
        fn, name = str(k.get("fn")).strip(), str(k.get("field") or "").strip() or None
        if fn not in FUNCTIONS:
            problems.append(Message(N_("KPI %(n)s: %(fn)s is not sum, average or count."),
                                    n=number, fn=repr(fn)))
            continue
        if name is None:
            if fn != "count":
                problems.append(Message(N_("KPI %(n)s: choose the field to sum.") if fn == "sum"
                                        else N_("KPI %(n)s: choose the field to average."),
                                        n=number))
                continue
        elif name not in module.fields or not module.fields[name].stored:
            problems.append(Message(N_("KPI %(n)s: %(module)s has no field %(field)s."),
                                    n=number, module=module.label, field=repr(name)))
            continue
        elif name not in dict(kpi_fields(module, fn)):
            problems.append(Message(
                N_("KPI %(n)s: %(field)s is not a number or currency field; a sum or an "
                   "average needs one."), n=number, field=module.fields[name].label))
            continue
        out.append(Kpi(fn, name))
    return out, problems


def check_params(module: ModuleDef, params: Mapping) -> dict:
    """The list parameters worth keeping: search, sort, size and the filters the module's
    list offers, without the empty ones."""
    filters = {f"f_{f.name}" for n in module.layouts.get("filters", []) for f in module.expand(n)}
    out = {}
    for key, value in params.items():
        value = str(value).strip()
        if value and (key in PARAM_KEYS or key in filters):
            out[key] = value[:500]
    return out


def check_shares(site, mode: str, users: Iterable[str], teams: Iterable[str]
                 ) -> tuple[list[tuple[str, str | None]], list[Message]]:
    """The shares a form chose: nobody, everyone, or these users and teams (which must
    exist: one query each)."""
    if mode == "everyone":
        return [("everyone", None)], []
    if mode != "chosen":
        return [], []
    users, teams = set(map(str, users)) - {""}, set(map(str, teams)) - {""}
    problems = []
    with site.engine.connect() as conn:
        for kind, ids, table in (("user", users, "crbm_users"), ("team", teams, "crbm_teams")):
            if not ids:
                continue
            t = _t(site, table)
            found = set(conn.execute(sa.select(t.c.id).where(t.c.id.in_(ids))).scalars())
            if ids - found:
                problems.append(Message(N_("Share with: no such user (%(ids)s).") if kind == "user"
                                        else N_("Share with: no such team (%(ids)s)."),
                                        ids=", ".join(sorted(ids - found))))
    if not users and not teams:
        problems.append(Message(N_("Share with: choose the users or teams to share it with.")))
    return [("user", u) for u in sorted(users)] + [("team", t) for t in sorted(teams)], problems


# -- reading -------------------------------------------------------------------------------

def _visible_select(site, user, module: str):
    lists, shares = _t(site, LISTS), _t(site, SHARES)
    members = _t(site, "crbm_team_members")
    shared = sa.select(shares.c.list_id).where(sa.or_(
        shares.c.kind == "everyone",
        sa.and_(shares.c.kind == "user", shares.c.target_id == user.id),
        sa.and_(shares.c.kind == "team", shares.c.target_id.in_(
            sa.select(members.c.team_id).where(members.c.user_id == user.id)))))
    return sa.select(lists).where(lists.c.module == module, sa.or_(
        lists.c.owner_id == user.id, sa.and_(lists.c.name.is_not(None), lists.c.id.in_(shared))))


def visible(site, user, module: str) -> tuple[list[SmartList], SmartList | None]:
    """The module's smart lists ``user`` may see (their own, those shared with them, one of
    their teams or everyone), by name, and their default row: one statement."""
    with site.engine.connect() as conn:
        rows = conn.execute(_visible_select(site, user, module)).all()
    tabs, default = [], None
    for row in rows:
        if row.name is None:
            if row.owner_id == user.id:
                default = SmartList.of(row)
        else:
            tabs.append(SmartList.of(row))
    tabs.sort(key=lambda s: (s.name.casefold(), s.id))
    return tabs, default


def get(site, user, module: str, list_id: str, tabs: list[SmartList] | None = None) -> SmartList:
    """A smart list ``user`` may see (an administrator: any), else NotFoundError — the same
    answer for one that does not exist and one they may not see."""
    found = next((s for s in tabs or () if s.id == list_id), None)
    if found is None:
        lists = _t(site, LISTS)
        select = sa.select(lists).where(lists.c.id == list_id, lists.c.module == module,
                                        lists.c.name.is_not(None)) if user.is_admin \
            else _visible_select(site, user, module).where(lists.c.id == list_id,
                                                            lists.c.name.is_not(None))
        with site.engine.connect() as conn:
            row = conn.execute(select).first()
        if row is None:
            raise NotFoundError(Message(N_("There is no such smart list, or you may not see it.")))
        found = SmartList.of(row)
    return found


def with_shares(site, smart: SmartList) -> SmartList:
    shares = _t(site, SHARES)
    with site.engine.connect() as conn:
        smart.shares = [(r.kind, r.target_id) for r in conn.execute(
            sa.select(shares.c.kind, shares.c.target_id).where(shares.c.list_id == smart.id)
            .order_by(shares.c.id))]
    return smart


def may_change(user, smart: SmartList) -> bool:
    return smart.owner_id == user.id or bool(user.is_admin)


# -- writing -------------------------------------------------------------------------------

def _row(smart: SmartList) -> dict:
    return {"params": json.dumps(smart.params, sort_keys=True),
            "columns": json.dumps(smart.columns),
            "kpis": json.dumps([k.as_json() for k in smart.kpis])}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_shares(conn, site, list_id: str, shares_: list[tuple[str, str | None]]) -> None:
    shares = _t(site, SHARES)
    conn.execute(shares.delete().where(shares.c.list_id == list_id))
    if shares_:
        conn.execute(shares.insert(), [{"list_id": list_id, "kind": k, "target_id": t}
                                       for k, t in shares_])


def create(site, user, module: ModuleDef, name, params: Mapping, columns: Iterable[str],
           kpis: Iterable[Mapping], share_mode: str = "", share_users=(), share_teams=()
           ) -> SmartList:
    """A new smart list of ``user``'s (SmartListError naming every problem)."""
    name, problems = check_name(name)
    columns, more = check_columns(module, columns)
    kpis_, even_more = check_kpis(module, kpis)
    shares_, last = check_shares(site, share_mode, share_users, share_teams)
    problems += more + even_more + last
    if problems:
        raise SmartListError(problems)
    smart = SmartList(str(uuid.uuid4()), module.name, user.id, name,
                      check_params(module, params), columns, kpis_, shares_)
    now = _now()
    with site.engine.begin() as conn:
        conn.execute(_t(site, LISTS).insert().values(
            id=smart.id, module=module.name, owner_id=user.id, name=name, created_at=now,
            modified_at=now, **_row(smart)))
        _write_shares(conn, site, smart.id, shares_)
    return smart


def update(site, user, module: ModuleDef, smart: SmartList, *, name=None, params=None,
           columns=None, kpis=None, shares: tuple[str, Iterable, Iterable] | None = None
           ) -> SmartList:
    """Change what is given of a smart list (its owner or an administrator only)."""
    if not may_change(user, smart):
        raise SmartListError([Message(N_("Only its owner or an administrator may change "
                                         "this smart list."))])
    problems = []
    if name is not None:
        smart.name, found = check_name(name)
        problems += found
    if columns is not None:
        smart.columns, found = check_columns(module, columns)
        problems += found
    if kpis is not None:
        smart.kpis, found = check_kpis(module, kpis)
        problems += found
    if params is not None:
        smart.params = check_params(module, params)
    if shares is not None:
        smart.shares, found = check_shares(site, *shares)
        problems += found
    if problems:
        raise SmartListError(problems)
    lists = _t(site, LISTS)
    with site.engine.begin() as conn:
        conn.execute(lists.update().where(lists.c.id == smart.id).values(
            name=smart.name, modified_at=_now(), **_row(smart)))
        if shares is not None:
            _write_shares(conn, site, smart.id, smart.shares)
    return smart


def delete(site, user, smart: SmartList) -> None:
    if not may_change(user, smart):
        raise SmartListError([Message(N_("Only its owner or an administrator may delete "
                                         "this smart list."))])
    lists, shares = _t(site, LISTS), _t(site, SHARES)
    with site.engine.begin() as conn:
        conn.execute(shares.delete().where(shares.c.list_id == smart.id))
        conn.execute(lists.delete().where(lists.c.id == smart.id))


def save_defaults(site, user, module: ModuleDef, *, columns=None, kpis=None,
                  current: SmartList | None = None) -> SmartList:
    """A user's own default columns and KPIs for the module's plain list (what is given)."""
    smart = current or SmartList(default_id(user.id, module.name), module.name, user.id,
                                 None, {}, [], [])
    problems = []
    if columns is not None:
        smart.columns, problems = check_columns(module, columns)
    if kpis is not None:
        smart.kpis, found = check_kpis(module, kpis)
        problems += found
    if problems:
        raise SmartListError(problems)
    lists, now = _t(site, LISTS), _now()
    values = {"modified_at": now, **_row(smart)}
    with site.engine.begin() as conn:
        if not conn.execute(lists.update().where(lists.c.id == smart.id).values(**values)) \
                .rowcount:
            conn.execute(lists.insert().values(id=smart.id, module=module.name,
                                               owner_id=user.id, name=None, created_at=now,
                                               **values))
    return smart


# -- applying one to a list page -----------------------------------------------------------

@dataclass
class State:
    """What a list page applies: the tabs, the one open, its parameters, columns, KPIs."""

    tabs: list[SmartList]
    current: SmartList | None
    default: SmartList | None
    params: dict  # the list's effective parameters: the smart list's, then the URL's
    columns: list[str] | None  # chosen columns (None: the layout's)
    kpis: list[Kpi]
    notices: list[Message]
    modified: bool = False  # the URL changed the smart list's parameters


def _is_param(key: str) -> bool:
    return key in PARAM_KEYS or key.startswith("f_")


def state(site, user, module: ModuleDef, url: Mapping) -> State:
    """The list page's smart list state for ``url``'s parameters (``list`` opens one: a
    list the reader may not see is NotFoundError). The URL's own list parameters apply over
    the smart list's (the filter form, a sort link), an empty one included."""
    tabs, default = visible(site, user, module.name)
    list_id = str(url.get("list", "")).strip()
    current = get(site, user, module.name, list_id, tabs) if list_id else None
    notices: list[Message] = []
    params = {k: str(v) for k, v in url.items() if _is_param(k)}
    modified = False
    if current is not None:
        saved, gone = applied_params(module, current.params)
        params = {**saved, **params}
        modified = {k: v for k, v in params.items() if v.strip()} != saved
        notices += gone
    owner = current if current is not None and current.columns else default
    columns = kpis = None
    if owner is not None and owner.columns:
        columns, gone = applied_columns(module, owner.columns)
        notices += gone
    kpi_owner = current if current is not None else default
    if kpi_owner is not None:
        kpis, gone = applied_kpis(module, kpi_owner.kpis)
        notices += gone
    return State(tabs, current, default, params, columns or None, kpis or [],
                 list(dict.fromkeys(notices)), modified)


_GONE = {  # what a smart list named that the module no longer has (a field the Studio removed)
    "filters": N_("This list filters or sorts on fields %(module)s no longer has (removed in "
                  "the Studio?); left out: %(fields)s."),
    "columns": N_("This list shows columns %(module)s no longer has (removed in the Studio?); "
                  "left out: %(fields)s."),
    "kpis": N_("This list's KPIs use fields %(module)s no longer has (removed in the "
               "Studio?); left out: %(fields)s."),
}


def _gone(module: ModuleDef, what: str, names: list[str]) -> list[Message]:
    if not names:
        return []
    return [Message(_GONE[what], module=module.label, fields=", ".join(sorted(set(names))))]


def applied_params(module: ModuleDef, saved: Mapping) -> tuple[dict, list[Message]]:
    """The saved parameters that still apply (filters and sort on fields that exist)."""
    out, gone = {}, []
    for key, value in saved.items():
        if key.startswith("f_") and key[2:] not in module.fields:
            gone.append(key[2:])
        elif key == "sort" and str(value).lstrip("-") not in module.fields:
            gone.append(str(value).lstrip("-"))
        elif _is_param(key) and str(value).strip():
            out[key] = str(value)
    return out, _gone(module, "filters", gone)


def applied_columns(module: ModuleDef, names: list[str]) -> tuple[list[str], list[Message]]:
    known = dict(choosable_columns(module))
    return [n for n in names if n in known], \
        _gone(module, "columns", [n for n in names if n not in known])


def applied_kpis(module: ModuleDef, kpis: list[Kpi]) -> tuple[list[Kpi], list[Message]]:
    ok, gone = [], []
    for k in kpis[:MAX_KPIS]:
        if k.fn not in FUNCTIONS or k.field is not None and (
                k.field not in module.fields or
                k.field not in dict(kpi_fields(module, k.fn))):
            gone.append(k.field or k.fn)
        else:
            ok.append(k)
    return ok, _gone(module, "kpis", gone)


def expanded(module: ModuleDef, names: list[str] | None) -> list[str]:
    """Chosen column names (or the layout's, for None) as the list's concrete fields."""
    names = module.list_columns() if names is None else names
    return [f.name for name in names for f in module.expand(name)
            if f.stored or f.type.derived][:MAX_COLUMNS]


# -- KPIs ----------------------------------------------------------------------------------

def kpi_select(site, module: ModuleDef, user, query: Query, kpis: list[Kpi]):
    """One statement: the list's own (access predicate, filters, search; no paging), its
    columns replaced by the KPIs' aggregates, grouped by the currency codes of the
    currency fields summed or averaged (no group when there are none)."""
    stmt, table = site.records.select(
        module, user, Query(query.filters, query.search, limit=None, fields=["id"]), "list")
    codes = list(dict.fromkeys(c for k in kpis if k.fn != "count" and k.field
                               for c in [_currency_code(module, k.field)] if c))
    aggregates = []
    for i, k in enumerate(kpis):
        column = table.c[k.field] if k.field else None
        if k.fn == "count":
            aggregates.append((sa.func.count(column) if column is not None
                               else sa.func.count()).label(f"k{i}"))
        else:
            aggregates.append(sa.cast(sa.func.sum(column), MONEY).label(f"k{i}"))
            aggregates.append(sa.func.count(column).label(f"n{i}"))
    stmt = stmt.order_by(None).with_only_columns(*(table.c[c] for c in codes), *aggregates)
    return (stmt.group_by(*(table.c[c] for c in codes)) if codes else stmt), codes


@dataclass
class Figure:
    label: str
    text: str  # formatted in the reader's locale


def kpis(site, module: ModuleDef, user, query: Query, chosen: list[Kpi], fmt) -> list[Figure]:
    """The KPIs of the list ``query`` makes, for ``user``, formatted with ``fmt``."""
    if not chosen:
        return []
    stmt, codes = kpi_select(site, module, user, query, chosen)
    with site.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    out = []
    for i, k in enumerate(chosen):
        f = module.fields.get(k.field) if k.field else None
        code_at = codes.index(_currency_code(module, k.field)) \
            if k.field and _currency_code(module, k.field) in codes else None
        if k.fn == "count":
            text = fmt.number(sum(int(r._mapping[f"k{i}"] or 0) for r in rows))
        else:
            sums: dict[str | None, list[Decimal]] = {}  # code -> [sum, count]
            for r in rows:
                code = r[code_at] if code_at is not None else None
                into = sums.setdefault(code, [Decimal(0), Decimal(0)])
                into[0] += Decimal(str(r._mapping[f"k{i}"] or 0))
                into[1] += int(r._mapping[f"n{i}"] or 0)
            text = _money(fmt, module, f, k.fn, sums, code_at is not None)
        out.append(Figure(label(module, k), text))
    return out


def _money(fmt, module: ModuleDef, f, fn: str, sums: dict, currency: bool) -> str:
    """A sum or an average as its field shows values: per currency when it has one."""
    def one(code, total: Decimal, count: Decimal) -> str:
        value = total if fn == "sum" else (total / count if count else None)
        if value is None:
            return "—"
        if currency:
            return fmt.currency(value, code or f.spec.get("currency") or
                                getattr(f.type, "default_code", None))
        if f.type.name == "percentage":
            return fmt.percent(round(value, 2))
        if fn == "avg" or f.type.value_kind(f.spec) != "integer":
            return fmt.number(value, 2 if fn == "avg" else f.spec.get("scale", 2))
        return fmt.number(value)
    filled = {c: v for c, v in sums.items() if v[1]}
    if not filled:
        return one(None, Decimal(0), Decimal(0)) if fn == "sum" else "—"
    joiner = " + " if fn == "sum" else " / "
    return joiner.join(one(c, *v) for c, v in sorted(filled.items(), key=lambda i: i[0] or ""))


def label(module: ModuleDef, k: Kpi) -> str:
    """"Sum of Amount", "Average of Probability", "Count" (of records), "Count of Email"."""
    from core.kernel import i18n
    if k.field is None:
        return i18n.label(N_("Number of records"))
    f = module.fields[k.field]
    templates = {"count": N_("Count of %(field)s"), "sum": N_("Sum of %(field)s"),
                 "avg": N_("Average of %(field)s")}
    return i18n.label(templates[k.fn]) % {"field": f.label}


def list_query(module: ModuleDef, params: Mapping) -> tuple[Query, dict]:
    """A list's ``Query`` from its URL (or form, or saved) parameters — the filters its
    layout offers, each as its type reads a filter box, the quick search and the sort — and
    the filter values to show. The list page, its board, its mass actions and a smart list
    on a dashboard all read their records through it."""
    filters, shown = [], {}
    for name in module.layouts.get("filters", []):
        for f in module.expand(name):
            value = str(params.get(f"f_{f.name}", "")).strip()
            if not value:
                continue
            shown[f.name] = value
            op, typed = f.type.list_filter(value)  # "eq" for codes, "starts" for words...
            filters.append((f.name, op, typed))
    sort = str(params.get("sort", "")) or None
    if sort and sort.lstrip("-") not in {f.name for f in module.stored_fields}:
        sort = None
    return Query(filters=filters, search=str(params.get("q", "")).strip() or None, sort=sort), shown
