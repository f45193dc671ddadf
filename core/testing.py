"""CRBM's site fixtures, published as a pytest plugin: a booted site on a fresh database.

Installing CRBM registers this module under the ``pytest11`` entry point ``crbm``
(setup.cfg), so any test suite run where CRBM is installed — CRBM's own, a third-party
plugin's — gets these fixtures with no import and no conftest:

- ``site``: a ``Site`` on a fresh database, schema synced, with every shipped plugin, every
  installed entry-point plugin (yours) and the ``crbm_extra_plugins`` modules;
- ``admin``: an administrator of that site (password ``ADMIN_PASSWORD``);
- ``make_site(folder_name="site", sync=True, **site_kwargs)``: more sites, or one booted
  with other ``Site`` arguments;
- ``database_url``: the test's database (SQLite in ``tmp_path``, else a server database);
- ``quick_hashes``: cheap argon2 parameters for tests that sign in many times;
- ``web``: a ``TestClient`` of the web UI signed in as ``admin`` (``web.csrf`` is the form
  token); ``api_client(site)`` and ``bearer(site, user)``: the REST API's client and header;
- ``crbm_extra_plugins``: a session fixture, empty here — override it in a conftest to boot
  every site with test-only plugin modules too (CRBM's own suite adds its kitchen_sink);
- ``smtp_inbox``: a real SMTP server (aiosmtpd) on 127.0.0.1 and a free port, ``site``'s
  ``smtp`` setting pointed at it (from ``SMTP_FROM_ADDRESS``), stopped after the test; it
  yields an ``SmtpInbox``: ``.messages`` (``email.message.EmailMessage``, policy default) and
  ``.envelopes`` (``.mail_from``, ``.rcpt_tos``) in arrival order, ``.port``. For a server
  without a site, or one with other aiosmtpd ``Controller`` arguments (AUTH, ...), use
  ``with smtp_server(**controller_kwargs) as inbox:`` and ``inbox.settings(**overrides)``
  (the ``smtp`` setting pointing there); ``smtp_settings(port)`` for a port where nothing
  listens (``free_port()``). aiosmtpd is CRBM's ``test`` extra: install it to use these.

SQLite by default. Set ``CRBM_TEST_DATABASE_URL`` to a PostgreSQL or MariaDB server URL
(e.g. postgresql+psycopg://postgres@127.0.0.1/postgres) and the session makes its own
database there and drops it afterwards.

Why it is fast: each test's SQLite site starts from a copy of one database synced once per
session (creating ~100 tables per test would cost minutes); on a server, the synced rows are
kept and put back after each test whose schema did not change, or only grew — what it added is
dropped first (``Baseline``). A site's job queue is closed with the site.

What the published names are is a contract with third-party suites: the fixtures above and
their arguments are kept; the helpers below them may change.
"""
from __future__ import annotations

import contextlib
import dataclasses
import email
import os
import re
import shutil
import socket
import uuid
from email import policy
from email.message import EmailMessage
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa

SERVER_URL = os.environ.get("CRBM_TEST_DATABASE_URL")
ADMIN_PASSWORD = "correct horse battery"
API_BASE_URL = "https://testserver"  # the API refuses plain http from elsewhere than here


@pytest.fixture(scope="session")
def crbm_extra_plugins() -> list[ModuleType]:
    """Plugin modules every test site loads besides the shipped and installed ones
    (``Site(extra_plugins=...)``). Override in a conftest.py; empty here."""
    return []


@pytest.fixture
def quick_hashes(monkeypatch):
    """Cheap argon2 parameters (the same code path) for tests that sign in or set secrets
    many times: ``pytestmark = pytest.mark.usefixtures("quick_hashes")``."""
    from argon2 import PasswordHasher

    from core.kernel import users

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
        if admin_url.get_backend_name() == "postgresql":
            # a throwaway database: its commits need not wait for the disk (~1.5 ms each
            # here, and a suite commits tens of thousands of times). MariaDB has no such
            # per-database switch (.ci/run relaxes the server for its run instead).
            conn.exec_driver_sql(f"ALTER DATABASE {name} SET synchronous_commit = off")
    yield admin_url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        if admin_url.get_backend_name() == "postgresql":
            conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
        else:
            conn.exec_driver_sql(f"DROP DATABASE {name}")
    admin.dispose()


# -- a server database put back to "fresh and synced" between tests ---------------------------

