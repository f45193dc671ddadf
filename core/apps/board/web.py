"""The board's pages: the board, a column's next cards, and moving a card.

- ``GET /m/<module>/board``: the columns with their totals and first cards; the list's
  filters, quick search and sort (``f_<field>``, ``q``, ``sort``) apply, so "Board" and
  "List" show the same records.
- ``GET /m/<module>/board/more?column=<value>&after=<cursor>``: a column's next cards, the
  fragment board.js appends (without JavaScript, the same with the board around it is
  what the "More" link opens: the board, that column's next cards in it).
- ``POST /m/<module>/board/move`` (``id``, ``to``, ``version``; CSRF as every form): the
  card's record gets ``to`` through ``RecordService.update``, based on the version the
  board showed. board.js posts it with fetch and ``Accept: application/json`` and gets
  ``{"ok": true, "version", "columns": {value: figures}}`` or ``{"ok": false, "error"}``
  (the card goes back); a form post without JavaScript (the card's "Move to…" select and
  its button) is sent back to the board with the outcome as a flash.
"""
from __future__ import annotations

from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from core.apps.board import board
from core.kernel.errors import (
    N_,
    ConflictError,
    Message,
    NotFoundError,
    ValidationError,
    VetoError,
)
from core.kernel.records import Query
from core.web.pages import page
from core.web.templating import flash
from core.web.views import _can, _fmt, _labels, _list_query, _module, _options, _render, _said

LIST_PARAMS = ("q", "sort")  # besides the filters (f_<field>), what a board keeps of a list


def _board(request: Request):
    module = _module(request)
    spec = board.BoardSpec.of(module)
    if spec is None:
        raise HTTPException(404, Message(N_("%(module)s have no board."), module=module.label))
    return module, spec


def _keep(request: Request, params) -> dict:
    """The list's parameters the board was opened with (filters, search, sort)."""
    return {k: str(v) for k, v in params.items() if (k in LIST_PARAMS or k.startswith("f_"))
            and str(v).strip()}


def figures(fmt, module, spec: board.BoardSpec, column: board.Column) -> dict:
    """A column's totals as its header shows them, in the reader's formats (an empty
    column's in the amount field's own currency)."""
    def money(sums):
        if not sums:
            f = module.fields[spec.amount]
            code = spec.currency(module) and \
                (f.spec.get("currency") or getattr(f.type, "default_code", None))
            return fmt.currency(0, code) if code else fmt.number(0)
        return " + ".join(fmt.currency(v, code) if code else fmt.number(v, 2)
                          for code, v in sorted(sums.items(), key=lambda i: i[0] or ""))
    return {"count": fmt.number(column.count), "n": column.count,
            "face": money(column.face) if spec.amount else "",
            "weighted": money(column.weighted) if spec.weight else ""}


def _initials(name: str | None) -> str:
    words = [w for w in str(name or "").replace(".", " ").split() if w[:1].isalnum()]
    return "".join(w[0] for w in words[:2]).upper() or "?"


@page()
def board_view(request: Request, form):
    module, spec = _board(request)
    site, user = request.app.state.site, request.state.user
    params = request.query_params
    query, shown = _list_query(request, module, params)
    columns = board.columns(site, module, spec)
    try:
        columns = board.totals(site, module, spec, user, query, columns)
        for column in columns:
            after = params.get("after") if params.get("column") == column.value else None
            column.cards, column.more = board.cards(site, module, spec, user, query,
                                                    column.value, after) \
                if column.count else ([], None)
    except ValidationError as exc:  # a bad filter or sort in the URL: said, nothing shown
        flash(request, Message(N_("Cannot show the board: %(reason)s"), reason=str(exc)),
              "error")
        columns = [board.Column(c.value, c.label, cards=[]) for c in columns]
    return _render(request, "board.html", **_context(request, module, spec, columns),
                   query=query, filter_values=shown, options=lambda f: _options(request, f),
                   filter_fields=[f for n in module.layouts.get("filters", [])
                                  for f in module.expand(n)])


def _context(request: Request, module, spec: board.BoardSpec, columns) -> dict:
    fmt = _fmt(request)
    keep = _keep(request, request.query_params)
    return {"module": module, "spec": spec, "columns": columns, "keep": keep,
            "tinted": any(c.color for c in columns),  # the list has colours: columns show them
            "figures": {c.value: figures(fmt, module, spec, c) for c in columns},
            "card_fields": [module.fields[n] for n in spec.card if n in module.fields],
            "labels": _labels(request, module), "initials": _initials,
            "can_edit": _can(request, module, "edit"), "urlencode": urlencode,
            "targets": [(c.value, c.label) for c in columns if c.value != board.NONE]}


