"""CRBM's own suite: the published site fixtures (``core.testing``) with the kitchen_sink
test plugin in every site, the browser fixtures, and which tests run on which database.

The fixtures — ``site``, ``admin``, ``make_site``, ``database_url``, ``quick_hashes``... —
are CRBM's pytest plugin ``core.testing`` (the ``pytest11`` entry point ``crbm``, so a
third-party plugin's suite gets the same ones); this file only overrides
``crbm_extra_plugins`` and ``site``. SQLite by default; CRBM_TEST_DATABASE_URL names a
PostgreSQL or MariaDB server to run on instead (see core/testing.py).
"""
from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from core.testing import SERVER_URL
from tests.browser import browser, page, server, viewport  # noqa: F401  (browser fixtures)
from tests.plugins.kitchen_sink import plugin as kitchen_sink

__all__ = ["SERVER_URL"]  # tests.test_access_property reads it here

# An install made before setup.cfg had the entry point lacks it: load the plugin here then
# (both at once would register it twice).
if not any(ep.value == "core.testing" for ep in entry_points(group="pytest11")):
    pytest_plugins = ["core.testing"]


def pytest_report_header(config):
    return f"CRBM database: {SERVER_URL or 'SQLite (per test)'}"


# Modules whose subject does not depend on the database: PDF layout, formulas, the registry,
# translations and catalogs, the docs, the shipped packs' contents, themes and holiday
# calendars (their installs and the preferences they store go through the same pack and
# user code that test_packs and test_web_auth run on every database), remote copies of
# backups (files to SFTP and S3 servers); and screens and file formats over records whose
# SQL other modules run on every database: vCards and iCalendar files, LDAP sign-in, the
# workflow editor and its checks, the Studio's layout and dropdown editors (the Studio's
# DDL is test_studio's and test_web_studio's), the pack pages (install and DDL:
# test_packs), sending a template, the workbook export (its query is the list's). They run
# once, on SQLite: on a server they would only repeat themselves, and CI runs the three
# suites side by side on two cores within its time budget.
DATABASE_INDEPENDENT = {"test_pdf.py", "test_formula.py", "test_docs.py", "test_registry.py",
                        "test_i18n.py", "test_i18n_templates.py", "test_lang_fr.py",
                        "test_packs_shipped.py", "test_themes.py", "test_holidays.py",
                        "test_remote.py", "test_vcard.py", "test_ical.py", "test_ldap.py",
                        "test_editor.py", "test_checks.py", "test_web_studio_layout.py",
                        "test_web_studio_lists.py", "test_send.py", "test_web_packs.py",
                        "test_export_xlsx.py"}


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


@pytest.fixture(scope="session")
def crbm_extra_plugins():
    """Every site of CRBM's own suite loads the kitchen_sink test plugin too (the published
    fixtures of ``core.testing`` boot shipped and installed plugins only)."""
    return [kitchen_sink]


@pytest.fixture(autouse=True)
def _cheap_password_hashes(request):
    """Every test of CRBM's own suite hashes passwords with cheap argon2 parameters (the
    same code path; ``quick_hashes``): an administrator per test and a sign-in per web test
    cost ~0.3 s of argon2 each at the real parameters, minutes over the suite on each of the
    three databases. A test marked ``real_hashes`` keeps the production parameters."""
    if "real_hashes" not in request.keywords:
        request.getfixturevalue("quick_hashes")


@pytest.fixture(autouse=True)
def _activity_written_when_asked(monkeypatch):
    """User activity (core/apps/activity_tracking) is noted on every request and written by
    a thread every few seconds; in the suite it is written only when a test flushes it (or
    an app shuts down): no background statement lands in a test counting statements, and
    no thread outlives its test's app."""
    from core.apps.activity_tracking import recorder

    monkeypatch.setattr(recorder, "FLUSH_SECONDS", 0)


@pytest.fixture
def site(make_site):
    kitchen_sink.RECORDER.reset()
    return make_site()


@pytest.fixture
def recorder():
    kitchen_sink.RECORDER.reset()
    yield kitchen_sink.RECORDER
    kitchen_sink.RECORDER.reset()
