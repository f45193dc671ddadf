"""Upgrades & Customization through real HTTP requests: upload a pack, see its checks and
what it would change, install it, remove it (disable, uninstall, purge) through the
confirmation page, and read the history. Refused packs change nothing; only
administrators get in."""
import datetime as dt
import html
import io
import re
import shutil
import zipfile

import pytest
import yaml

from core.apps.packs import web as admin_packs
from core.apps.packs.pack_archive import build
from core.kernel import customizations
from core.kernel.i18n import Formatter, Preferences
from core.kernel.users import create_user
from tests.apps.admin.test_web_admin import (
    PASSWORD,
    open_client,
    text_of,
)
from tests.pack_util import SHIPPED

pytestmark = pytest.mark.usefixtures("quick_hashes")  # conftest: cheap argon2, many sign-ins

VEHICLES = {"name": "vehicles", "label": "Vehicles", "label_singular": "Vehicle",
            "tab_group": "Fleet", "icon": "car",
            "fields": {"name": {"type": "name", "label": "Plate", "required": True}}}


def pack_zip(tmp_path, name: str = "fleet", kind: str = "module", version: str = "1.0.0",
             files: dict | None = None, **manifest) -> tuple[str, bytes]:
    """Build a pack from a folder (pack.yaml + ``files``); returns (file name, bytes)."""
    folder = tmp_path / "src" / f"{name}-{version}"
    folder.mkdir(parents=True)
    (folder / "pack.yaml").write_text(yaml.safe_dump(
        {"name": name, "kind": kind, "version": version, "title": name.title() + " pack",
         "description": "A pack for the tests", "author": "Tests", **manifest}))
    for rel, content in (files or {}).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    out = tmp_path / "built"
    out.mkdir(exist_ok=True)
    path = build(folder, out)
    return path.name, path.read_bytes()


def fleet(tmp_path, **kwargs) -> tuple[str, bytes]:
    return pack_zip(tmp_path, files={"modules/vehicles.yaml": VEHICLES}, **kwargs)


@pytest.fixture
def client(site, admin):
    client = open_client(site, "admin")
    yield client
    client.__exit__(None, None, None)


def send(client, filename: str, data: bytes):
    return client.post("/admin/packs/upload", data={"_csrf": client.csrf},
                       files={"pack": (filename, data, "application/zip")},
                       follow_redirects=False)


def post(client, url: str, data: dict | None = None):
    return client.post(url, data={"_csrf": client.csrf, **(data or {})}, follow_redirects=False)


def upload(client, pack: tuple[str, bytes]) -> str:
    """Upload and return the check page's URL."""
    response = send(client, *pack)
    assert response.status_code == 303, text_of(response)[:500]
    return response.headers["location"]


def install(client, pack: tuple[str, bytes], **form):
    return post(client, upload(client, pack) + "/install", form)


def steps(response) -> dict[str, str]:
    """step label -> its result as shown ("✓ Passed", "✗ Failed", "– Not run")."""
    rows = re.findall(r'<tr data-step="[^"]+" data-state="[^"]+">\s*<td[^>]*>(.*?)</td>\s*'
                      r'<td[^>]*>(.*?)</td>', response.text, re.DOTALL)
    return {label.strip(): " ".join(html.unescape(re.sub(r"<[^>]+>", "", r)).split())
            for label, r in rows}


def radios(page_html: str) -> list[str]:
    return re.findall(r'<input type="radio" name="mode"[^>]*>', page_html)


def status_of(site, name: str) -> str | None:
    pack = site.packs.get(name)
    return pack.status if pack else None


# -- the happy path -----------------------------------------------------------------------

