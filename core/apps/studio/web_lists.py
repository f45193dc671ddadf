"""Studio: the Dropdowns Editor and the tab pages (implementation guide 7.5.3, 7.5.6-7.5.8).

Every page here is for administrators only (403 for anyone else, before anything is looked
up) and goes through the Studio service ``site.studio``, which checks, saves, records and
reloads; this module only turns forms into its calls and its refusals into messages.

- ``/admin/studio/dropdowns``: every list, modified ones marked, protected ones marked;
  creating a list, resetting every list.
- ``/admin/studio/dropdowns/{name}?language=xx``: one list's options (database value,
  display value in the chosen language, colour): add, remove, reorder, save, reset. What
  the page does not show (other languages' display values; a colour, when the form sends
  none) is kept as it was.
- ``/admin/studio/tabs``: tab groups and their modules, modules hidden for everyone.
- ``/admin/studio/tabs/rename?language=xx``: the name of each module's tab per language.

The pages work without JavaScript: the row and module buttons (up, down, add, remove) are
submit buttons the server applies to the form as sent, re-showing it unsaved; the script
(static/studio_lists.js) does the same in the page, and adds drag and drop.
"""
from __future__ import annotations

import re
from itertools import zip_longest

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Route

from core.apps.admin.web import _admin_only, _redirect, _render, _site
from core.apps.studio.studio import OPTION_COLORS, StudioError
from core.apps.studio.web import flash_change, problem_lines
from core.kernel import i18n
from core.kernel.errors import N_, Message
from core.web.pages import page
from core.web.templating import flash

FORBIDDEN_CHARS = '"<>&'
MAX_VALUE = 100  # metadata/schema/dropdowns.json
MAX_ROWS = 1000
LIST_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*_dom$")
GROUP_KEY_RE = re.compile(r"^[a-z0-9]{1,12}$")
MAX_LABEL = 100
BLANK_ROW = {"orig": "", "value": "", "label": "", "english": "", "color": ""}

NOT_FOUND = N_("There is no dropdown list called %(name)s.")
PROTECTED = N_("This list drives how CRBM works (stages, statuses and the like): it can only "
               "be changed together with the code that relies on it, in a plugin.")
ROW_CHARS = N_('Row %(row)s: the database value %(value)s may not contain " < > or &. '
               "Use them in the display value instead.")
ROW_EMPTY = N_("Row %(row)s: the database value is required.")
ROW_LONG = N_("Row %(row)s: the database value may have at most %(limit)s characters.")
ROW_TWICE = N_("Row %(row)s: the database value %(value)s is already used in row %(first)s.")
NO_ROWS = N_("A list needs at least one option.")
TOO_MANY = N_("A list may have at most %(limit)s options.")
BAD_NAME = N_("A list name starts with a lowercase letter, has only lowercase letters, "
              "digits and underscores, and ends in _dom (like vehicle_color_dom).")
NAME_TAKEN = N_("There is already a list called %(name)s.")
CONFIRM_RESET_ALL = N_("Tick the box to confirm that every list goes back to its default "
                       "options.")
GROUP_UNNAMED = N_("Give this group a name: it has modules.")
GROUP_TWICE = N_("Two groups are called %(name)s.")
GROUP_LONG = N_("A group name may have at most %(limit)s characters.")
TAB_LONG = N_("%(module)s: a tab name may have at most %(limit)s characters.")


# -- helpers --------------------------------------------------------------------------------

def _studio(request: Request):
    return _site(request).studio


def _languages(request: Request) -> list[tuple[str, str]]:
    return list(_studio(request).languages())


def _language(request: Request, form=None) -> str:
    """The language a page edits: ``?language=`` (or the form's), if the site has it."""
    wanted = str((form.get("language") if form is not None else None)
                 or request.query_params.get("language") or "en")
    return wanted if wanted in dict(_languages(request)) else "en"


# -- dropdown lists -------------------------------------------------------------------------

def _summaries(request: Request) -> dict:
    return {s.name: s for s in _studio(request).dropdowns()}


def _summary(request: Request, name: str):
    summary = _summaries(request).get(name)
    if summary is None:
        raise HTTPException(404, Message(NOT_FOUND, name=name))
    return summary


