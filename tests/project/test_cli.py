"""The `crbm` command as an administrator uses it."""
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

import cli
from core.kernel.records import Query
from core.kernel.site import Site, create_site
from core.kernel.users import authenticate, create_user, first_admin
from tests.pack_util import register
from tests.web.test_web_auth import csrf_of


@pytest.fixture
def crbm(tmp_path, database_url):
    runner = CliRunner()
    folder = tmp_path / "cli-site"

    def run(*args, input=None):
        return runner.invoke(cli.main, ["--site", str(folder), *args], input=input)

    run.folder = folder
    run.database_url = database_url
    return run


def walk(group, path=()):
    yield path
    for name, command in getattr(group, "commands", {}).items():
        yield from walk(command, path + (name,))


@pytest.mark.parametrize("path", list(walk(cli.main)), ids=lambda p: " ".join(p) or "crbm")
def test_every_command_has_help(path):
    result = CliRunner().invoke(cli.main, [*path, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_init_prints_a_working_admin_login(crbm):
    result = crbm("init", "--database-url", crbm.database_url)
    assert result.exit_code == 0, result.output
    password = re.search(r"password:\s+(\S+)", result.output).group(1)
    site = Site(crbm.folder)
    admin = authenticate(site, "admin", password)
    assert admin is not None and admin.is_admin
    assert authenticate(site, "admin", "wrong password") is None
    again = crbm("init", "--database-url", crbm.database_url)
    assert again.exit_code == 1 and "already holds a site" in again.output


def test_demo_loads_the_size_asked_for(crbm):
    crbm("init", "--database-url", crbm.database_url)
    result = crbm("demo", "--size", "120")
    assert result.exit_code == 0, result.output
    site = Site(crbm.folder)
    owner = first_admin(site)
    assert site.records.count("accounts", owner) == 120
    converted = site.records.count("leads", owner, Query(filters={"status": "converted"})) \
        if "leads" in site.registry.modules else 0  # a converted lead made a contact
    assert site.records.count("contacts", owner) == 240 + converted
    assert crbm("demo", "--size", "0").exit_code == 2


def register_in(folder, name):
    """Mark the pack folder written by hand as an enabled pack of the site."""
    site = Site(folder)
    register(site, {"name": name, "kind": "module", "version": "1.0", "title": name})
    site.close()


def test_db_check_and_sync_after_a_pack_adds_a_field(crbm):
    crbm("init", "--database-url", crbm.database_url)
    assert crbm("db", "check").exit_code == 0
    pack = crbm.folder / "packs" / "loyalty" / "modules"
    pack.mkdir(parents=True)
    (pack / "accounts.yaml").write_text("name: accounts\nfields: {loyalty_points: {type: integer}}\n")
    register_in(crbm.folder, "loyalty")
    check = crbm("db", "check")
    assert check.exit_code == 1
    assert "+ add column accounts.loyalty_points (BIGINT)" in check.output
    sync = crbm("db", "sync")
    assert sync.exit_code == 0 and "applied: add column accounts.loyalty_points" in sync.output
    assert crbm("db", "check").exit_code == 0


def test_invalid_metadata_is_reported_without_a_traceback(crbm):
    crbm("init", "--database-url", crbm.database_url)
    pack = crbm.folder / "packs" / "broken" / "modules"
    pack.mkdir(parents=True)
    (pack / "accounts.yaml").write_text("name: accounts\nfields: {x: {type: sparkles}}\n")
    register_in(crbm.folder, "broken")
    result = crbm("db", "check")
    assert result.exit_code == 1
    assert "broken/modules/accounts.yaml: $.fields.x.type: unknown field type 'sparkles'" in result.output
    assert "Traceback" not in result.output


def test_plugins_lists_versions_modules_and_hooks(crbm):
    crbm("init", "--database-url", crbm.database_url)
    result = crbm("plugins")
    assert result.exit_code == 0
    assert "accounts 0.1.0" in result.output and "modules: accounts" in result.output
    assert "crbm_demo_data" in result.output


def test_user_create_and_passwd(crbm):
    crbm("init", "--database-url", crbm.database_url)
    created = crbm("user", "create", "dana", "--email", "dana@example.com",
                   input="s3cret-pass\ns3cret-pass\n")
    assert created.exit_code == 0, created.output
    assert crbm("user", "create", "dana", "--password", "another-pass").exit_code == 1
    assert "at least 10" in crbm("user", "create", "eve", "--password", "short").output
    assert crbm("user", "passwd", "dana", "--password", "n3w-password").exit_code == 0
    site = Site(crbm.folder)
    assert authenticate(site, "dana", "n3w-password").username == "dana"
    assert authenticate(site, "dana", "s3cret-pass") is None
    missing = crbm("user", "passwd", "nobody", "--password", "whatever1")
    assert missing.exit_code == 1 and "no user 'nobody'" in missing.output


def test_commands_on_a_missing_site_say_what_to_do(crbm):
    result = crbm("plugins")
    assert result.exit_code == 1 and "run `crbm init` first" in result.output


def test_pack_commands_build_install_list_history_uninstall(crbm, tmp_path):
    crbm("init", "--database-url", crbm.database_url)
    folder = tmp_path / "loyalty"
    (folder / "modules").mkdir(parents=True)
    (folder / "pack.yaml").write_text("name: loyalty\nkind: module\nversion: '1.0.0'\n"
                                      "title: Loyalty\n")
    (folder / "modules" / "rewards.yaml").write_text(
        "name: rewards\nlabel: Rewards\nfields: {name: {type: name}}\n")
    assert crbm("validate", str(folder)).exit_code == 0
    built = crbm("pack", "build", str(folder), "-o", str(tmp_path))
    assert built.exit_code == 0 and "loyalty-1.0.0.zip" in built.output
    zip_path = str(tmp_path / "loyalty-1.0.0.zip")
    dry = crbm("pack", "install", "--dry-run", zip_path)
    assert dry.exit_code == 0 and "create table rewards" in dry.output
    assert crbm("pack", "list").output.strip() == "No packs installed."
    installed = crbm("pack", "install", zip_path)
    assert installed.exit_code == 0 and "Installed loyalty 1.0.0" in installed.output
    assert "ok history" in installed.output
    again = crbm("pack", "install", zip_path)
    assert again.exit_code == 1 and "version 1.0.0 is already installed" in again.output
    assert "Refused at step compatibility; nothing was changed." in again.output
    assert "loyalty" in crbm("pack", "list").output
    plan = crbm("pack", "uninstall", "loyalty", "--purge", "--dry-run")
    assert "drop table rewards (0 rows)" in plan.output
    done = crbm("pack", "uninstall", "loyalty", "--purge", "--yes")
    assert done.exit_code == 0 and "Data exported to" in done.output
    history = crbm("pack", "history").output
    assert "purge" in history and "refused" in history and "install" in history
    (folder / "modules" / "rewards.yaml").write_text("name: rewards\nlabel: R\n"
                                                     "fields: {name: {type: sparkles}}\n")
    bad = crbm("validate", str(folder))
    assert bad.exit_code == 1 and "unknown field type 'sparkles'" in bad.output
    assert "Traceback" not in bad.output


def test_serve_with_two_workers_signs_in_once_for_both(tmp_path, database_url):
    """`crbm serve --workers 2`: two worker processes, each opening the site; a browser
    signed in on one is signed in on the other (sessions are in the database)."""
    root = Path(cli.__file__).resolve().parent
    folder = create_site(tmp_path / "site", database_url)
    site = Site(folder)
    site.sync_schema()
    create_user(site, "admin", "a long enough password", is_admin=True)
    site.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, str(root / "cli.py"), "--site", str(folder), "serve",
                               "--port", str(port), "--workers", "2", "--no-scheduler"],
                              env={**os.environ, "PYTHONPATH": str(root)}, cwd=root,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
        for _ in range(300):
            try:
                workers = [pid for pid in children.read_text().split() if "resource_tracker"
                           not in Path(f"/proc/{pid}/cmdline").read_text()]
                if len(workers) == 2 and httpx.get(base + "/health").status_code == 200:
                    break
            except (httpx.TransportError, OSError):
                pass
            time.sleep(0.1)
        else:
            pytest.fail(server.stdout.read1().decode())
        with httpx.Client(base_url=base) as client:
            login = client.get("/login")
            client.post("/login", data={"_csrf": csrf_of(login.text), "username": "admin",
                                        "password": "a long enough password"})
            cookies = client.cookies
        for _ in range(6):  # a new connection each: either worker may answer
            with httpx.Client(base_url=base, cookies=cookies) as client:
                page = client.get("/m/accounts")
                assert page.status_code == 200
                assert 'action="/logout"' in page.text
    finally:
        server.terminate()
        server.wait(30)