def test_upload_check_install_open_and_uninstall(client, site, tmp_path):
    assert client.get("/m/vehicles").status_code == 404
    index = client.get("/admin")
    assert 'href="/admin/packs"' in index.text and "Upgrades & Customization" in text_of(index)

    check_url = upload(client, fleet(tmp_path))
    assert re.fullmatch(r"/admin/packs/upload/[0-9a-f]{32}", check_url)
    assert "fleet-1.0.0.zip" in text_of(client.get("/admin/packs"))  # queued

    check = client.get(check_url)
    assert check.status_code == 200
    assert steps(check) == {"Unpack": "✓ Passed", "Validate": "✓ Passed",
                            "Compatibility": "✓ Passed", "Permission": "✓ Passed"}
    seen = text_of(check)
    assert "What the install would change" in seen
    assert "new module: vehicles" in seen and "create table vehicles" in seen
    assert 'action="' + check_url + '/install"' in check.text
    assert "overwrite_newer" not in check.text  # no conflicts, no checkbox
    assert client.get("/m/vehicles").status_code == 404  # the check changed nothing

    result = post(client, check_url + "/install")
    assert result.status_code == 200, text_of(result)[:800]
    shown = steps(result)
    assert list(shown) == ["Unpack", "Permission", "Validate", "Compatibility", "Files",
                           "Registry", "Database schema", "Pack hook", "History", "Cleanup"]
    assert set(shown.values()) == {"✓ Passed"}
    assert "Installed: Fleet pack" in text_of(result)
    assert 'href="/m/vehicles"' in result.text

    module = client.get("/m/vehicles")  # the next request sees the new module
    assert module.status_code == 200 and "Vehicles" in text_of(module)
    listing = client.get("/admin/packs")
    row = re.search(r'<tr data-pack="fleet">(.*?)</tr>', listing.text, re.DOTALL).group(1)
    row_text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", row)).split())
    assert "Fleet pack" in row_text and "1.0.0" in row_text and "Enabled" in row_text
    assert "admin" in row_text  # installed by
    assert "fleet-1.0.0.zip" not in text_of(listing)  # no longer waiting
    assert client.get(check_url).status_code == 404

    removal = client.get("/admin/packs/fleet/remove")
    assert removal.status_code == 200
    assert len(radios(removal.text)) == 3
    assert not [r for r in radios(removal.text) if "checked" in r]  # nothing pre-selected
    assert all("required" in r for r in radios(removal.text))
    seen = text_of(removal)
    assert "delete the pack's files: packs/fleet" in seen
    assert "keep table vehicles and its data" in seen
    assert "drop table vehicles (0 rows)" in seen

    refused = post(client, "/admin/packs/fleet/remove")  # no mode chosen
    assert refused.status_code == 400
    assert "Choose what to do: disable, uninstall or purge." in text_of(refused)
    assert status_of(site, "fleet") == "enabled"
    assert post(client, "/admin/packs/fleet/remove", {"mode": "explode"}).status_code == 400
    assert status_of(site, "fleet") == "enabled"

    done = post(client, "/admin/packs/fleet/remove", {"mode": "uninstall"})
    assert done.status_code == 200
    assert "Pack fleet was uninstalled." in text_of(done)
    assert client.get("/m/vehicles").status_code == 404
    assert status_of(site, "fleet") == "uninstalled"
    assert "Uninstalled (data kept)" in text_of(client.get("/admin/packs"))


def test_disable_then_enable_keeps_the_data(client, site, admin, tmp_path):
    assert install(client, fleet(tmp_path)).status_code == 200
    site.records.create("vehicles", {"name": "AB-123"}, admin)

    done = post(client, "/admin/packs/fleet/remove", {"mode": "disable"})
    assert "Pack fleet was disabled." in text_of(done)
    assert client.get("/m/vehicles").status_code == 404
    listing = client.get("/admin/packs")
    assert 'href="/admin/packs/fleet/enable"' in listing.text

    confirm = client.get("/admin/packs/fleet/enable")
    assert confirm.status_code == 200 and "Enable Fleet pack" in text_of(confirm)
    assert status_of(site, "fleet") == "disabled"  # opening the page changed nothing
    enabled = post(client, "/admin/packs/fleet/enable")
    assert enabled.status_code == 303
    after = client.get(enabled.headers["location"])
    assert "Pack fleet was enabled." in text_of(after)
    assert "AB-123" in text_of(client.get("/m/vehicles"))

    again = post(client, "/admin/packs/fleet/enable")  # enabled already: refused, said why
    assert again.status_code == 400 and "is not a disabled pack" in text_of(again)


