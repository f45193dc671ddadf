"""A database's rows in a form every database reads back: one JSON Lines stream per table.

Contract:

- ``read_snapshot(engine)`` is a context manager giving a connection whose reads all see
  one moment of the database, taken without stopping writers: SQLite's deferred read
  transaction (WAL: the writer goes on, this reader keeps its snapshot), PostgreSQL's and
  MariaDB's REPEATABLE READ, read only. A backup made while clients write holds whole
  transactions only (an invoice's total and its lines agree).
- ``dump_table(conn, table, out)`` writes the table's rows in primary-key order: a first
  line with the column names, then one JSON array per row. Values are typed by the
  column, not guessed: date-times, dates and times in ISO 8601, decimals as strings (no
  float rounding), binary as base64, JSON columns as JSON. Returns the row count. Rows
  are streamed (the driver's server-side cursor), so memory stays flat.
- ``load_table(conn, table, lines)`` empties ``table`` and inserts what ``dump_table``
  wrote, converting each value back by the *target* column's type, in batches. Columns
  the target lacks are an error naming them; columns the target has beyond the dump's
  take their defaults.

Why not ``pg_dump``/``mariadb-dump``/SQLite's backup API: their output reads back only
into the same database, and a site must be able to move (SQLite → PostgreSQL and back);
and the site's own schema — which the registry builds from the restored customizations —
is the one to load into, so the dump holds rows only.
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import decimal
import json
from collections.abc import Iterable, Iterator
from typing import IO

import sqlalchemy as sa

BATCH = 2_000  # rows per executemany on restore, per fetch on backup


class SnapshotError(Exception):
    """A dump that cannot be loaded into the target (a column it lacks, a bad value)."""


@contextlib.contextmanager
def read_snapshot(engine: sa.Engine) -> Iterator[sa.Connection]:
    dialect = engine.dialect.name
    with engine.connect() as conn:
        if dialect == "sqlite":
            # the driver opens no transaction for reads: a deferred one, begun by hand, is
            # a snapshot (not BEGIN IMMEDIATE, which would stop every writer)
            conn.exec_driver_sql("BEGIN")
            try:
                yield conn
            finally:
                conn.exec_driver_sql("ROLLBACK")
            return
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            if dialect == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            else:  # (the driver has begun nothing yet: this is the transaction)
                conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            yield conn


def columns_of(table: sa.Table) -> list[str]:
    return [c.name for c in table.columns]


def dump_table(conn: sa.Connection, table: sa.Table, out: IO[bytes]) -> int:
    out.write(_line(columns_of(table)))
    order = list(table.primary_key.columns) or list(table.columns)
    result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(
        sa.select(*table.columns).order_by(*order))
    count = 0
    for rows in result.partitions():  # one write per batch: each write is a zlib call
        out.write(b"".join(_line(list(row)) for row in rows))
        count += len(rows)
    return count


def load_table(conn: sa.Connection, table: sa.Table, lines: Iterable[bytes]) -> int:
    lines = iter(lines)
    header = json.loads(next(lines))
    missing = [n for n in header if n not in table.c]
    if missing:
        raise SnapshotError(f"table {table.name}: the database has no column "
                            f"{', '.join(missing)}")
    # only the columns whose values JSON does not carry as they are get converted
    decoders = [(i, _DECODERS[k]) for i, k in enumerate(_kind(table.c[n].type) for n in header)
                if k in _DECODERS]
    conn.execute(table.delete())
    count, batch = 0, []
    for number, line in enumerate(lines, start=2):
        values = json.loads(line)
        try:
            for index, decode in decoders:
                if values[index] is not None:
                    values[index] = decode(values[index])
        except (ValueError, TypeError, decimal.InvalidOperation, binascii.Error) as exc:
            raise SnapshotError(f"table {table.name}, line {number}: {exc}") from exc
        batch.append(dict(zip(header, values)))
        if len(batch) == BATCH:
            conn.execute(table.insert(), batch)
            count, batch = count + len(batch), []
    if batch:
        conn.execute(table.insert(), batch)
        count += len(batch)
    return count


def analyze(conn: sa.Connection, tables: list[sa.Table]) -> None:
    """The planner's statistics of freshly loaded tables. PostgreSQL has none until
    autovacuum comes round, and planned the duplicate keys' anti-join of a restored 1M-record
    site as a scan per row (13 minutes and counting, instead of seconds); MariaDB's InnoDB
    recomputes them on its own after a bulk load but a query may come first. SQLite's planner
    does well without: nothing to do."""
    if conn.dialect.name == "sqlite" or not tables:
        return
    quote = conn.dialect.identifier_preparer.format_table
    names = ", ".join(quote(t) for t in tables)
    conn.exec_driver_sql(f"ANALYZE {names}" if conn.dialect.name == "postgresql"
                         else f"ANALYZE TABLE {names}")


def reset_sequences(conn: sa.Connection, table: sa.Table) -> None:
    """PostgreSQL: an auto-numbered key's sequence continues after the loaded rows (rows
    inserted with their ids do not move it). MariaDB and SQLite continue by themselves."""
    if conn.dialect.name != "postgresql":
        return
    for column in table.primary_key.columns:
        if column.autoincrement is True or (
                column.autoincrement == "auto" and isinstance(column.type, sa.Integer)
                and len(table.primary_key.columns) == 1):
            conn.execute(sa.text(
                f"SELECT setval(pg_get_serial_sequence(:table, :column), "
                f"COALESCE((SELECT MAX({conn.dialect.identifier_preparer.quote(column.name)}) "
                f"FROM {conn.dialect.identifier_preparer.format_table(table)}), 0) + 1, false) "
                f"WHERE pg_get_serial_sequence(:table, :column) IS NOT NULL"),
                {"table": table.name, "column": column.name})


# -- tables the site's schema does not define (a disabled plugin's kept data) ---------------

GENERIC = {"String": sa.String, "Text": sa.Text, "Integer": sa.Integer,
           "BigInteger": sa.BigInteger, "SmallInteger": sa.SmallInteger, "Boolean": sa.Boolean,
           "DateTime": sa.DateTime, "Date": sa.Date, "Time": sa.Time, "Numeric": sa.Numeric,
           "Float": sa.Float, "LargeBinary": sa.LargeBinary, "JSON": sa.JSON}


def describe(table: sa.Table) -> list[dict]:
    """A reflected table's columns in a form any database can make again."""
    described = []
    for column in table.columns:
        try:
            generic = column.type.as_generic()
        except NotImplementedError:
            generic = sa.Text()
        name = type(generic).__name__ if type(generic).__name__ in GENERIC else "Text"
        described.append({"name": column.name, "type": name,
                          "length": getattr(generic, "length", None),
                          "precision": getattr(generic, "precision", None),
                          "scale": getattr(generic, "scale", None),
                          "nullable": bool(column.nullable), "key": column.primary_key})
    return described