def _list_page(request: Request, status: int = 200, create_name: str = "",
               create_error=None, reset_error=None):
    summaries = sorted(_summaries(request).values(), key=lambda s: s.name)
    return _render(request, "studio_dropdowns.html", status=status, lists=summaries,
                   modified=sum(1 for s in summaries if s.modified),
                   create_name=create_name, create_error=create_error,
                   reset_error=reset_error)


@page()
def dropdown_list(request: Request, form):
    _admin_only(request)
    return _list_page(request)


@page()
def dropdown_reset_all(request: Request, form):
    user = _admin_only(request)
    if str(form.get("confirm", "")) not in ("1", "on", "true"):
        return _list_page(request, status=422, reset_error=Message(CONFIRM_RESET_ALL))
    try:
        change = _studio(request).reset_all_dropdowns(user)
    except StudioError as exc:
        return _list_page(request, status=422, reset_error="; ".join(problem_lines(exc)))
    flash_change(request, Message(N_("Every dropdown list has its default options again.")),
                  change)
    return _redirect("/admin/studio/dropdowns")


def _rows_of(options: list[dict], language: str) -> list[dict]:
    """The editor's rows for ``options`` (as ``dropdown()`` returns them)."""
    rows = []
    for option in options:
        labels = option.get("labels") or {}
        english = option.get("label", "")
        rows.append({"orig": option["value"], "value": option["value"], "english": english,
                     "label": english if language == "en" else labels.get(language, ""),
                     "color": option.get("color", "")})
    return rows


def _posted_rows(form, current: dict[str, dict]) -> list[dict]:
    """The rows as the form sent them, in order (``orig``: the database value the row had
    when the page was shown, empty for a new row). A form without colours (one made before
    they were, a script's) keeps each row's own."""
    rows = []
    colors = form.getlist("color") if "color" in form else None
    for orig, value, label, color in zip_longest(form.getlist("orig"), form.getlist("value"),
                                                 form.getlist("label"), colors or [],
                                                 fillvalue=""):
        orig, value, label = str(orig), str(value).strip(), " ".join(str(label).split())
        base = current.get(orig) if orig else None
        if colors is None:
            color = base.get("color", "") if base else ""
        rows.append({"orig": orig if base else "", "value": value, "label": label,
                     "english": base.get("label", "") if base else "", "color": str(color)})
    return rows[:MAX_ROWS + 1]


def _apply_op(rows: list[dict], op: str) -> list[dict]:
    """A row button pressed without JavaScript: "up:3", "down:3", "add:3", "remove:3"."""
    action, _, index = op.partition(":")
    try:
        i = int(index)
    except ValueError:
        return rows
    rows = list(rows)
    if not 0 <= i < len(rows):
        if action == "add":
            rows.append(dict(BLANK_ROW))
        return rows
    if action == "up" and i > 0:
        rows[i - 1], rows[i] = rows[i], rows[i - 1]
    elif action == "down" and i < len(rows) - 1:
        rows[i + 1], rows[i] = rows[i], rows[i + 1]
    elif action == "add":
        rows.insert(i + 1, dict(BLANK_ROW))
    elif action == "remove":
        rows.pop(i)
    return rows


def _check_rows(rows: list[dict]) -> tuple[list[dict], dict[int, Message], list]:
    """(the rows to save, problems by row index, problems of the whole list). A row left
    entirely blank (added, never filled) is dropped."""
    kept, row_errors, errors = [], {}, []
    seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        value, number = row["value"], index + 1
        if not value and not row["label"]:
            continue
        if not value:
            row_errors[index] = Message(ROW_EMPTY, row=number)
        elif any(c in value for c in FORBIDDEN_CHARS):
            row_errors[index] = Message(ROW_CHARS, row=number, value=repr(value))
        elif len(value) > MAX_VALUE:
            row_errors[index] = Message(ROW_LONG, row=number, limit=MAX_VALUE)
        elif value in seen:
            row_errors[index] = Message(ROW_TWICE, row=number, value=repr(value),
                                        first=seen[value] + 1)
        else:
            seen[value] = index
        kept.append(row)
    if not kept:
        errors.append(Message(NO_ROWS))
    elif len(kept) > MAX_ROWS:
        errors.append(Message(TOO_MANY, limit=MAX_ROWS))
    return kept, row_errors, errors