def test_purge_offers_the_data_export(client, site, admin, tmp_path):
    assert install(client, fleet(tmp_path)).status_code == 200
    site.records.create("vehicles", {"name": "ZZ-999"}, admin)
    assert "drop table vehicles (1 rows)" in text_of(client.get("/admin/packs/fleet/remove"))

    done = post(client, "/admin/packs/fleet/remove", {"mode": "purge"})
    assert done.status_code == 200
    assert "Pack fleet was purged." in text_of(done)
    link = re.search(r'href="(/admin/packs/exports/fleet-1\.0\.0-\d+\.zip)"', done.text).group(1)
    assert "Download fleet-1.0.0-" in text_of(done)
    download = client.get(link)
    assert download.status_code == 200
    with zipfile.ZipFile(io.BytesIO(download.content)) as exported:
        assert "ZZ-999" in exported.read("vehicles.csv").decode()
    assert status_of(site, "fleet") is None
    assert 'data-pack="fleet"' not in client.get("/admin/packs").text
    assert client.get("/admin/packs/fleet/remove").status_code == 404
    assert client.get("/admin/packs/exports/..%2Fsite.yaml").status_code == 404
    assert client.get("/admin/packs/exports/nothing-1.zip").status_code == 404


def test_the_next_page_shows_an_upgraded_theme(client, site, tmp_path):
    """Pages are built afresh after an install: the theme's stylesheet link carries the
    new version at once."""
    site.set_setting("theme", "theme_nocturne")
    for version in ("1.0.0", "1.1.0"):
        folder = tmp_path / version / "theme_nocturne"
        shutil.copytree(SHIPPED / "theme_nocturne", folder)
        manifest = yaml.safe_load((folder / "pack.yaml").read_text())
        (folder / "pack.yaml").write_text(yaml.safe_dump({**manifest, "version": version}))
        built = build(folder, tmp_path / version)
        assert install(client, (built.name, built.read_bytes())).status_code == 200
        page_ = client.get("/admin/packs")
        assert f'href="/theme/theme_nocturne/theme.css?v={version}"' in page_.text


# -- refusals -----------------------------------------------------------------------------

def evil_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("pack.yaml", "name: evil\nkind: module\nversion: '1.0'\ntitle: Evil\n")
        archive.writestr("../evil", "escaped")
    return out.getvalue()


def test_an_unsafe_zip_is_refused_with_its_reason(client, site):
    response = send(client, "evil.zip", evil_zip())
    assert response.status_code == 400
    seen = text_of(response)
    assert "evil.zip was refused; nothing was changed." in seen
    assert "../evil : refused: path goes outside the pack (..)" in seen
    assert not (site.folder.parent / "evil").exists()
    assert site.packs.uploads() == [] and site.packs.installed(True) == []
    history = text_of(client.get("/admin/packs/history"))
    assert "Refused" in history and "path goes outside the pack" in history


def test_a_file_that_is_not_a_zip_or_no_file_is_refused(client, site):
    response = send(client, "notes.zip", b"just some text")
    assert response.status_code == 400 and "not a zip file" in text_of(response)
    empty = client.post("/admin/packs/upload", data={"_csrf": client.csrf},
                        follow_redirects=False)
    assert empty.status_code == 400
    assert "Choose a pack file (.zip) to upload." in text_of(empty)
    assert site.packs.uploads() == []