def _columns(conn) -> tuple:
    """Every (table, column) of the test database: what a schema change would alter."""
    schema = "public" if conn.dialect.name == "postgresql" else conn.exec_driver_sql(
        "SELECT DATABASE()").scalar()
    return tuple(conn.execute(sa.text(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = :schema ORDER BY table_name, column_name"),
        {"schema": schema}).tuples())


class Baseline:
    """Resetting a PostgreSQL or MariaDB test database to "a fresh site, synced" quickly.

    Creating the ~60 tables of the shipped plugins takes most of a second on MariaDB, and
    nearly every test starts from exactly that. So the first synced database's rows are kept
    (the kernel's starting rows: roles, counters, epochs), and after a test that left the
    same tables and columns, emptying every table and putting those rows back gives the next
    test the same database as a sync would. A test that only added tables or columns (the
    Studio, a pack's fields) has them dropped first; one that removed or renamed any gets
    the database dropped and made again."""

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
        """Put the baseline back if the schema is still the baseline's, or was only added
        to; False otherwise (the caller then starts from an empty database)."""
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                now = _columns(conn)
                if now != self.columns:
                    undone = self._drop_additions(conn, now)
                    conn.commit()
                    if not undone:
                        return False
            with engine.begin() as conn:
                # the tables written to, and those a fresh sync fills (which a test may
                # have emptied): the others are empty, as the baseline has them
                touched = _nonempty(conn, self.tables) | {n for n, rows in self.rows.items()
                                                          if rows}
                for table in reversed(self.tables):
                    if table.name in touched:
                        conn.execute(table.delete())
                for table in self.tables:
                    if self.rows[table.name]:
                        conn.execute(table.insert(), self.rows[table.name])
            return True
        except sa.exc.DBAPIError:
            return False
        finally:
            engine.dispose()

    def _drop_additions(self, conn, now: tuple) -> bool:
        """Undo a test that only added to the schema — a Studio module's tables, a field's
        column — by dropping what it added: a few statements, where the empty database
        the other cases get costs the next test a full sync (~3 s on MariaDB, for each of
        the Studio's hundred tests). Anything removed or renamed: False."""
        before, after = set(self.columns), set(now)
        if not before <= after:
            return False
        ours = {table for table, _ in before}
        added = sorted(after - before)
        tables = sorted({table for table, _ in added if table not in ours})
        columns = [(table, column) for table, column in added if table in ours]
        quote = conn.dialect.identifier_preparer.quote
        mysql = conn.dialect.name != "postgresql"
        if mysql:  # an added column's foreign key goes first; tables in any order
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
            for table, column in columns:
                for (name,) in conn.execute(sa.text(
                        "SELECT constraint_name FROM information_schema.key_column_usage "
                        "WHERE table_schema = DATABASE() AND table_name = :t "
                        "AND column_name = :c AND referenced_table_name IS NOT NULL"),
                        {"t": table, "c": column}).all():
                    conn.exec_driver_sql(f"ALTER TABLE {quote(table)} "
                                         f"DROP FOREIGN KEY {quote(name)}")
        for table in tables:
            conn.exec_driver_sql(f"DROP TABLE {quote(table)}" + ("" if mysql else " CASCADE"))
        for table, column in columns:
            conn.exec_driver_sql(f"ALTER TABLE {quote(table)} DROP COLUMN {quote(column)}")
        if mysql:
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 1")
        return _columns(conn) == self.columns


def _nonempty(conn, tables: list[sa.Table]) -> set[str]:
    """The tables holding a row, in one statement: a test writes to a few of the ~150, and
    a DELETE of each of the others would cost the teardown a round trip for nothing."""
    quote = conn.dialect.identifier_preparer.quote
    dual = "" if conn.dialect.name == "postgresql" else " FROM DUAL"
    parts = [f"SELECT '{t.name}'{dual} WHERE EXISTS (SELECT 1 FROM {quote(t.name)})"
             for t in tables]
    return set(conn.exec_driver_sql(" UNION ALL ".join(parts)).scalars()) if parts else set()


class ServerState:
    baseline = Baseline()  # the server database as a fresh site's sync leaves it
    at_baseline = False  # the database is in that state now (else it is empty)
    shape: tuple | None = None  # the baseline's tables and columns (schema_shape)


@pytest.fixture
def database_url(server_database, tmp_path, request):
    """The test's database: a SQLite file in ``tmp_path``, or the session's server
    database (left as the test found it: baseline or empty)."""
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
def synced_sqlite(tmp_path_factory, crbm_extra_plugins):
    """A SQLite database file as a fresh site's sync leaves it, made once per session:
    each test's site starts from a copy. Server databases are synced per test."""
    from core.kernel.site import Site, create_site

    folder = create_site(tmp_path_factory.mktemp("template") / "site")
    site = Site(folder, extra_plugins=list(crbm_extra_plugins))
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
def make_site(tmp_path, database_url, request, crbm_extra_plugins):
    """Boot a site (shipped and installed plugins + ``crbm_extra_plugins``), schema synced:
    ``make_site(folder_name="site", sync=True, extra_plugins=(), **site_kwargs)``. Closed
    after the test. ``extra_plugins`` (a test's own plugin modules) only add tables: the
    site still starts from the synced copy or baseline, and only theirs are made."""
    from core.kernel.site import Site, create_site

    sites = []

    def make(folder_name: str = "site", sync: bool = True, extra_plugins=(), **kwargs):
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
            capture = default and not extra_plugins and not ServerState.baseline.captured
        site = Site(folder, extra_plugins=[*crbm_extra_plugins, *extra_plugins], **kwargs)
        if sync or (copied is not None and schema_shape(site.tables) != copied):
            site.sync_schema()
        if capture:
            ServerState.baseline.capture(site.engine)
            ServerState.shape = schema_shape(site.tables)
        sites.append(site)
        return site

    yield make
    from core import jobs

    for site in sites:
        jobs.close(site)  # its queue's own connections (procrastinate's pool on PostgreSQL)
        site.close()


@pytest.fixture
def site(make_site):
    """A booted site on a fresh database, schema synced."""
    return make_site()


@pytest.fixture
def admin(site):
    """An administrator of ``site``, user name ``admin``, password ``ADMIN_PASSWORD``."""
    from core.kernel.users import create_user

    return create_user(site, "admin", ADMIN_PASSWORD, is_admin=True)


# -- the web UI and the REST API ---------------------------------------------------------------

def csrf_of(page_html: str) -> str:
    """The CSRF token of a page's form (``_csrf``), to post it back."""
    return re.search(r'name="_csrf" value="([^"]+)"', page_html).group(1)


@pytest.fixture
def web(site, admin):
    """The web UI as ``admin``, signed in: a Starlette ``TestClient``; ``web.csrf`` is the
    token forms post as ``_csrf``."""
    with signed_in(site, admin.username) as client:
        yield client


@contextlib.contextmanager
def signed_in(site, username: str, password: str = ADMIN_PASSWORD):
    """A Starlette ``TestClient`` of ``site``'s web UI signed in as ``username``;
    ``client.csrf`` is the token forms post as ``_csrf``."""
    from starlette.testclient import TestClient

    from core.web.app import create_app

    with TestClient(create_app(site)) as client:
        login = client.get("/login")
        response = client.post("/login", data={"_csrf": csrf_of(login.text),
                                               "username": username, "password": password})
        assert response.status_code == 200, f"signing in as {username!r} failed"
        client.csrf = csrf_of(response.text)
        yield client


def bearer(site, user) -> dict:
    """``{"Authorization": "Bearer ..."}`` for ``user``, as the token endpoint would issue."""
    from core.apps.oauth import oauth

    token = oauth.issue_access_token(site, user.id)["access_token"]
    return {"Authorization": f"Bearer {token}"}


def api_client(site):
    """A ``TestClient`` of the site's app on https (the API refuses plain http from
    anywhere but this machine, and the TestClient is not "here"); server errors come back
    as 500 responses rather than exceptions."""
    from starlette.testclient import TestClient

    from core.web.app import create_app

    return TestClient(create_app(site), base_url=API_BASE_URL, raise_server_exceptions=False)


# -- outgoing mail: a real SMTP server that keeps what it receives -----------------------------

SMTP_HOST = "127.0.0.1"
SMTP_FROM_ADDRESS = "crm@example.com"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now): for a test server, or to see
    what "nobody answers" looks like."""
    with socket.socket() as s:
        s.bind((SMTP_HOST, 0))
        return s.getsockname()[1]


def smtp_settings(port: int, **overrides) -> dict:
    """The site's ``smtp`` setting for a plain (no TLS, no login) server on 127.0.0.1:
    ``site.set_setting("smtp", smtp_settings(port))``; ``overrides`` change or add keys."""
    return {"host": SMTP_HOST, "port": port, "starttls": False, "ssl": False,
            "from_address": SMTP_FROM_ADDRESS, **overrides}


@dataclasses.dataclass
class Envelope:
    """Who a received message came from and went to, as the SMTP dialogue said (Bcc
    recipients are here, not in the headers)."""
    mail_from: str
    rcpt_tos: list[str]


class SmtpInbox:
    """What a test SMTP server received, in arrival order: ``messages`` (parsed,
    ``policy.default``) and their ``envelopes``; ``port`` is where it listens. It is the
    aiosmtpd handler too (``handle_DATA``)."""

    def __init__(self):
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Envelope] = []
        self.port: int | None = None

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(Envelope(envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def settings(self, **overrides) -> dict:
        """The site's ``smtp`` setting pointing at this server (see ``smtp_settings``)."""
        return smtp_settings(self.port, **overrides)


@contextlib.contextmanager
def smtp_server(**controller_kwargs):
    """A real SMTP server (aiosmtpd) on 127.0.0.1 and a free port for the ``with`` block,
    yielding its ``SmtpInbox``. ``controller_kwargs`` go to aiosmtpd's ``Controller``
    (e.g. ``authenticator=..., auth_required=True, auth_require_tls=False``)."""
    # imported here: aiosmtpd is a test extra, and this module loads in every pytest run
    # where CRBM is installed, mail tests or not
    from aiosmtpd.controller import Controller

    inbox = SmtpInbox()
    controller = Controller(inbox, hostname=SMTP_HOST, port=free_port(), **controller_kwargs)
    controller.start()
    inbox.port = controller.port
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def smtp_inbox(site):
    """A real SMTP server for the test, ``site``'s ``smtp`` setting pointed at it (from
    ``SMTP_FROM_ADDRESS``): an ``SmtpInbox`` with the ``messages`` it received."""
    with smtp_server() as inbox:
        site.set_setting("smtp", inbox.settings())
        yield inbox
