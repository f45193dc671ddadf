"""The typed hooks of issue 16 (core.kernel.hookspecs, results in core.kernel.hooktypes):
each is called at its documented point and a plugin implementing it (the ``hook_probe``
test plugin) has the documented effect."""
from __future__ import annotations

import re
import time

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from starlette.testclient import TestClient

import cli
from core import jobs
from core.jobs import scheduler
from core.jobs.worker import Worker
from core.kernel.hooktypes import SiteService
from core.kernel.site import Site, SiteError
from core.web.app import create_app
from tests.plugins.hook_probe import plugin as probe
from tests.plugins.kitchen_sink import plugin as kitchen_sink

PASSWORD = "correct horse battery"


@pytest.fixture
def probed(site):
    """The test's site booted again, with the probe plugin."""
    probe.CALLS.clear()
    booted = Site(site.folder, database_url=site.database_url,
                  extra_plugins=[kitchen_sink, probe])
    yield booted
    booted.close()


def signed_in(site) -> TestClient:
    client = TestClient(create_app(site))
    login = client.get("/login")
    csrf = login.text.split('name="_csrf" value="', 1)[1].split('"', 1)[0]
    response = client.post("/login", data={"_csrf": csrf, "username": "admin",
                                           "password": PASSWORD})
    assert response.status_code == 200
    return client


def test_startup_is_called_once_the_site_has_booted(probed):
    assert probe.CALLS == [("startup", True)]


def test_schema_synced_follows_every_sync(probed):
    probed.sync_schema()
    assert ("schema_synced", True) in probe.CALLS


def test_an_applications_own_tables_are_synced_with_the_kernels(probed):
    assert "probe_marks" in probed.check_schema().pending[0]  # not there yet: to create
    probed.sync_schema()
    assert probed.check_schema().pending == []
    with probed.engine.begin() as conn:
        conn.execute(probed.tables.tables["probe_marks"].insert().values(mark="seen"))
        assert conn.execute(sa.text("select mark from probe_marks")).scalar() == "seen"
    # the shipped applications keep theirs the same way (OAuth, webhooks)
    assert {"crbm_oauth_tokens", "crbm_webhook_deliveries"} <= set(probed.tables.tables)


def test_site_services_are_attached_by_name_and_made_once(probed):
    assert probed.probe == {"made_for": probed.folder.name}
    assert probed.probe is probed.probe
    assert type(probed.packs).__name__ == "Packs"  # the packs application's, the same way
    with pytest.raises(AttributeError):
        probed.no_such_service  # noqa: B018


def test_two_services_of_one_name_stop_boot(probed):
    class Twin:
        from core.kernel.hookspecs import hookimpl

        @staticmethod
        @hookimpl
        def crbm_site_services(site):
            return [SiteService("probe", lambda s: None)]

    probed.plugin_manager.register(Twin, "twin")
    with pytest.raises(SiteError, match="two site services named 'probe'"):
        probed._read_services()


def test_access_predicates_are_collected_by_name(probed):
    assert probed.access_predicates["shiny"].modules == ("gadgets",)


def test_scheduled_tasks_and_job_handlers_run_on_a_worker(probed, monkeypatch):
    monkeypatch.setenv("CRBM_JOBS_TICK", "0.05")
    assert {"hook_probe.tick", "webhooks.deliver"} <= set(scheduler.tasks(probed))
    assert "hook_probe.job" in jobs.handlers(probed)
    worker = Worker(probed).start()
    try:
        jobs.enqueue(probed, "hook_probe.job", {"n": 1})
        deadline = time.monotonic() + 10
        while not ({"tick", "job"} <= {c[0] for c in probe.CALLS}) and \
                time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
    assert ("job", {"n": 1}) in probe.CALLS
    assert "tick" in {c[0] for c in probe.CALLS}


def test_jinja_environment_navigation_and_list_actions_show_on_the_pages(probed, admin):
    client = signed_in(probed)
    assert client.get("/probe").text == "HI!"  # the plugin's filter in the environment
    page = client.get("/m/gadgets").text
    # the top bar: an entry without an icon of its own gets the plain one
    assert re.search(r'<a class="nav-entry" href="/probe" title="Probe desk">\s*<svg[^>]*>'
                     r'<use href="[^"]*#circle"></use></svg><span class="nav-label">Probe desk'
                     r'</span></a>', page)
    assert page.index('title="Calendar"') < page.index('title="Probe desk"')
    assert 'formaction="/probe/polish" data-confirm="Polish them?">Polish</button>' in page
    assert "/probe/polish" not in client.get("/m/gadget_parts").text


def test_cli_commands_are_added_to_crbm(monkeypatch):
    monkeypatch.setattr(cli.main, "extra_plugins", (probe,))
    monkeypatch.delitem(cli.main.__dict__, "plugin_commands", raising=False)
    try:
        result = CliRunner().invoke(cli.main, ["probe"])
        assert result.exit_code == 0, result.output
        assert result.output == "probe here\n"
        assert "probe" in CliRunner().invoke(cli.main, ["--help"]).output
    finally:
        cli.main.__dict__.pop("plugin_commands", None)


def test_the_applications_admin_links_keep_their_place_on_the_admin_page(site, admin):
    page = signed_in(site).get("/admin").text
    order = ["/admin/users", "/admin/teams", "/admin/roles", "/admin/access", "/admin/studio",
             "/admin/packs", '/admin/api"', "/admin/api/clients", "/admin/webhooks",
             "/admin/mail"]
    places = [page.index(f'href="{url}') for url in order]
    assert places == sorted(places)