def test_a_code_pack_is_refused_where_code_packs_are_not_allowed(client, site, tmp_path):
    pack = pack_zip(tmp_path, files={"modules/vehicles.yaml": VEHICLES, "plugin.py": "# hooks\n"})
    check_url = upload(client, pack)  # readable, so queued; the check says no
    check = client.get(check_url)
    assert steps(check) == {"Unpack": "✓ Passed", "Permission": "✗ Failed",
                            "Validate": "– Not run", "Compatibility": "– Not run"}
    seen = text_of(check)
    assert "This pack cannot be installed." in seen
    assert "contains Python code (plugin.py)" in seen and "allow_code_packs" in seen
    assert "/install" not in check.text  # no Install button

    forced = post(client, check_url + "/install")  # posting anyway is refused the same
    assert forced.status_code == 400
    seen = text_of(forced)
    assert 'The install stopped at the step "Permission".' in seen
    assert "Nothing was changed on this site." in seen and "contains Python code" in seen
    assert steps(forced)["Permission"] == "✗ Failed" and steps(forced)["Files"] == "– Not run"
    assert site.packs.installed(True) == [] and "vehicles" not in site.registry.modules
    assert client.get("/m/vehicles").status_code == 404
    assert client.get(check_url).status_code == 200  # still queued, to retry or discard

    discarded = post(client, check_url + "/discard")
    assert discarded.status_code == 303
    assert "was discarded" in text_of(client.get("/admin/packs"))
    assert site.packs.uploads() == [] and client.get(check_url).status_code == 404


def test_a_refused_code_pack_never_runs_and_an_allowed_one_runs_only_at_install(client, site,
                                                                              tmp_path):
    marker = tmp_path / "ran"  # what the pack's plugin.py writes the moment it is imported
    code = f"from pathlib import Path\n\nPath({str(marker)!r}).write_text('ran')\n"
    pack = pack_zip(tmp_path, files={"modules/vehicles.yaml": VEHICLES, "plugin.py": code})
    check_url = upload(client, pack)
    assert not marker.exists()
    check = client.get(check_url)
    assert steps(check)["Permission"] == "✗ Failed" and "contains Python code" in text_of(check)
    assert not marker.exists()
    assert post(client, check_url + "/install").status_code == 400
    assert not marker.exists()

    site.set_setting("allow_code_packs", True)
    check = client.get(check_url)
    assert set(steps(check).values()) == {"✓ Passed"}
    assert "create table vehicles" in text_of(check)
    assert not marker.exists()  # checked, not run
    assert post(client, check_url + "/install").status_code == 200
    assert marker.read_text() == "ran"


def test_a_removal_another_pack_needs_is_refused(client, site, tmp_path):
    assert install(client, fleet(tmp_path)).status_code == 200
    extra = pack_zip(tmp_path, name="fleet_extra", files={"extends/vehicles.yaml": {
        "name": "vehicles", "fields": {"colour": {"type": "text", "label": "Colour"}}}},
        requires={"packs": {"fleet": ">=1.0"}})
    assert install(client, extra).status_code == 200

    page_ = client.get("/admin/packs/fleet/remove")
    assert "required by fleet_extra" in text_of(page_)
    assert all("disabled" in r for r in radios(page_.text))  # no choice left to make
    assert "Apply the chosen removal" not in text_of(page_)
    refused = post(client, "/admin/packs/fleet/remove", {"mode": "uninstall"})
    assert refused.status_code == 400
    assert "Nothing was changed on this site." in text_of(refused)
    assert "required by fleet_extra" in text_of(refused)
    assert status_of(site, "fleet") == "enabled"


def test_personality_conflicts_need_an_explicit_overwrite(client, site, tmp_path):
    site.studio.save_items(None, [customizations.Item(
        "module", "accounts", {"name": "accounts", "label": "Companies"})])
    old = dt.datetime(2020, 1, 1, tzinfo=dt.UTC).isoformat()
    pack = pack_zip(tmp_path, name="brand", kind="personality", files={
        "customizations.yaml": {"format": 1, "exported_at": old, "items": [
            {"kind": "module", "name": "accounts", "modified_at": old,
             "body": {"name": "accounts", "label": "Clients"}}]}})
    check_url = upload(client, pack)
    check = client.get(check_url)
    assert "Changed on this site after the pack was made" in text_of(check)
    box = re.search(r'<input type="checkbox" name="overwrite_newer"[^>]*>', check.text).group(0)
    assert "checked" not in box

    refused = post(client, check_url + "/install")
    assert refused.status_code == 400
    assert "confirm overwriting newer changes" in text_of(refused)
    assert site.registry.modules["accounts"].label == "Companies"

    done = post(client, check_url + "/install", {"overwrite_newer": "1"})
    assert done.status_code == 200, text_of(done)[:800]
    assert site.registry.modules["accounts"].label == "Clients"


