"""The engine's connections as the code relies on them (core.kernel.database.engine_for):
``engine.begin()`` is one transaction on every database — on PostgreSQL too, where reads
run in autocommit to spare a round trip — and a pooled connection the database server
closed while it sat unused is replaced before a request uses it, with no ping at every
checkout."""
import pytest
import sqlalchemy as sa

from core.testing import SERVER_URL


def test_a_failed_write_transaction_leaves_nothing(site):
    counters = site.tables.tables["crbm_sequences"]
    with pytest.raises(RuntimeError), site.engine.begin() as conn:
        conn.execute(counters.insert().values(name="first", prefix="", next_value=1))
        conn.execute(counters.insert().values(name="second", prefix="", next_value=1))
        raise RuntimeError("the plugin's hook failed")
    names = sa.select(counters.c.name).where(counters.c.name.in_(["first", "second"]))
    with site.engine.connect() as conn:
        assert conn.execute(names).all() == []
    with site.engine.begin() as conn:
        conn.execute(counters.insert().values(name="first", prefix="", next_value=1))
    with site.engine.connect() as conn:
        assert conn.execute(names).scalars().all() == ["first"]


@pytest.mark.skipif(not SERVER_URL, reason="a database server's connections")
def test_a_connection_the_server_closed_while_unused_is_replaced_before_use(site):
    engine = site.engine
    postgresql = engine.dialect.name == "postgresql"
    whoami = "SELECT pg_backend_pid()" if postgresql else "SELECT CONNECTION_ID()"
    engine.pool.dispose()  # one pooled connection only: the one the server will close
    with engine.connect() as conn:
        pid = conn.exec_driver_sql(whoami).scalar()
        conn.connection._connection_record.info["seen"] -= 120  # as if unused for 2 minutes
    admin = sa.create_engine(engine.url, poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"SELECT pg_terminate_backend({pid})" if postgresql
                             else f"KILL {pid}")
    admin.dispose()
    with engine.connect() as conn:  # no error: pinged, found dead, connected again
        assert conn.exec_driver_sql(whoami).scalar() != pid