def _options(rows: list[dict], current: dict[str, dict], language: str) -> list[dict]:
    """The list to save: each row's option, keeping what this page did not show (the
    display values of the other languages)."""
    options = []
    for row in rows:
        base = current.get(row["orig"]) if row["orig"] else None
        labels = {k: v for k, v in ((base or {}).get("labels") or {}).items() if v}
        if language == "en":
            label = row["label"] or row["value"]
        else:
            label = base.get("label") if base and base.get("label") else row["value"]
            if row["label"]:
                labels[language] = row["label"]
            else:
                labels.pop(language, None)
        options.append({"value": row["value"], "label": label, "labels": labels,
                        "color": row.get("color", "")})
    return options


def _editor(request: Request, name: str, summary, language: str, rows=None, status=200,
            row_errors=None, errors=None, create=False):
    if rows is None:
        rows = _rows_of(_studio(request).dropdown(name), language) if not create else \
            [dict(BLANK_ROW)]
    return _render(request, "studio_dropdown.html", status=status, list_name=name, summary=summary,
                   language=language, languages=_languages(request), rows=rows,
                   language_name=dict(_languages(request)).get(language, language),
                   row_errors=row_errors or {}, errors=errors or [], create=create,
                   protected_reason=Message(PROTECTED), colors=OPTION_COLORS,
                   blank_row=BLANK_ROW)


def _save_rows(request: Request, form, name: str, summary, create: bool):
    user = request.state.user
    language = "en" if create else _language(request, form)
    current = {} if create else {o["value"]: o for o in _studio(request).dropdown(name)}
    rows = _posted_rows(form, current)
    op = str(form.get("op", ""))
    if op:  # a row button, without JavaScript: show the result, save nothing
        return _editor(request, name, summary, language, rows=_apply_op(rows, op),
                       create=create)
    kept, row_errors, errors = _check_rows(rows)
    if row_errors or errors:
        return _editor(request, name, summary, language, rows=rows, status=422,
                       row_errors=row_errors, errors=errors, create=create)
    try:
        change = _studio(request).save_dropdown(user, name, _options(kept, current, language),
                                                create=create)
    except StudioError as exc:
        return _editor(request, name, summary, language, rows=rows, status=422,
                       errors=problem_lines(exc), create=create)
    flash_change(request, Message(N_("The dropdown list %(name)s was saved."), name=name),
                  change)
    suffix = "" if language == "en" else f"?language={language}"
    return _redirect(f"/admin/studio/dropdowns/{name}{suffix}")


@page()
def dropdown_new(request: Request, form):
    """A new list: its name first (GET, from the list page), then its options (POST)."""
    _admin_only(request)
    source = form if form is not None else request.query_params
    name = str(source.get("name", "")).strip()
    problem = None
    if not LIST_NAME_RE.match(name) or len(name) > 60:
        problem = Message(BAD_NAME)
    elif name in _summaries(request):
        problem = Message(NAME_TAKEN, name=name)
    if problem is not None:
        return _list_page(request, status=422, create_name=name[:60], create_error=problem)
    if form is None:
        return _editor(request, name, None, "en", create=True)
    return _save_rows(request, form, name, None, create=True)


@page()
def dropdown_edit(request: Request, form):
    _admin_only(request)
    name = request.path_params["name"]
    summary = _summary(request, name)
    if form is None:
        return _editor(request, name, summary, _language(request))
    if summary.protected:  # refused before reading the form: nothing can change
        return _editor(request, name, summary, _language(request, form), status=403,
                       errors=[Message(PROTECTED)])
    return _save_rows(request, form, name, summary, create=False)


@page()
def dropdown_reset(request: Request, form):
    user = _admin_only(request)
    name = request.path_params["name"]
    summary = _summary(request, name)
    language = _language(request, form)
    if summary.protected:
        return _editor(request, name, summary, language, status=403,
                       errors=[Message(PROTECTED)])
    try:
        change = _studio(request).reset_dropdown(user, name)
    except StudioError as exc:
        return _editor(request, name, summary, language, status=422, errors=problem_lines(exc))
    flash_change(request, Message(N_("The dropdown list %(name)s has its default options "
                                      "again."), name=name), change)
    suffix = "" if language == "en" else f"?language={language}"
    return _redirect(f"/admin/studio/dropdowns/{name}{suffix}")


