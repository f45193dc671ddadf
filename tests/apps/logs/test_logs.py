"""Structured logs, request ids, readiness, the System log page and the diagnostic bundle:
what an administrator relies on when something goes wrong — every line of a request found by
its id, an error shown to the user as a reference (never a traceback), a mark point to look
after, and a bundle for support that holds no secret."""
from __future__ import annotations

import io
import json
import logging
import types
import zipfile

import pytest
import sqlalchemy as sa
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from core.apps.logs import diagnostics, setup, system_log
from core.kernel import crypto
from core.kernel.hookspecs import hookimpl
from core.kernel.users import create_user
from core.testing import signed_in
from core.web.app import create_app


@pytest.fixture
def logged(site):
    """The site's process logging as `crbm serve` sets it up; put back afterwards."""
    before = list(logging.getLogger().handlers), logging.getLogger().level
    setup.configure(site, stream=io.StringIO())
    yield setup.log_file(site)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "crbm", False)]:
        root.removeHandler(handler)
        handler.close()
    root.handlers[:], root.level = before


def shown(page) -> str:
    """The log lines a System log page shows (not its menus)."""
    return page.text.split('id="lines-title"', 1)[1]


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_request_has_an_id_on_its_response_and_its_log_line(web, admin, logged):
    page = web.get("/")
    own = page.headers["x-request-id"]
    assert len(own) == 32
    given = web.get("/", headers={"X-Request-ID": "edge-7f3a.1"})
    assert given.headers["x-request-id"] == "edge-7f3a.1"
    forged = web.get("/", headers={"X-Request-ID": 'x" level=ERROR'})
    assert forged.headers["x-request-id"] not in ('x" level=ERROR', own)
    access = {e["request_id"]: e for e in lines(logged) if e["logger"] == "crbm.access"}
    assert access["edge-7f3a.1"]["http"] == {**access["edge-7f3a.1"]["http"], "method": "GET",
                                              "path": "/", "status": 200}
    assert access[own]["user_id"] == admin.id and access[own]["level"] == "INFO"


def raising_plugin():
    def broken(request):
        raise RuntimeError("the disk said no: /srv/secret/path")

    def fine(request):
        logging.getLogger("crbm.test").warning("working on it")
        return PlainTextResponse("ok")

    module = types.ModuleType("raising_plugin")
    module.__file__ = __file__
    module.crbm_web_routes = hookimpl(lambda site: [Route("/broken", broken),
                                                   Route("/fine", fine)])
    return module


def test_an_unexpected_error_shows_a_reference_and_logs_the_traceback_under_it(
        make_site, tmp_path):
    site = make_site(extra_plugins=[raising_plugin()])
    setup.configure(site, stream=io.StringIO())
    try:
        with TestClient(create_app(site), raise_server_exceptions=False) as client:
            page = client.get("/broken")
            api = client.get("/fine")
    finally:
        setup.configure.__globals__["logging"].getLogger().handlers[:] = [
            h for h in logging.getLogger().handlers if not getattr(h, "crbm", False)]
    request_id = page.headers["x-request-id"]
    assert page.status_code == 500
    assert request_id in page.text and "Traceback" not in page.text
    assert "the disk said no" not in page.text
    logged = lines(setup.log_file(site))
    [error] = [e for e in logged if e["level"] == "ERROR"]
    assert error["request_id"] == request_id and "the disk said no" in error["exc"]
    [warning] = [e for e in logged if e["logger"] == "crbm.test"]
    assert warning["request_id"] == api.headers["x-request-id"]


def test_ready_answers_while_the_database_does_and_503_when_it_does_not(site):
    with TestClient(create_app(site)) as client:
        assert client.get("/ready").json()["status"] == "ready"
        healthy = site.engine
        # a database nothing answers for: port 1 on this machine refuses connections
        site.engine = sa.create_engine("postgresql+psycopg://crbm@127.0.0.1:1/crbm",
                                       connect_args={"connect_timeout": 2})
        try:
            down = client.get("/ready")
            alive = client.get("/health")
        finally:
            site.engine.dispose()
            site.engine = healthy
    assert (down.status_code, down.json()) == (503, {"status": "unavailable",
                                                     "reason": "database"})
    assert alive.status_code == 200


def test_the_system_log_is_searched_filtered_by_request_and_read_since_a_mark(
        web, site, logged):
    web.get("/m/accounts")
    earlier = web.get("/m/contacts").headers["x-request-id"]
    logging.getLogger("crbm.test").error("the mail server refused us")
    page = web.get("/admin/system-log", params={"search": "mail server"})
    assert page.status_code == 200 and "the mail server refused us" in shown(page)
    assert "/m/accounts" not in shown(page)
    by_request = shown(web.get("/admin/system-log", params={"request_id": earlier}))
    assert "GET /m/contacts 200" in by_request and "/m/accounts" not in by_request
    errors = shown(web.get("/admin/system-log", params={"level": "ERROR"}))
    assert "the mail server refused us" in errors and "/m/contacts" not in errors

    marked = web.post("/admin/system-log", data={"_csrf": web.csrf, "note": "before import"},
                      follow_redirects=False)
    assert marked.status_code == 303
    web.get("/m/leads")
    after = shown(web.get("/admin/system-log", params={"since_mark": "1"}))
    assert "Mark point set by admin: before import" in after
    assert "GET /m/leads 200" in after and "/m/contacts" not in after
    assert web.post("/admin/system-log", data={"note": "x"}).status_code == 403  # no CSRF


