"""Two standard dashlets built on the core's own features (issue 25, point 2).

**Smart list**: its option is one of the smart lists the user may see (their own and those
shared with them: ``core.apps.smart_lists.lists``), in any module they may open. It
shows the list's first rows with the list's columns, its KPIs, and "Open the list", the
module's list page with that tab selected. It reads what the list page reads: the smart
list's state (``lists.state``: its saved search, filters, sort, columns and KPIs, a field
removed since left out), the list's ``Query`` made from those parameters as the list page
makes it, the rows through the record service (the reader's access predicate, deleted
rows left out: nothing is filtered here) and the KPIs through ``lists.kpis`` (the same
statement, aggregated). A smart list deleted or no longer shared with the reader says so
in its place.

**Quick create**: its option is a module the user may create records in. It shows the
module's quick-create form (``forms.quick_sections``: the Studio's quick-create layout,
else the required fields) drawn with the record forms' own inputs, and posts it with the
CSRF token to the module's create page (``/m/<module>/new``, ``_layout=quick``) with the
dashboard as ``return``: saving, validation, duplicates and the "created" notice are the
create page's, the one save path. A refused form comes back as that page's quick form with
the errors beside the fields and everything typed kept, saving from there returns to the
dashboard. Under the form, the user's latest records of the module link to the new one.
"""
from __future__ import annotations

import sqlalchemy as sa

from core.apps.smart_lists import lists as smart_lists
from core.kernel.errors import NotFoundError, ValidationError
from core.kernel.records import Query
from core.web import forms
from plugins.dashboards.dashlets import Cell, Drawn, QuickForm, Table, record_url

ROWS = 10  # a smart list's rows on a dashboard
LATEST = 3  # the user's latest records under a quick-create form
NUMBER_KINDS = ("decimal", "integer", "number")


def _open(site, user, module) -> bool:
    return module is not None and site.access.mode(user, module) != "disabled"


# -- a smart list --------------------------------------------------------------------------

def smart_list_choices(site, user) -> list[tuple[str, str]]:
    """("<module>:<id>", "Module: name") of every smart list the user may see in the
    modules they may open: one statement (the visible lists of each module, together)."""
    modules = {m.name: m for m in site.registry.modules.values() if _open(site, user, m)}
    if not modules:
        return []
    lists = site.tables.tables[smart_lists.LISTS]
    # (lists._visible_select: the list page's own sharing rule, module by module)
    union = sa.union_all(*(smart_lists._visible_select(site, user, name)
                           .where(lists.c.name.is_not(None))
                           .with_only_columns(lists.c.id, lists.c.module, lists.c.name)
                           for name in modules))
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(union.subquery())).all()
    found = [(f"{r.module}:{r.id}", f"{modules[r.module].label}: {r.name}") for r in rows]
    return sorted(found, key=lambda c: (c[1].casefold(), c[0]))


def smart_list(site, user, options, fmt) -> Drawn:
    module_name, _, list_id = str(options.get("value") or "").partition(":")
    module = site.registry.modules.get(module_name)
    gone = Drawn(error=fmt.gettext("This smart list was deleted, or it is no longer shared "
                                   "with you."))
    if not _open(site, user, module) or not list_id:
        return gone
    try:
        state = smart_lists.state(site, user, module, {"list": list_id})
    except NotFoundError:
        return gone
    title = fmt.gettext("Smart list: %(name)s") % {"name": state.current.name}
    more = (fmt.gettext("Open the list"), f"/m/{module.name}?list={list_id}")
    query, _ = smart_lists.list_query(module, state.params)
    try:
        figures = tuple((f.label, f.text) for f in smart_lists.kpis(
            site, module, user, query, state.kpis, fmt))
        read = smart_lists.expanded(module, state.columns)  # a currency's code with it
        query.fields, query.labels, query.limit = read, True, ROWS
        rows = site.records.list(module.name, user, query)
    except ValidationError as exc:  # a saved filter the module refuses now
        return Drawn(title=title, error=fmt.gettext("This smart list cannot be read: "
                                                    "%(reason)s") % {"reason": exc},
                     more=more)
    if not rows:
        return Drawn(title=title, empty=fmt.gettext("This smart list finds nothing."),
                     figures=figures or None, more=more)
    columns = [module.fields[n] for n in read if not module.fields[n].type.internal]
    return Drawn(title=title, table=_table(site, module, columns, rows, fmt),
                 figures=figures or None, more=more)


def _table(site, module, columns, rows, fmt) -> Table:
    """The rows as the list shows them: a link's name, a dropdown's label, the name field
    linked to its record."""
    labels = site.registry.option_labels(module.name)
    numeric = tuple(f.type.value_kind(f.spec) in NUMBER_KINDS for f in columns)
    out = []
    for record in rows:
        cells = []
        for f, num in zip(columns, numeric, strict=True):
            if f.type.is_link:
                text = record.get(f"{f.name}__label") or ""
            else:
                text = fmt.field(f, record.get(f.name), record, options=labels.get(f.name))
            url = record_url(module.name, record["id"]) if f.name == module.name_field else None
            cells.append(Cell(str(text), url, num=num))
        if module.name_field not in {f.name for f in columns}:  # every row opens its record
            cells[0] = Cell(cells[0].text or "—", record_url(module.name, record["id"]),
                            num=cells[0].num)
        out.append(tuple(cells))
    return Table(tuple(str(f.label) for f in columns), tuple(out), numeric)


# -- quick create --------------------------------------------------------------------------

def _quick_fields(module) -> tuple[str, ...]:
    """The inputs the create page reads from its quick form (views._form_fields)."""
    return tuple(f.name for f in forms.form_fields(module, forms.quick_sections(module))
                 if "computed_by" not in f.spec)


def _may_create(site, user, module) -> bool:
    return _open(site, user, module) and not module.definition.get("hidden") and \
        site.access.can(user, module, "edit") and bool(_quick_fields(module))


def quick_create_choices(site, user) -> list[tuple[str, str]]:
    found = [(m.name, str(m.label_singular)) for m in site.registry.modules.values()
             if _may_create(site, user, m)]
    return sorted(found, key=lambda c: c[1].casefold())


def quick_create(site, user, options, fmt) -> Drawn:
    module = site.registry.modules.get(str(options.get("value") or ""))
    if module is None or not _may_create(site, user, module):
        return Drawn(error=fmt.gettext("You may no longer create records of this kind."))
    fields = _quick_fields(module)
    initial = {name: module.fields[name].spec["default"] for name in fields
               if "default" in module.fields[name].spec}
    if "assigned_user_id" in fields:  # new records are yours unless you say (the create page)
        initial["assigned_user_id"] = user.id
    title = fmt.gettext("Create %(what)s") % {"what": module.label_singular}
    return Drawn(title=title, form=QuickForm(module.name, fields, initial),
                 table=_latest(site, user, module, fmt))


def _latest(site, user, module, fmt) -> Table | None:
    """The user's latest records of the module (the one just created first): one read."""
    if not module.name_field:
        return None
    rows = site.records.list(module.name, user, Query(
        filters=[("created_by", "eq", user.id)], sort="-created_at", limit=LATEST,
        fields=[module.name_field]))
    if not rows:
        return None
    return Table((fmt.gettext("Your latest"),), tuple(
        (Cell(str(r.get(module.name_field) or "—"), record_url(module.name, r["id"])),)
        for r in rows))
