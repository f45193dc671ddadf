"""List pages: the first few by number, every other by keyset cursor.

Page N by OFFSET costs as much as reading the N - 1 pages before it; a keyset page starts
right after (or before) a row the user saw, whatever its depth — the API's cursors
(``core.api.listing``), encoded the same way, in the list's URL:

    page=3            the first JUMP_PAGES pages, by number (OFFSET is cheap that near)
    after=<cursor>    Next: the rows after the last row shown, in the list's order
    before=<cursor>   Previous: the same in the reverse order (every sort key flipped,
                      ``RecordService._order``), read set-based and turned back
    page=last         Last: the first page of the reverse order

A cursor page does not know its number; ``at`` carries where it starts (the previous
page's start ± the page size), only to say "41–60 of 1,234": a page that reaches the
first record knows it starts at 1, the last page when the count is exact knows it ends
at the total.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from urllib.parse import quote_plus

from core.api.listing import decode_cursor, encode_cursor
from core.api.schemas import shapes
from core.kernel.records import Query

JUMP_PAGES = 5  # "jump to page N" links (by number) near the start of a list
PAGING = ("page", "after", "before", "at")  # the URL parameters of a position in the list


@dataclass
class Pager:
    rows: list[dict]
    total: int
    start: int | None  # the first row's position (1-based), None: not known
    has_prev: bool
    has_next: bool
    prev: dict | None = None  # the URL parameters of Previous and Next
    next: dict | None = None
    pages: int | None = None  # how many pages, when the count is exact
    size: int = 20
    keyset: bool = False  # Previous, Next and Last by cursor (else by number, no Last)

    @property
    def number(self) -> int | None:
        """The page's number, when it starts where a numbered page does."""
        if self.start is None or (self.start - 1) % self.size:
            return None
        return (self.start - 1) // self.size + 1


def flipped(keys: list[tuple[str, bool]]) -> str:
    """The reverse order's sort: every key the other way (id follows, ``_order``)."""
    return ",".join(("" if desc else "-") + name for name, desc in keys)


def read(records, registry, module, user, query: Query, params, size: int,
         cap: int | None) -> Pager:
    """One list page as ``params`` place it; ``query`` has the list's filters, search,
    sort and fields."""
    keys, sort = records.sort_keys(module, query.sort), query.sort
    shaped = shapes(registry, module)
    keyset = bool(keys) and all(name in shaped.kinds for name, _ in keys)  # not "deleted"
    query.fields = list(dict.fromkeys([*query.fields, *(name for name, _ in keys)]))
    query.limit = size + 1  # one more: is there a page beyond, in the direction read
    at = int(params["at"]) if params.get("at", "").isdigit() and int(params["at"]) > 0 \
        else None
    mode, errors = "page", {}
    if keyset and (params.get("after") or params.get("before")):
        mode = "after" if params.get("after") else "before"
        query.after = decode_cursor(str(params[mode]), module, shaped, keys, errors)
        if errors:  # not a cursor of this list (another sort, a crafted URL): page 1
            mode, query.after = "page", None
    elif keyset and params.get("page") == "last":
        mode = "last"
    number = int(params["page"]) if mode == "page" and params.get("page", "").isdigit() \
        and int(params["page"]) > 0 else 1
    backward = mode in ("before", "last")
    if backward:
        query.sort = flipped(keys)
    else:
        query.offset = (number - 1) * size
    rows, total = records.page(module.name, user, query, cap=cap)
    more = len(rows) > size
    rows = rows[:size]
    if backward:
        rows.reverse()
    if mode == "before" and not more and len(rows) < size:
        mode = "page"  # fewer rows before than a page (some were deleted): the first page
        query.sort, query.after, query.offset = sort, None, 0
        rows, total = records.page(module.name, user, query, cap=cap)
        more = len(rows) > size
        rows = rows[:size]
    query.sort = sort  # the list's own order again, for its column headers and actions
    exact = cap is None or total <= cap
    if mode == "page":
        start, has_prev, has_next = (number - 1) * size + 1, number > 1, more
    elif mode == "after":
        start, has_prev, has_next = at, True, more
    elif mode == "before":
        start, has_prev, has_next = (at if more else 1), more, True
    else:  # last
        start = total - len(rows) + 1 if exact else (1 if not more else None)
        has_prev, has_next = more, False
    pager = Pager(rows, total, start, has_prev, has_next, size=size,
                  pages=-(-total // size) if exact else None, keyset=keyset)
    if rows and keyset:
        prev_at = start - size if start is not None and start > size else None
        pager.prev = {"before": encode_cursor(rows[0], keys, shaped), "at": prev_at}
        pager.next = {"after": encode_cursor(rows[-1], keys, shaped),
                      "at": start + len(rows) if start is not None else None}
    elif rows:  # an order no cursor carries: by number only
        pager.prev = {"page": number - 1} if number > 1 else None
        pager.next = {"page": number + 1}
    return pager


def url(keep: dict, changes: dict | None) -> str:
    """The list's URL parameters (its filters, search, sort, size) at another position."""
    return encode({**keep, **{k: v for k, v in (changes or {}).items() if v is not None}})


def encode(params: dict) -> str:
    """``urllib.parse.urlencode(params)`` (the same text), each key and value quoted once
    per process: a list page writes the same few parameters into some twenty links."""
    return "&".join(f"{_quoted(str(k))}={_quoted(str(v))}" for k, v in params.items())


def _quoted(text: str) -> str:
    return _quoted_short(text) if len(text) <= 100 else quote_plus(text)


_quoted_short = functools.lru_cache(maxsize=2048)(quote_plus)  # short texts: bounded memory


def links(pager: Pager) -> list[int]:
    """The page numbers to jump to: the first JUMP_PAGES (no more than there are)."""
    last = JUMP_PAGES if pager.pages is None else min(JUMP_PAGES, pager.pages)
    return list(range(1, last + 1)) if last > 1 else []