def test_the_log_pages_are_for_administrators_only(site, logged):
    create_user(site, "clerk", "correct horse battery")
    with signed_in(site, "clerk") as clerk:
        for url in ("/admin/system-log", "/admin/diagnostics", "/admin/diagnostics/bundle"):
            assert clerk.get(url).status_code == 403, url
        assert clerk.post("/admin/system-log", data={"_csrf": clerk.csrf}).status_code == 403
    assert "Mark point" not in logged.read_text()


def test_the_diagnostic_bundle_holds_versions_schema_and_log_but_no_secret(web, site, logged):
    site.set_setting("smtp", {"host": "mail.example.com",
                              "password": crypto.seal(site, "hunter2-mail")})
    logging.getLogger("crbm.test").warning("a line for support")
    assert "log.jsonl" in web.get("/admin/diagnostics").text
    got = web.get("/admin/diagnostics/bundle")
    assert got.status_code == 200 and got.headers["content-type"] == "application/zip"
    bundle = zipfile.ZipFile(io.BytesIO(got.content))
    assert set(bundle.namelist()) == {name for name, _ in diagnostics.MEMBERS}
    versions = json.loads(bundle.read("versions.json"))
    assert versions["database"]["dialect"] == site.engine.dialect.name
    assert {"accounts", "contacts"} <= {p["name"] for p in versions["plugins"]}
    assert bundle.read("schema.txt").decode() == "The database matches the metadata.\n"
    assert "a line for support" in bundle.read("log.jsonl").decode()
    config = json.loads(bundle.read("config.json"))
    assert config["site.yaml"]["secret_key"] == diagnostics.REDACTED
    assert config["settings"]["smtp"] == {"host": "mail.example.com",
                                          "password": diagnostics.REDACTED}
    everything = b"".join(bundle.read(name) for name in bundle.namelist())
    assert site.config["secret_key"].encode() not in everything
    assert b"hunter2" not in everything and b"sealed:v1:" not in everything


def test_redaction_hides_a_database_password_and_any_sealed_value():
    assert diagnostics.redact({"database_url": "postgresql+psycopg://crm:s3cret@db/crm"}) == \
        {"database_url": "postgresql+psycopg://crm:***@db/crm"}
    assert diagnostics.redact({"webhook": {"auth": "sealed:v1:abc", "tries": 3}}) == \
        {"webhook": {"auth": diagnostics.REDACTED, "tries": 3}}
    assert diagnostics.redact({"api_token": "", "oauth": {"client_secret": "x"}}) == \
        {"api_token": "", "oauth": {"client_secret": diagnostics.REDACTED}}


def test_rotation_keeps_every_process_writing_and_the_last_files(site, logged):
    log = logging.getLogger("crbm.test")
    log.warning("before rotation")
    assert setup.rotate(logged, max_bytes=1) and not setup.rotate(logged, max_bytes=10**9)
    log.warning("after rotation")  # the handler reopened a new file
    assert "after rotation" in logged.read_text()
    assert "before rotation" in logged.with_name("crbm.log.1").read_text()
    for _ in range(setup.KEEP_ROTATED + 2):
        log.warning("filler")
        setup.rotate(logged, max_bytes=1)
    log.warning("the newest")
    assert sorted(p.name for p in logged.parent.iterdir()) == \
        ["crbm.log", *(f"crbm.log.{n}" for n in range(1, setup.KEEP_ROTATED + 1))]


def test_a_line_that_is_not_json_is_shown_as_it_is(tmp_path):
    path = tmp_path / "crbm.log"
    path.write_text('plain text from a shell script\n{"ts": "t", "level": "INFO", '
                    '"logger": "x", "msg": "structured"}\n')
    found, matched = system_log.entries(path, search="plain")
    assert matched == 1 and found[0].msg == "plain text from a shell script"
    assert system_log.entries(tmp_path / "missing.log") == ([], 0)


def test_head_on_signed_in_pages_answers_as_get(web):
    for url in ("/preferences", "/password/change", "/email/compose", "/admin/ldap"):
        got = web.get(url).status_code
        assert web.head(url).status_code == got and got < 500, url


def test_uvicorns_second_report_of_a_handled_error_is_left_out(site, logged, monkeypatch):
    # as `crbm serve` runs uvicorn (log_config=None); a test server may have set it otherwise
    for name in ("uvicorn", "uvicorn.error"):
        monkeypatch.setattr(logging.getLogger(name), "propagate", True)
        monkeypatch.setattr(logging.getLogger(name), "disabled", False)
        monkeypatch.setattr(logging.getLogger(name), "handlers", [])
    logging.getLogger("uvicorn.error").error("Exception in ASGI application")
    logging.getLogger("uvicorn.error").error("Invalid HTTP request received.")
    said = [e["msg"] for e in lines(logged)]
    assert "Invalid HTTP request received." in said
    assert "Exception in ASGI application" not in said