def test_an_upload_above_the_limit_is_refused_before_it_is_read(client, site, monkeypatch,
                                                                 tmp_path):
    monkeypatch.setattr(admin_packs, "MAX_UPLOAD_REQUEST", 4000)
    response = send(client, "big.zip", b"x" * 8000)
    assert response.status_code == 413
    assert "larger than 50 MB" in text_of(response)

    def chunks():  # no Content-Length: the body is counted as it arrives
        yield b"--x\r\n"
        for _ in range(10):
            yield b"y" * 1000

    streamed = client.post("/admin/packs/upload", content=chunks(),
                           headers={"content-type": "multipart/form-data; boundary=x",
                                    "x-csrf-token": client.csrf}, follow_redirects=False)
    assert streamed.status_code == 413
    assert site.packs.uploads() == []
    assert send(client, *fleet(tmp_path)).status_code == 303  # a pack under the limit


# -- who may, and bad addresses -----------------------------------------------------------

def send_raw(client, filename: bytes, data: bytes):
    """An upload whose file name is exactly these bytes (a browser would clean it up)."""
    body = (b'--B\r\nContent-Disposition: form-data; name="_csrf"\r\n\r\n' +
            client.csrf.encode() + b'\r\n--B\r\nContent-Disposition: form-data; name="pack"; '
            b'filename="' + filename + b'"\r\nContent-Type: application/zip\r\n\r\n' + data +
            b"\r\n--B--\r\n")
    return client.post("/admin/packs/upload", content=body, follow_redirects=False,
                       headers={"content-type": "multipart/form-data; boundary=B"})


@pytest.mark.parametrize("filename, shown, reason", [
    (b"..", "..", "the file name is a path, not the name of a file"),
    (b"/", "/", "the file name is a path, not the name of a file"),
    (b".", ".", "the file name is a path, not the name of a file"),
    (b"a/../../x.zip", "a/../../x.zip", "the file name is a path, not the name of a file"),
    (b"..\\..\\x.zip", "..\\..\\x.zip", "the file name is a path, not the name of a file"),
    (b"a\x00b.zip", "a?b.zip", "the file name contains control characters"),
    ("\u202egpj.zip".encode(), "?gpj.zip", "the file name contains control characters"),
    (b"x" * 300 + b".zip", "x" * 100, "the file name is longer than 255 characters"),
])
def test_a_hostile_file_name_is_refused_and_nothing_is_written(client, site, tmp_path,
                                                               filename, shown, reason):
    def outside_the_pack_store():
        return sorted(p for p in tmp_path.rglob("*") if p.is_file() and site.packs.store
                      not in p.parents and not p.name.startswith("crbm.db"))

    data = fleet(tmp_path)[1]
    before = outside_the_pack_store()
    response = send_raw(client, filename, data)
    assert response.status_code == 400
    seen = text_of(response)
    assert f"{shown} was refused; nothing was changed." in seen and reason in seen
    assert "Traceback" not in seen
    assert site.packs.uploads() == []
    assert outside_the_pack_store() == before
    assert client.get("/admin/packs").status_code == 200
    history = client.get("/admin/packs/history")
    assert history.status_code == 200 and reason in text_of(history)


def test_an_old_browsers_windows_path_is_taken_for_its_file_name(client, site, tmp_path):
    check_url = upload(client, ("C:\\Users\\me\\fleet-1.0.0.zip", fleet(tmp_path)[1]))
    assert [u["filename"] for u in site.packs.uploads()] == ["fleet-1.0.0.zip"]
    assert client.get(check_url).status_code == 200