@page()
def more_view(request: Request, form):
    """A column's next cards (board.js appends them, and the new "More" if any)."""
    module, spec = _board(request)
    site, user = request.app.state.site, request.state.user
    params = request.query_params
    value = str(params.get("column", ""))
    columns = {c.value: c for c in board.columns(site, module, spec)}
    column = columns.get(value) or board.Column(board.NONE, "")
    if value != column.value:
        raise HTTPException(404, Message(N_("There is no such column.")))
    query, _ = _list_query(request, module, params)
    try:
        column.cards, column.more = board.cards(site, module, spec, user, query, value,
                                                str(params.get("after", "")) or None)
    except ValidationError as exc:
        raise HTTPException(400, Message(N_("Cannot show the board: %(reason)s"),
                                         reason=str(exc))) from None
    return _render(request, "_board_cards.html", column=column,
                   **_context(request, module, spec, list(columns.values())))


def _refusal(request: Request, module, spec, record_id: str, exc: Exception) -> tuple[int, str]:
    """Why a move was refused, in the reader's language, and its HTTP status."""
    site, user = request.app.state.site, request.state.user
    what = module.label_singular
    if isinstance(exc, NotFoundError):  # may not edit it, or may not even see it
        seen = site.records.permissions(module.name, record_id, user, ("view",))["view"] \
            if record_id else False
        if seen:
            return 403, _said(request, Message(N_("You may not change this %(what)s."),
                                               what=what))
        return 404, _said(request, Message(N_("There is no such %(what)s, or you may not "
                                               "see it."), what=what))
    if isinstance(exc, ConflictError):
        return 409, _said(request, Message(N_("Someone else changed this %(what)s since the "
                                               "board was shown. Reload the board and try "
                                               "again."), what=what))
    if isinstance(exc, ValidationError):
        problems = []
        for key, message in exc.errors.items():
            f = module.fields.get(key)
            label = str(f.label) if f is not None else key
            problems.append(f"{label}: {_said(request, message)}")
        return 422, _said(request, Message(N_("Not moved: %(reason)s"),
                                           reason="; ".join(problems)))
    return 422, _said(request, Message(N_("Not moved: %(reason)s"), reason=_said(request, exc)))


@page()
def move_view(request: Request, form):
    module, spec = _board(request)
    site, user = request.app.state.site, request.state.user
    wants_json = "application/json" in request.headers.get("accept", "")
    record_id, to = str(form.get("id", "")), str(form.get("to", ""))
    version = str(form.get("version", ""))
    back = f"/m/{module.name}/board"
    if form.get("back"):
        back += "?" + urlencode(_keep(request, dict(_parse(str(form["back"])))))
    columns = board.columns(site, module, spec)
    status, message, record = 200, "", None
    if to not in {c.value for c in columns} | {board.NONE}:
        status, message = 422, _said(request, Message(
            N_("%(value)s is not a column of this board."), value=repr(to)))
    else:
        try:
            record = site.records.update(
                module.name, record_id, {spec.field: to or None}, user,
                base={"version": int(version)} if version.isdigit() else None)
        except (NotFoundError, ConflictError, ValidationError, VetoError) as exc:
            status, message = _refusal(request, module, spec, record_id, exc)
    if not wants_json:
        if record is None:
            flash(request, message, "error")
        else:
            flash(request, Message(N_("Moved.")))
        return RedirectResponse(back, 303)
    if record is None:
        return JSONResponse({"ok": False, "error": message}, status_code=status)
    query, _ = _list_query(request, module, dict(_parse(str(form.get("back", "")))))
    try:
        shown = board.totals(site, module, spec, user, query, columns)
    except ValidationError:  # the board's filters were bad: the unfiltered totals
        shown = board.totals(site, module, spec, user, _list_query(request, module, {})[0],
                             board.columns(site, module, spec))
    fmt = _fmt(request)
    return JSONResponse({"ok": True, "version": record["version"],
                         "columns": {c.value: figures(fmt, module, spec, c) for c in shown},
                         "card": _card_html(request, module, spec, columns, record["id"], to)})


def _card_html(request: Request, module, spec: board.BoardSpec, columns, record_id: str,
               value: str) -> str:
    """The moved card drawn again: its save may have changed what it shows (an
    opportunity's probability follows its stage)."""
    site, user = request.app.state.site, request.state.user
    rows = site.records.list(module.name, user, Query(
        filters=[("id", "eq", record_id)], fields=board.card_fields(module, spec),
        labels=True, limit=1))
    column = board.Column(value or board.NONE, "")
    column.cards, column.more = rows, None
    return _render(request, "_board_cards.html", column=column,
                   **_context(request, module, spec, columns)).body.decode()


def _parse(query_string: str):
    from urllib.parse import parse_qsl
    return parse_qsl(query_string, keep_blank_values=False)


routes = [
    Route("/m/{module}/board", board_view, methods=["GET"]),
    Route("/m/{module}/board/more", more_view, methods=["GET"]),
    Route("/m/{module}/board/move", move_view, methods=["POST"]),
]
