"""Resetting a PostgreSQL or MariaDB test database to "a fresh site, synced" quickly.

Creating the ~60 tables of the shipped plugins takes most of a second on MariaDB, and
nearly every test starts from exactly that. So the first synced database's rows are kept
(the kernel's starting rows: roles, counters, epochs), and after a test that left the same
tables and columns, emptying every table and putting those rows back gives the next test
the same database as a sync would. A test that changed the schema (a pack, the Studio, a
test plugin) gets the database dropped and made again, as before.
"""
from __future__ import annotations

import sqlalchemy as sa


def _columns(conn) -> tuple:
    """Every (table, column) of the test database: what a schema change would alter."""
    schema = "public" if conn.dialect.name == "postgresql" else conn.exec_driver_sql(
        "SELECT DATABASE()").scalar()
    return tuple(conn.execute(sa.text(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = :schema ORDER BY table_name, column_name"),
        {"schema": schema}).tuples())


class Baseline:
    def __init__(self):
        self.columns: tuple | None = None
        self.rows: dict[str, list[dict]] = {}
        self.tables: list[sa.Table] = []

    @property
    def captured(self) -> bool:
        return self.columns is not None

    def capture(self, engine: sa.Engine) -> None:
        """Remember the database as a fresh sync left it."""
        metadata = sa.MetaData()
        with engine.connect() as conn:
            metadata.reflect(conn)
            self.tables = list(metadata.sorted_tables)
            self.rows = {t.name: [dict(r) for r in conn.execute(sa.select(t)).mappings()]
                         for t in self.tables}
            self.columns = _columns(conn)

    def restore(self, url: str) -> bool:
        """Put the baseline back if the schema is still the baseline's; False otherwise."""
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                if _columns(conn) != self.columns:
                    return False
                for table in reversed(self.tables):
                    conn.execute(table.delete())
                for table in self.tables:
                    if self.rows[table.name]:
                        conn.execute(table.insert(), self.rows[table.name])
            return True
        finally:
            engine.dispose()