# -- tab groups -----------------------------------------------------------------------------

def _module_labels(request: Request) -> dict[str, str]:
    return {m.name: m.label for m in _studio(request).modules()}


def _stored_groups(request: Request, known: dict[str, str]):
    """[(key, label, [modules])] and the hidden modules, as stored. A module in no group
    (added since) goes to the end of a group of its own."""
    tabs = _studio(request).tabs()
    groups, placed = [], set()
    for index, (label, modules) in enumerate(tabs["groups"]):
        members = [m for m in modules if m in known and m not in placed]
        placed.update(members)
        groups.append((f"g{index}", label, members))
    rest = [m for m in known if m not in placed]
    if rest:
        groups.append((f"g{len(groups)}", "Other", rest))
    return groups, set(tabs.get("hidden") or ())


def _posted_groups(form, known: dict[str, str], stored, stored_hidden: set[str]):
    """The groups as the form sent them: keys in page order, each group's label, and the
    modules in page order, each in the group its select names. Modules the page did not
    show (added since) stay where they were, hidden or not."""
    keys: list[str] = []
    for key in map(str, form.getlist("groups")):
        if GROUP_KEY_RE.match(key) and key not in keys:
            keys.append(key)
    members: dict[str, list[str]] = {key: [] for key in keys}
    shown: set[str] = set()
    for name in map(str, form.getlist("modules")):
        key = str(form.get(f"group_{name}", ""))
        if name not in known or name in shown or not GROUP_KEY_RE.match(key):
            continue
        if key not in members:  # a group the select names but the page did not list
            keys.append(key)
            members[key] = []
        members[key].append(name)
        shown.add(name)
    labels = {key: label for key, label, _modules in stored}
    for key, _label, modules in stored:
        for name in modules:
            if name not in shown:
                if key not in members:
                    keys.append(key)
                    members[key] = []
                members[key].append(name)
    groups = [(key, " ".join(str(form.get(f"label_{key}", labels.get(key, ""))).split()),
               members[key]) for key in keys]
    hidden = {name for name in map(str, form.getlist("hidden")) if name in shown}
    hidden |= {name for name in stored_hidden if name not in shown}
    return groups, hidden


def _move(groups, op: str):
    """A module's up/down button, without JavaScript: "up:accounts", "down:accounts"."""
    action, _, name = op.partition(":")
    out = []
    for key, label, modules in groups:
        modules = list(modules)
        if name in modules:
            i = modules.index(name)
            j = i - 1 if action == "up" else i + 1 if action == "down" else i
            if 0 <= j < len(modules):
                modules[i], modules[j] = modules[j], modules[i]
        out.append((key, label, modules))
    return out


def _check_groups(groups) -> tuple[list, dict[str, Message]]:
    """(the groups to save: named, with modules; problems by group key)."""
    kept, errors, seen = [], {}, {}
    for key, label, modules in groups:
        if not modules:
            continue  # an empty group (or the blank "new group" box) is dropped
        if not label:
            errors[key] = Message(GROUP_UNNAMED)
        elif len(label) > MAX_LABEL:
            errors[key] = Message(GROUP_LONG, limit=MAX_LABEL)
        elif label.casefold() in seen:
            errors[key] = Message(GROUP_TWICE, name=label)
        else:
            seen[label.casefold()] = key
        kept.append((label, modules))
    return kept, errors


def _tabs_page(request: Request, known, groups, hidden, status=200, group_errors=None,
               errors=None):
    # a blank group (the "new group" box left empty) comes back as the one blank box
    groups = [g for g in groups if g[1] or g[2] or g[0] in (group_errors or {})]
    used = {key for key, _label, _modules in groups}
    new_key = next(key for key in ("new", *(f"new{i}" for i in range(1, len(groups) + 2)))
                   if key not in used)
    choices = [(key, label) for key, label, _modules in groups] + [(new_key, "")]
    return _render(request, "studio_tabs.html", status=status, groups=groups, known=known,
                   hidden=hidden, new_key=new_key, group_choices=choices,
                   group_errors=group_errors or {}, errors=errors or [])