def test_only_administrators_get_in(site, admin, tmp_path):
    create_user(site, "dana", PASSWORD)
    dana = open_client(site, "dana")
    try:
        for url in ("/admin/packs", "/admin/packs/history", "/admin/packs/fleet/remove"):
            assert dana.get(url).status_code == 403, url
        refused = send(dana, *fleet(tmp_path))
        assert refused.status_code == 403
        assert "You are not allowed to open this page." in text_of(refused)
        assert site.packs.uploads() == []
    finally:
        dana.__exit__(None, None, None)


def test_unknown_packs_and_uploads_are_not_found(client, site):
    for url in ("/admin/packs/nothing/remove", "/admin/packs/nothing/enable",
                "/admin/packs/Bad%20Name/remove", "/admin/packs/upload/0123abcd",
                "/admin/packs/upload/not-an-id", "/admin/packs/exports/x.zip"):
        assert client.get(url).status_code == 404, url
    assert post(client, "/admin/packs/upload/0123abcd/install").status_code == 404
    assert post(client, "/admin/packs/upload/0123abcd/discard").status_code == 404
    assert post(client, "/admin/packs/nothing/remove", {"mode": "purge"}).status_code == 404
    assert "No pack called nothing is installed." in text_of(
        client.get("/admin/packs/nothing/remove"))


# -- history ------------------------------------------------------------------------------

def test_history_lists_what_happened(client, site, tmp_path):
    assert install(client, fleet(tmp_path)).status_code == 200
    assert install(client, fleet(tmp_path, version="1.1.0")).status_code == 200
    post(client, "/admin/packs/fleet/remove", {"mode": "disable"})
    post(client, "/admin/packs/fleet/remove", {"mode": "purge"})
    send(client, "notes.zip", b"not a zip")

    listing = client.get("/admin/packs")
    assert 'href="/admin/packs/history"' in listing.text
    history = client.get("/admin/packs/history")
    assert history.status_code == 200
    rows = [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", row)).split()) for row in
            re.findall(r"<tr data-outcome=[^>]*>(.*?)</tr>", history.text, re.DOTALL)]
    # newest first: who, action, pack, version, outcome, detail
    assert "admin Upload notes.zip Refused" in rows[0] and "not a zip file" in rows[0]
    assert "admin Purge fleet 1.1.0 Done data exported to fleet-1.1.0-" in rows[1]
    assert "admin Disable fleet 1.1.0 Done" in rows[2]
    assert "admin Upgrade fleet 1.1.0 Done" in rows[3] and "upgraded from 1.0.0" in rows[3]
    assert "admin Upload fleet 1.1.0 Done fleet-1.1.0.zip" in rows[4]
    assert "admin Install fleet 1.0.0 Done" in rows[5]
    assert "admin Upload fleet 1.0.0 Done fleet-1.0.0.zip" in rows[6]
    when = Formatter(Preferences()).datetime(site.packs.history(1)[0]["at"])
    assert rows[0].startswith(" ".join(when.split()) + " admin")  # the time, in the reader's format


def test_an_install_killed_mid_way_is_put_back_by_the_next_check_and_shows_in_history(
        client, site, tmp_path):
    from click.testing import CliRunner

    import cli
    from tests.apps.packs.test_packs import debris, kill_install_at

    name, data = fleet(tmp_path)
    kill_install_at(site, "schema", data, tmp_path)  # another worker, killed with -9
    assert site.pack_folder("fleet").is_dir() and debris(site)

    check_url = upload(client, (name, data))  # this worker runs on; its next check recovers
    assert set(steps(client.get(check_url)).values()) == {"✓ Passed"}
    assert debris(site) == [] and not site.pack_folder("fleet").exists()
    history = text_of(client.get("/admin/packs/history"))
    assert "Install fleet 1.0.0 Interrupted interrupted at step schema" in " ".join(
        re.sub(r"<[^>]+>", " ", history).split())
    listed = CliRunner().invoke(cli.main, ["--site", str(site.folder), "pack", "history"])
    assert "install    fleet 1.0.0  interrupted  interrupted at step schema" in listed.output

    assert post(client, check_url + "/install").status_code == 200  # the retry goes through
    assert client.get("/m/vehicles").status_code == 200
