"""Excel workbooks (.xlsx) people open in a spreadsheet: typed cells, and no cell is ever a
formula.

Contract:

- ``write(path, title, header, rows, tz)`` writes one workbook to ``path`` with openpyxl's
  **write-only** workbook: each row goes to a temporary file as it comes, so memory stays
  flat however many rows ``rows`` (any iterable) yields; a caller reads its records in
  batches and yields them. A sheet holds at most Excel's 1,048,576 rows: the rows after
  that go on to a second sheet ("<title> (2)") under the same header, and so on.
- **Typed cells.** A number (``int``, ``float``, ``Decimal``) is a number cell; a ``date``
  a date cell and a ``datetime`` a date-and-time cell, formatted ``yyyy-mm-dd[ hh:mm]``
  (an aware datetime is shown on ``tz``'s clock: Excel has no time zones); everything else
  is text (a caller passes what a person reads: dropdown labels, related records' names).
- **No formula, ever** (CSV injection's twin; docs/security.md): a text cell is written
  with the explicit string type, so openpyxl never stores ``=...`` as a formula nor
  ``#N/A`` as an error; one that starts with ``=``, ``+``, ``-``, ``@``, TAB or CR (what
  ``csv_export`` escapes) is also marked "quote prefix", Excel's own "this is text", so
  editing the cell does not turn it into a formula either. The text itself is unchanged
  (no ``'`` is added: in a workbook it would be part of the value).
- Characters XML cannot hold (control characters) are dropped and a text longer than a cell
  holds (32,767 characters) is cut, rather than writing a file Excel refuses to open.

openpyxl is imported when a workbook is written, not when the web UI starts.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.web.csv_export import FORMULA_START

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_ROWS = 1_048_576  # Excel's rows per sheet, the header included
MAX_TEXT = 32_767  # characters in one cell
DATE_FORMAT, DATETIME_FORMAT = "yyyy-mm-dd", "yyyy-mm-dd hh:mm"
BAD_TITLE = str.maketrans({c: " " for c in "[]:*?/\\"})


def sheet_title(title: str, number: int = 1) -> str:
    """A legal sheet name (31 characters, none of ``[]:*?/\\``) for ``title``."""
    suffix = f" ({number})" if number > 1 else ""
    text = str(title).translate(BAD_TITLE).strip() or "Sheet"
    return text[:31 - len(suffix)] + suffix


class _Cells:
    """Turns values into what a write-only sheet takes (openpyxl imported once, here)."""

    def __init__(self, tz):
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
        from openpyxl.styles import Font

        self.tz, self.make, self.illegal = tz, WriteOnlyCell, ILLEGAL_CHARACTERS_RE
        self.bold = Font(bold=True)
        self.sheet = None

    def text(self, value: str, bold: bool = False):
        value = self.illegal.sub("", value)[:MAX_TEXT]
        cell = self.make(self.sheet, value)
        cell.data_type = "s"  # not "f" for "=...", nor "e" for "#N/A": text, whatever it says
        if value.startswith(FORMULA_START):
            cell.quotePrefix = True
        if bold:
            cell.font = self.bold
        return cell

    def value(self, value: Any):
        if value is None or value == "":
            return None
        if isinstance(value, bool):  # (a caller passes "Yes"/"No"; never True as 1)
            return self.text(str(value))
        if isinstance(value, int | float | Decimal):
            return value
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                value = value.astimezone(self.tz).replace(tzinfo=None)
            cell = self.make(self.sheet, value)
            cell.number_format = DATETIME_FORMAT
            return cell
        if isinstance(value, dt.date):
            cell = self.make(self.sheet, value)
            cell.number_format = DATE_FORMAT
            return cell
        return self.text(str(value))


def write(path: Path | str, title: str, header: Sequence[str], rows: Iterable[Sequence[Any]],
          tz: dt.tzinfo = dt.UTC) -> int:
    """Write the workbook; returns how many rows (the header aside) it holds."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    cells = _Cells(tz)
    sheet, used, count, number = None, MAX_ROWS, 0, 0

    def new_sheet():
        nonlocal sheet, used, number
        number += 1
        sheet = cells.sheet = book.create_sheet(sheet_title(title, number))
        sheet.freeze_panes = "A2"  # the header stays in view
        sheet.append([cells.text(str(h), bold=True) for h in header])
        used = 1

    for row in rows:
        if used >= MAX_ROWS:
            new_sheet()
        sheet.append([cells.value(v) for v in row])
        used += 1
        count += 1
    if sheet is None:  # no rows: the header alone
        new_sheet()
    book.save(str(path))
    return count