@page()
def tabs(request: Request, form):
    user = _admin_only(request)
    known = _module_labels(request)
    stored, stored_hidden = _stored_groups(request, known)
    if form is None:
        return _tabs_page(request, known, stored, stored_hidden)
    groups, hidden = _posted_groups(form, known, stored, stored_hidden)
    op = str(form.get("op", ""))
    if op:  # an up/down button, without JavaScript: show the result, save nothing
        return _tabs_page(request, known, _move(groups, op), hidden)
    kept, group_errors = _check_groups(groups)
    if group_errors:
        return _tabs_page(request, known, groups, hidden, status=422,
                          group_errors=group_errors)
    try:
        change = _studio(request).save_tabs(user, kept, sorted(hidden))
    except StudioError as exc:
        return _tabs_page(request, known, groups, hidden, status=422, errors=problem_lines(exc))
    flash_change(request, Message(N_("The tab groups were saved.")), change)
    return _redirect("/admin/studio/tabs")


# -- renaming tabs --------------------------------------------------------------------------

def _rename_rows(request: Request, language: str) -> list[tuple[str, str, str]]:
    """[(module, the name it came with, its name now)] in ``language``, in tab order. A
    rename is kept per language in the module's metadata; the name it came with is the
    defined label through that language's catalog."""
    site = _site(request)
    catalog = i18n.translations(language, site.locale_dirs)
    tabs_now = _studio(request).tabs()
    rows = []
    for _group, modules in tabs_now["groups"]:
        for name in modules:
            module = site.registry.modules.get(name)
            if module is None:
                continue
            defined = module.definition["label"]  # a variable: not a message to extract
            original = catalog.gettext(defined)
            current = tabs_now["labels"].get(name, {}).get(language) or original
            rows.append((name, original, current))
    return rows


def _renames(rows, posted: dict[str, str], language: str) -> dict[str, str]:
    """What to ask of ``rename_tabs``: only the names that changed. An emptied name goes
    back to the one the module came with."""
    out = {}
    for name, original, current in rows:
        if name not in posted:
            continue
        text = posted[name]
        if language == "en":
            text = text or original
            if text != current:
                out[name] = text
        else:
            text = "" if text == original else text
            if (text or original) != current:
                out[name] = text
    return out


def _rename_page(request: Request, language: str, status=200, posted=None, errors=None):
    rows = _rename_rows(request, language)
    if posted:
        rows = [(name, original, posted.get(name, current)) for name, original, current in rows]
    return _render(request, "studio_tabs_rename.html", status=status, language=language,
                   languages=_languages(request), rows=rows,
                   language_name=dict(_languages(request)).get(language, language),
                   errors=errors or [])


@page()
def rename(request: Request, form):
    user = _admin_only(request)
    language = _language(request, form)
    if form is None:
        return _rename_page(request, language)
    rows = _rename_rows(request, language)
    posted = {name: " ".join(str(form.get(f"label_{name}")).split())
              for name, _original, _current in rows if form.get(f"label_{name}") is not None}
    errors = [Message(TAB_LONG, module=name, limit=MAX_LABEL)
              for name, label in posted.items() if len(label) > MAX_LABEL]
    if errors:
        return _rename_page(request, language, status=422, posted=posted, errors=errors)
    changes = _renames(rows, posted, language)
    if changes:
        try:
            change = _studio(request).rename_tabs(user, language, changes)
        except StudioError as exc:
            return _rename_page(request, language, status=422, posted=posted,
                                errors=problem_lines(exc))
        flash_change(request, Message(N_("The tab names were saved.")), change)
    else:
        flash(request, N_("No tab name was changed."))
    suffix = "" if language == "en" else f"?language={language}"
    return _redirect(f"/admin/studio/tabs/rename{suffix}")


routes = [
    Route("/admin/studio/dropdowns", dropdown_list),
    Route("/admin/studio/dropdowns/reset-all", dropdown_reset_all, methods=["POST"]),
    Route("/admin/studio/dropdowns/new", dropdown_new, methods=["GET", "POST"]),
    Route("/admin/studio/dropdowns/{name}", dropdown_edit, methods=["GET", "POST"]),
    Route("/admin/studio/dropdowns/{name}/reset", dropdown_reset, methods=["POST"]),
    Route("/admin/studio/tabs", tabs, methods=["GET", "POST"]),
    Route("/admin/studio/tabs/rename", rename, methods=["GET", "POST"]),
]
