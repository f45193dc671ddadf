"""Shared fixtures: a booted site on a fresh database.

SQLite by default. Set CRBM_TEST_DATABASE_URL to a PostgreSQL or MariaDB server URL
(e.g. postgresql+psycopg://postgres@127.0.0.1/postgres) and the suite makes its own
database there for the session and drops it afterwards.
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from core.kernel import users
from core.kernel.site import Site, create_site
from core.kernel.users import create_user
from tests.browser import browser, page, server, viewport  # noqa: F401  (browser fixtures)
from tests.plugins.kitchen_sink import plugin as kitchen_sink
from tests.server_baseline import Baseline

SERVER_URL = os.environ.get("CRBM_TEST_DATABASE_URL")


def pytest_report_header(config):
    return f"CRBM database: {SERVER_URL or 'SQLite (per test)'}"


# Modules whose subject does not depend on the database: PDF layout, formulas, the registry,
# translations and catalogs, the docs, the shipped packs' contents, themes and holiday
# calendars (their installs and the preferences they store go through the same pack and
# user code that test_packs, test_web_packs and test_web_auth run on every database). They
# run once, on SQLite: on a server they would only repeat themselves, and CI's two server
# suites have a time budget.
DATABASE_INDEPENDENT = {"test_pdf.py", "test_formula.py", "test_docs.py", "test_registry.py",
                        "test_i18n.py", "test_i18n_templates.py", "test_lang_fr.py",
                        "test_packs_shipped.py", "test_themes.py", "test_holidays.py"}


def pytest_collection_modifyitems(config, items):
    if SERVER_URL:
        once = pytest.mark.skip(reason="database-independent: runs on SQLite only")
        for item in items:
            if item.path.name in DATABASE_INDEPENDENT:
                item.add_marker(once)
        return
    skip = pytest.mark.skip(reason="needs CRBM_TEST_DATABASE_URL (PostgreSQL or MariaDB)")
    for item in items:
        if "server_db" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def quick_hashes(monkeypatch):
    """Cheap argon2 parameters (the same code path) for tests that sign in or set secrets
    many times: ``pytestmark = pytest.mark.usefixtures("quick_hashes")``."""
    monkeypatch.setattr(users, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024,
                                                        parallelism=1))
    users._dummy_hash.cache_clear()
    yield
    users._dummy_hash.cache_clear()


@pytest.fixture(scope="session")
def server_database():
    """A database of our own on the server named by CRBM_TEST_DATABASE_URL."""
    if not SERVER_URL:
        yield None
        return
    admin_url = sa.make_url(SERVER_URL)
    name = f"crbm_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    yield admin_url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        if admin_url.get_backend_name() == "postgresql":
            conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
        else:
            conn.exec_driver_sql(f"DROP DATABASE {name}")
    admin.dispose()


class ServerState:
    baseline = Baseline()  # the server database as a fresh site's sync leaves it
    at_baseline = False  # the database is in that state now (else it is empty)
    shape: tuple | None = None  # the baseline's tables and columns (schema_shape)


@pytest.fixture
def database_url(server_database, tmp_path, request):
    if server_database is None:
        yield f"sqlite:///{tmp_path / 'crbm.db'}"
        return
    if ServerState.at_baseline and "make_site" not in request.fixturenames:
        empty_database(server_database)  # this test makes its own database from nothing
        ServerState.at_baseline = False
    yield server_database
    # for the next test: the synced baseline if this one kept its schema, else empty
    ServerState.at_baseline = ServerState.baseline.captured and \
        ServerState.baseline.restore(server_database)
    if not ServerState.at_baseline:
        empty_database(server_database)


def empty_database(url: str) -> None:
    """Drop everything in the test database at once (much faster than reflecting and
    dropping each table, which every server test would otherwise pay for)."""
    url = sa.make_url(url)
    if url.get_backend_name() == "postgresql":
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    else:
        engine = sa.create_engine(url.set(database=""), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {url.database}")
            conn.exec_driver_sql(f"CREATE DATABASE {url.database}")
    engine.dispose()


@pytest.fixture(scope="session")
def synced_sqlite(tmp_path_factory):
    """A SQLite database file as a fresh site's sync leaves it, made once per session:
    each test's site starts from a copy (creating ~60 tables for every test would cost
    the suite minutes). Server databases are synced per test."""
    folder = create_site(tmp_path_factory.mktemp("template") / "site")
    site = Site(folder, extra_plugins=[kitchen_sink])
    site.sync_schema()
    shape = schema_shape(site.tables)
    site.close()  # the last connection checkpoints the WAL into the file
    return folder / "crbm.db", shape


def schema_shape(metadata: sa.MetaData) -> tuple:
    """The tables and their columns: a site whose plugins differ (a test installs one)
    has another shape, and its copied database must be synced after all."""
    return tuple(sorted((t.name, tuple(sorted(t.columns.keys())))
                        for t in metadata.tables.values()))


@pytest.fixture
def make_site(tmp_path, database_url, request):
    """Boot a site (shipped plugins + the kitchen_sink test plugin), schema synced."""
    sites = []

    def make(folder_name: str = "site", sync: bool = True, **kwargs) -> Site:
        folder = tmp_path / folder_name
        if not (folder / "site.yaml").exists():
            create_site(folder, database_url)
        default, capture, copied = sync and not kwargs, False, None
        if SERVER_URL is None:
            database_file = Path(sa.make_url(database_url).database or "")
            if default and not database_file.exists():
                template, copied = request.getfixturevalue("synced_sqlite")
                shutil.copyfile(template, database_file)
                sync = False  # it is the synced database already
        elif not sites:  # the test's first site decides what its database starts as
            if ServerState.at_baseline and default:
                sync, copied = False, ServerState.shape  # synced already
            elif ServerState.at_baseline:
                empty_database(database_url)
                ServerState.at_baseline = False
            capture = default and not ServerState.baseline.captured
        site = Site(folder, extra_plugins=[kitchen_sink], **kwargs)
        if sync or (copied is not None and schema_shape(site.tables) != copied):
            site.sync_schema()
        if capture:
            ServerState.baseline.capture(site.engine)
            ServerState.shape = schema_shape(site.tables)
        sites.append(site)
        return site

    yield make
    for site in sites:
        site.close()


@pytest.fixture
def site(make_site):
    kitchen_sink.RECORDER.reset()
    return make_site()


@pytest.fixture
def admin(site):
    return create_user(site, "admin", "correct horse battery", is_admin=True)


@pytest.fixture
def recorder():
    kitchen_sink.RECORDER.reset()
    yield kitchen_sink.RECORDER
    kitchen_sink.RECORDER.reset()
