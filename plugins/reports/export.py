"""A report as a table for a file: CSV (core.web.csv_export: no cell read as a formula)
and XLSX (core.web.xlsx_export: typed cells, never a formula).

``table(site, definition, user, fmt)`` gives (header, rows): a grouped report's groups,
sub-totals and grand total (numbers as numbers, labels as text), or every row of a list
report, read in batches of ``BATCH`` from one statement and its totals last — memory stays
flat however many rows. The same table is what a scheduled report mails.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

from core.kernel.errors import N_, Message
from core.web import csv_export, xlsx_export
from plugins.reports.compiler import compile_report
from plugins.reports.run import Cell, _cells, _Labels, _row, headers, run

BATCH = 1000


def cells(site, definition, user, fmt) -> tuple[list[str], Iterator[tuple[list[Cell], bool]]]:
    """The report as a table of cells (``run.Cell``: value and text), every file's source:
    (header, rows), each row (cells, whether it is a sub-total or total)."""
    if definition.groups:
        header = [g.field.label for g in definition.groups] + headers(definition, fmt) + \
            [str(Message(N_("Records")))]
        return header, _grouped(site, definition, user, fmt)
    return headers(definition, fmt), _listed(site, definition, user, fmt)


def table(site, definition, user, fmt) -> tuple[list[str], Iterator[list]]:
    """(header, rows) for CSV and XLSX: numbers and dates as values, the rest as text."""
    header, rows = cells(site, definition, user, fmt)
    return header, ([_value(c) for c in row] for row, _total in rows)


def _grouped(site, definition, user, fmt):
    result = run(site, definition, user, fmt)
    depth = len(definition.groups)
    for g in result.groups + ([result.total] if result.total else []):
        labels = list(g.labels) + [""] * (depth - len(g.labels))
        if g.level == depth:
            labels[0] = str(Message(N_("Total")))
        elif g.level > 0:
            labels[depth - g.level] = str(Message(N_("Subtotal")))
        yield [Cell(None, label) for label in labels] + g.cells + \
            [Cell(g.count, fmt.number(g.count))], g.level > 0


def _listed(site, definition, user, fmt):
    compiled = compile_report(site, definition, user)
    labels = _Labels(site, definition, user, fmt)
    with site.engine.connect() as conn:
        if conn.dialect.name == "postgresql":  # reads run in autocommit; a cursor streams
            conn = conn.execution_options(isolation_level="REPEATABLE READ")  # in one only
        with conn.begin():  # (not engine.begin(): on SQLite that takes the writers' lock)
            result = conn.execution_options(yield_per=BATCH).execute(compiled.rows(limit=None))
            for batch in result.partitions(BATCH):
                rows = [_row(definition, dict(r._mapping), labels, fmt) for r in batch]
                labels.fill_rows(rows)
                for r in rows:
                    yield r["cells"], False
            totals = dict(conn.execute(compiled.totals()).one()._mapping)
    if any(c.aggregate for c in definition.columns):
        yield _cells(definition, totals, fmt), True


def _value(cell):
    """A number stays a number (a spreadsheet sums it), a date a date; the rest its text."""
    value = cell.value
    if value is not None and not isinstance(value, bool) and \
            csv_export.is_number(value) and not cell.mixed:
        # 1750.000000 (a numeric(26, 6) sum) written as 1750
        return Decimal(format(value.normalize(), "f")) if isinstance(value, Decimal) else value
    if isinstance(value, dt.date):  # a date or date-and-time a list report shows
        return value
    return cell.text


def to_csv(site, definition, user, fmt) -> bytes:
    header, rows = table(site, definition, user, fmt)
    out = io.StringIO()
    writer = csv_export.writer(out, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # the BOM: Excel reads UTF-8


def to_xlsx(site, definition, user, fmt, title: str) -> bytes:
    header, rows = table(site, definition, user, fmt)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "report.xlsx"
        xlsx_export.write(path, title, header, rows, fmt.tz)
        return path.read_bytes()
