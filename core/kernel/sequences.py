"""Sequence numbers with the prefix codes of implementation guide 7.1.1.

Numbers are taken inside the transaction that writes the records: the ``UPDATE`` that
advances the counter locks its row until commit, so concurrent creators queue up and each
gets the next number, and a rolled-back write gives its numbers back. No repeats, and no
gaps but one: a number some record already holds (given by hand where the module allows
manual numbers, or from before) is skipped, never handed out again — a taken number would
otherwise fail every later create on the unique index.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import sqlalchemy as sa

SLACK = 16  # candidates looked at beyond the numbers wanted: taken ones come in runs

CODES = {
    "y": lambda d: f"{d.year % 100:02d}",
    "Y": lambda d: f"{d.year:04d}",
    "m": lambda d: f"{d.month:02d}",
    "M": lambda d: d.strftime("%b"),  # locale-independent: date.strftime uses C names
    "W": lambda d: f"{d.isocalendar().week:02d}",
    "d": lambda d: f"{d.day:02d}",
    "o": lambda d: f"{d.isocalendar().year:04d}",  # ISO year, matches %W at year ends
}


def format_prefix(prefix: str, today: dt.date) -> str:
    """Expand %y %Y %m %M %W %d %o; ``%%`` is a literal percent; other text is kept."""
    out, i = [], 0
    while i < len(prefix):
        if prefix[i] == "%" and i + 1 < len(prefix):
            code = prefix[i + 1]
            if code in CODES:
                out.append(CODES[code](today))
                i += 2
                continue
            if code == "%":
                out.append("%")
                i += 2
                continue
        out.append(prefix[i])
        i += 1
    return "".join(out)


def ensure(connection: sa.Connection, table: sa.Table, name: str, prefix: str, start: int) -> None:
    """Create the counter row if missing. Safe when several creators race to do it."""
    exists = connection.execute(sa.select(table.c.name).where(table.c.name == name)).first()
    if exists:
        return
    try:
        with connection.begin_nested():  # a savepoint: losing the race is not an error
            connection.execute(table.insert().values(name=name, prefix=prefix, next_value=start))
    except sa.exc.IntegrityError:
        pass


def take(connection: sa.Connection, table: sa.Table, name: str, count: int,
         today: dt.date, digits: int,
         taken: Callable[[list[str]], set[str]] | None = None) -> list[str]:
    """Reserve the next ``count`` numbers and return them formatted with the prefix.

    ``taken(candidates)`` says which of some formatted numbers are in use; those are
    skipped. It is asked about a window of candidates at a time, the window doubling while
    it holds too few free numbers, so a run of taken numbers costs a few queries, not one
    per number."""
    # Write first, then read: the write takes the row lock (or SQLite's write lock), so
    # no other transaction can read the same counter value in between.
    connection.execute(table.update().where(table.c.name == name)
                       .values(next_value=table.c.next_value + count))
    prefix, after = connection.execute(
        sa.select(table.c.prefix, table.c.next_value).where(table.c.name == name)).one()
    first = after - count
    head = format_prefix(prefix, today)
    if taken is None:
        return [f"{head}{n:0{digits}d}" for n in range(first, after)]
    chosen: list[str] = []
    start, window, last = first, count + SLACK, first
    while len(chosen) < count:
        candidates = [(n, f"{head}{n:0{digits}d}") for n in range(start, start + window)]
        used = taken([text for _, text in candidates])
        for n, text in candidates:
            if text not in used:
                chosen.append(text)
                last = n
                if len(chosen) == count:
                    break
        start, window = start + window, window * 2
    if last + 1 != after:  # numbers were skipped: the counter goes past them
        connection.execute(table.update().where(table.c.name == name)
                           .values(next_value=last + 1))
    return chosen