def described_table(name: str, columns: list[dict], metadata: sa.MetaData) -> sa.Table:
    def type_of(c):
        kind = GENERIC.get(c["type"], sa.Text)
        if kind is sa.String:
            return sa.String(c.get("length") or 255)
        if kind is sa.Numeric:
            return sa.Numeric(c.get("precision"), c.get("scale"))
        return kind()
    return sa.Table(name, metadata, *(
        sa.Column(c["name"], type_of(c), nullable=c["nullable"], primary_key=c["key"],
                  autoincrement=False) for c in columns))


def _line(values: list) -> bytes:
    return _ENCODER.encode(values).encode() + b"\n"


def _encode(value):
    """What JSON has no form for (json.dumps asks only for those: the rest stays in C)."""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)  # exact, not a float
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    raise TypeError(f"cannot write a {type(value).__name__} value")


def _kind(type_: sa.types.TypeEngine) -> str:
    """How the column's values are read back: by the type it stores (a TypeDecorator's
    stored type: UTC date-times, multi-value lists as their text)."""
    if isinstance(type_, sa.TypeDecorator):
        type_ = type_.impl if isinstance(type_.impl, sa.types.TypeEngine) else type_.impl()
    for kind, types in (("json", sa.JSON), ("datetime", sa.DateTime), ("date", sa.Date),
                        ("time", sa.Time), ("binary", sa.LargeBinary)):
        if isinstance(type_, types):
            return kind
    if isinstance(type_, sa.Numeric) and not isinstance(type_, sa.Float):
        return "decimal"
    return "plain"


# one encoder for every row (json.dumps with arguments builds a new one each call)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_encode)

_DECODERS = {
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "decimal": decimal.Decimal,
    "binary": base64.b64decode,
}
