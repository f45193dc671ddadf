"""The pack loader: atomic installs, ownership, removal, refusals of bad packs."""
from __future__ import annotations

import hashlib
import io
import json
import re
import stat
import zipfile

import pytest
import sqlalchemy as sa
import yaml

from core.apps.packs.pack_archive import PackError, build, check_offline
from core.apps.packs.packs import APPLY_STEPS, CHECK_STEPS

REWARDS = """
name: rewards
label: Rewards
label_singular: Reward
fields:
  name: {type: name, required: true}
  points: {type: integer}
relationships: {}
"""
LOYALTY_TIER = "name: accounts\nfields:\n  loyalty_tier: {type: text, label: Loyalty tier}\n"


def zip_of(files: dict[str, str | bytes], infos: list[zipfile.ZipInfo] = ()) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
        for info in infos:
            archive.writestr(info, b"x")
    return out.getvalue()


def manifest(name="loyalty", kind="module", version="1.0.0", **extra) -> str:
    return yaml.safe_dump({"name": name, "kind": kind, "version": version,
                           "title": name.capitalize(), **extra})


def module_pack(name="loyalty", version="1.0.0", files=None, **extra) -> bytes:
    files = files if files is not None else {"modules/rewards.yaml": REWARDS,
                                             "extends/accounts.yaml": LOYALTY_TIER}
    return zip_of({"pack.yaml": manifest(name, "module", version, **extra), **files})


# -- what "nothing changed" means: files, registry, schema and data ------------------------

def snapshot(site) -> dict:
    files = {}
    for path in sorted(site.folder.rglob("*")):
        rel = path.relative_to(site.folder).as_posix()
        if path.is_file() and not rel.startswith(("crbm.db", "packs/.uploads", "packs/.exports")):
            files[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    inspector = sa.inspect(site.engine)
    schema, data = {}, {}
    with site.engine.connect() as conn:
        for table in sorted(inspector.get_table_names()):
            columns = inspector.get_columns(table)
            schema[table] = ([(c["name"], str(c["type"]), c["nullable"]) for c in columns],
                             sorted((i["name"], tuple(i["column_names"]))
                                    for i in inspector.get_indexes(table)))
            if table != "crbm_pack_history":  # failures are recorded there, by design
                rows = conn.execute(sa.text(f"SELECT * FROM {table}")).all()
                data[table] = sorted(json.dumps(list(r), default=str) for r in rows)
    registry = {name: m.definition for name, m in site.registry.modules.items()}
    return {"files": files, "schema": schema, "data": data, "registry": registry,
            "dropdowns": site.registry.dropdowns, "packs": [p.name for p in site.enabled_packs]}


def assert_unchanged(site, before, ignore=()):
    after = snapshot(site)
    for table in ignore:
        after["data"].pop(table, None)
        before = {**before, "data": {k: v for k, v in before["data"].items() if k != table}}
    for key in before:
        assert after[key] == before[key], f"{key} changed"


def last_history(site) -> dict:
    return site.packs.history(1)[0]


# -- a good pack, all the way round --------------------------------------------------------

def test_install_then_uninstall_keeps_data_and_reinstall_restores_it(site, admin):
    report = site.packs.install(module_pack(), admin, "loyalty-1.0.0.zip")
    assert [s.name for s in report.steps] == [*CHECK_STEPS, *APPLY_STEPS, "cleanup"]
    assert all(s.ok for s in report.steps)
    assert "rewards" in site.registry.modules
    assert "loyalty_tier" in site.registry.module("accounts").fields
    reward = site.records.create("rewards", {"name": "Gold", "points": 500}, admin)
    assert ("table", "rewards", "loyalty") in site.packs.objects()
    assert ("column", "accounts.loyalty_tier", "loyalty") in site.packs.objects()

    plan = site.packs.plan_removal("loyalty", "uninstall")
    assert "keep table rewards and its data (restored on reinstall)" in plan.changes
    site.packs.remove("loyalty", "uninstall", admin)
    assert "rewards" not in site.registry.modules
    assert not site.pack_folder("loyalty").exists()
    assert "rewards" in sa.inspect(site.engine).get_table_names()

    site.packs.install(module_pack(), admin, "loyalty-1.0.0.zip")
    assert site.records.get("rewards", reward["id"], admin)["points"] == 500
    actions = [(h["action"], h["outcome"]) for h in site.packs.history()]
    assert actions == [("install", "ok"), ("uninstall", "ok"), ("install", "ok")]
    assert site.packs.history()[0]["username"] == "admin"


def test_purge_exports_the_data_then_drops_what_the_pack_owned(site, admin):
    before = snapshot(site)
    site.packs.install(module_pack(), admin, "loyalty.zip")
    site.records.create("rewards", {"name": "Gold", "points": 500}, admin)
    plan = site.packs.plan_removal("loyalty", "purge")
    assert "drop table rewards (1 rows)" in plan.changes
    assert "drop column accounts.loyalty_tier" in plan.changes
    report = site.packs.remove("loyalty", "purge", admin)
    with zipfile.ZipFile(report.export) as exported:
        assert "Gold" in exported.read("rewards.csv").decode()
        assert "loyalty_tier" in exported.read("accounts.loyalty_tier.csv").decode()
    assert site.packs.objects("loyalty") == []
    after = snapshot(site)
    assert after["schema"] == before["schema"]
    assert after["registry"] == before["registry"]
    assert not site.pack_folder("loyalty").exists()


def test_disable_hides_and_keeps_everything_enable_brings_it_back(site, admin):
    site.packs.install(module_pack(), admin, "loyalty.zip")
    site.records.create("rewards", {"name": "Gold"}, admin)
    site.packs.remove("loyalty", "disable", admin)
    assert "rewards" not in site.registry.modules
    assert site.pack_folder("loyalty").is_dir()
    assert site.packs.get("loyalty").status == "disabled"
    site.packs.enable("loyalty", admin)
    assert site.records.count("rewards", admin) == 1


def test_upgrade_adds_and_a_downgrade_or_the_same_version_is_refused(site, admin):
    site.packs.install(module_pack(), admin, "loyalty-1.0.0.zip")
    newer = {"modules/rewards.yaml": REWARDS.replace("points: {type: integer}",
                                                     "points: {type: integer}\n  expires: {type: date}"),
             "extends/accounts.yaml": LOYALTY_TIER}
    report = site.packs.install(module_pack(version="1.1.0", files=newer), admin, "loyalty-1.1.zip")
    assert "add column rewards.expires (DATE)" in report.changes
    assert "expires" in site.registry.module("rewards").fields
    assert site.packs.history(1)[0]["action"] == "upgrade"
    before = snapshot(site)
    with pytest.raises(PackError, match="version 1.0.0 would downgrade the installed 1.1.0"):
        site.packs.install(module_pack(), admin, "loyalty-1.0.0.zip")
    with pytest.raises(PackError, match="version 1.1.0 is already installed"):
        site.packs.install(module_pack(version="1.1.0", files=newer), admin, "again.zip")
    assert_unchanged(site, before)


def test_two_packs_claiming_one_object_the_second_is_refused_naming_the_owner(site, admin):
    site.packs.install(module_pack(), admin, "loyalty.zip")
    before = snapshot(site)
    rival = module_pack("rival", files={"extends/accounts.yaml": LOYALTY_TIER})
    with pytest.raises(PackError) as refused:
        site.packs.install(rival, admin, "rival.zip")
    assert "field accounts.loyalty_tier: already belongs to pack loyalty" in str(refused.value)
    assert refused.value.step == "compatibility"
    assert_unchanged(site, before)


def test_a_pack_another_requires_cannot_be_removed(site, admin):
    site.packs.install(module_pack(), admin, "loyalty.zip")
    needs = module_pack("points", files={}, requires={"packs": {"loyalty": ">=1.0"}})
    site.packs.install(needs, admin, "points.zip")
    for mode in ("disable", "uninstall", "purge"):
        plan = site.packs.plan_removal("loyalty", mode)
        assert [str(p) for p in plan.problems] == ["loyalty: required by points; remove it first"]
        with pytest.raises(PackError, match="required by points"):
            site.packs.remove("loyalty", mode, admin)
    assert site.packs.get("loyalty").status == "enabled"


def test_only_administrators_install(site, admin):
    from core.kernel.users import create_user
    clerk = create_user(site, "clerk", "correct horse battery")
    before = snapshot(site)
    with pytest.raises(PackError, match="only administrators install packs") as refused:
        site.packs.install(module_pack(), clerk, "loyalty.zip")
    assert refused.value.step == "permission"
    assert_unchanged(site, before)


# -- fault injection: every step fails in turn, nothing changes ----------------------------

@pytest.mark.parametrize("step", [*CHECK_STEPS, *APPLY_STEPS])
def test_a_failure_at_any_step_leaves_the_site_exactly_as_before(site, admin, step):
    site.packs.install(module_pack("base", files={"extends/accounts.yaml": LOYALTY_TIER}),
                       admin, "base.zip")  # an upgrade below must restore this pack's files
    site.records.create("accounts", {"name": "Acme", "loyalty_tier": "gold"}, admin)
    before = snapshot(site)
    upgrade = module_pack("base", "2.0.0", files={
        "extends/accounts.yaml": LOYALTY_TIER + "  since: {type: date}\n",
        "modules/rewards.yaml": REWARDS})
    site.packs.fault = step
    with pytest.raises(PackError) as failed:
        site.packs.install(upgrade, admin, "base-2.0.0.zip")
    site.packs.fault = None
    assert failed.value.step == step
    assert_unchanged(site, before)
    record = last_history(site)
    expected = ("base-2.0.0.zip", None) if step == "unpack" else ("base", "2.0.0")  # unread yet
    assert (record["action"], record["pack"], record["version"]) == ("install", *expected)
    assert record["outcome"] == ("refused" if step in CHECK_STEPS else "failed")
    # and the site still works, and the same upgrade goes through afterwards
    site.packs.install(upgrade, admin, "base-2.0.0.zip")
    assert {"since", "loyalty_tier"} <= set(site.registry.module("accounts").fields)


CODE_PACK_HOOK = '''
from core.kernel.hookspecs import hookimpl


@hookimpl
def crbm_pack_installed(site, pack, connection):
    if pack.name == "hooked":
        from datetime import datetime

        from sqlalchemy import text  # bound values so every database takes the boolean
        connection.execute(text("INSERT INTO rewards (id, name, deleted, version, created_at, modified_at) "
                                "VALUES ('r1', 'Seed', :no, 1, :at, :at)"),
                           {"no": False, "at": datetime(2026, 1, 1)})
        raise RuntimeError("the pack's own install hook failed")
'''


def test_a_code_pack_whose_install_hook_fails_is_rolled_back_and_unhooked(site, admin):
    site.set_setting("allow_code_packs", True)
    before = snapshot(site)
    pack = module_pack("hooked", files={"modules/rewards.yaml": REWARDS, "plugin.py": CODE_PACK_HOOK})
    with pytest.raises(PackError, match="the pack's own install hook failed") as failed:
        site.packs.install(pack, admin, "hooked.zip")
    assert failed.value.step == "hook"
    assert_unchanged(site, before)
    assert not site.plugin_manager.has_plugin("pack:hooked")


# -- bad packs: each refused with a clear message, nothing changed -------------------------

def symlink_entry() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("templates/evil.html")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> bytes:
    """A pack whose one file inflates to 1 GB (about 1 MB zipped)."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("pack.yaml", manifest("bomb", "theme", provides={"theme": {"label": "B"}}))
        with archive.open("static/theme.css", "w", force_zip64=True) as stream:
            block = b"\0" * 2**24
            for _ in range(64):
                stream.write(block)
    return path.read_bytes()


def bad_packs(bomb):
    yield "path traversal", zip_of({"pack.yaml": manifest(), "../evil.yaml": "x"}), \
        "../evil.yaml: refused: path goes outside the pack (..)"
    yield "absolute path", zip_of({"pack.yaml": manifest(), "/etc/cron.d/x": "x"}), \
        "refused: absolute path"
    yield "symlink", zip_of({"pack.yaml": manifest("tt", "theme",
                                                   provides={"theme": {"label": "T"}})},
                            [symlink_entry()]), \
        "templates/evil.html: refused: symbolic links are not allowed in packs"
    yield "bomb", bomb, "compression bomb"
    yield "missing manifest", zip_of({"modules/rewards.yaml": REWARDS}), \
        "no pack.yaml at the root of the archive"
    yield "not a zip", b"PK\x03\x04 not really", "not a zip file"
    yield "unknown kind", zip_of({"pack.yaml": manifest(kind="plugin")}), \
        "$.kind: 'plugin' is not one of ['module', 'language', 'theme', 'holiday', 'personality', 'upgrade']"
    yield "unknown key", zip_of({"pack.yaml": manifest(licence="MIT")}), \
        "unknown key 'licence'"
    yield "bad version", zip_of({"pack.yaml": manifest(version="one")}), \
        "'one' is not a PEP 440 version"
    yield "file outside the kind", zip_of({"pack.yaml": manifest("tt", "theme",
                                                                 provides={"theme": {"label": "T"}}),
                                           "modules/x.yaml": REWARDS}), \
        "modules/x.yaml: not allowed in a theme pack"
    yield "unmet requirement", module_pack(requires={"packs": {"points": ">=2"}}), \
        "needs pack points >=2, which is not installed"
    yield "CRBM too old", module_pack(requires={"crbm": ">=99"}), \
        "needs CRBM >=99; this is CRBM"
    yield "code pack", module_pack(files={"plugin.py": "x = 1\n"}), \
        ("contains Python code (plugin.py); this site does not accept code packs. An "
         "administrator can allow them with the site setting allow_code_packs")
    yield "invalid module", module_pack(files={"modules/rewards.yaml": "name: rewards\nlabel: R\n"
                                               "fields: {name: {type: sparkles}}\n"}), \
        "modules/rewards.yaml: $.fields.name.type: unknown field type 'sparkles'"


@pytest.mark.parametrize("case", range(14))
def test_bad_packs_are_refused_with_a_clear_message_and_nothing_changes(site, admin, bomb, case):
    what, data, message = list(bad_packs(bomb))[case]
    before = snapshot(site)
    with pytest.raises(PackError) as refused:
        site.packs.install(data, admin, f"{what}.zip")
    assert message in str(refused.value), what
    assert_unchanged(site, before)
    assert last_history(site)["outcome"] == "refused"
    assert not any(site.packs.store.glob(".staging/*/*"))  # staging cleaned up


def test_a_dependency_cycle_is_refused_with_its_chain(site, admin):
    a = module_pack("alpha", files={}, requires={"packs": {"beta": ""}})
    b = module_pack("beta", files={}, requires={"packs": {"alpha": ""}})
    with pytest.raises(PackError, match=r"dependency cycle: alpha -> beta -> alpha"):
        site.packs.install_many([(a, "a.zip"), (b, "b.zip")], admin)
    assert site.packs.installed() == []


def test_a_missing_requirement_names_the_chain(site, admin):
    a = module_pack("alpha", files={}, requires={"packs": {"beta": ""}})
    b = module_pack("beta", files={}, requires={"packs": {"gamma": ">=1"}})
    with pytest.raises(PackError, match=r"missing requirement: alpha -> beta -> gamma"):
        site.packs.install_many([(a, "a.zip"), (b, "b.zip")], admin)
    assert site.packs.installed() == []


def test_packs_install_after_what_they_require(site, admin):
    a = module_pack("alpha", files={}, requires={"packs": {"beta": ">=1"}})
    b = module_pack("beta", files={"modules/rewards.yaml": REWARDS})
    reports = site.packs.install_many([(a, "a.zip"), (b, "b.zip")], admin)
    assert [str(r.manifest) for r in reports] == ["beta 1.0.0", "alpha 1.0.0"]


# -- build and validate --------------------------------------------------------------------

def test_build_is_deterministic_and_validate_reports_problems(tmp_path):
    folder = tmp_path / "loyalty"
    (folder / "modules").mkdir(parents=True)
    (folder / "pack.yaml").write_text(manifest())
    (folder / "modules" / "rewards.yaml").write_text(REWARDS)
    first = build(folder, tmp_path).read_bytes()
    assert build(folder, tmp_path).read_bytes() == first
    assert check_offline(folder) == []
    (folder / "modules" / "rewards.yaml").write_text(REWARDS.replace("relationships: {}",
        "relationships: {owner: {kind: one_to_many, module: nowhere, field: x}}"))
    problems = [str(p) for p in check_offline(folder)]
    assert "modules/rewards.yaml: $.relationships.owner.module: module 'nowhere' does not exist" \
        in problems
    (folder / "modules" / "rewards.yaml").write_text(REWARDS + "colour: blue\n")
    with pytest.raises(PackError, match="Additional properties are not allowed"):
        build(folder, tmp_path)  # build checks the files first


# -- a code pack's Python runs only when it is really installed, and only where allowed ----

def marker_code(marker) -> str:
    """A plugin.py that leaves ``marker`` behind the moment it is imported."""
    return f"from pathlib import Path\n\nPath({str(marker)!r}).write_text('ran')\n"


def test_checking_or_refusing_a_code_pack_never_imports_its_code(site, admin, tmp_path):
    marker = tmp_path / "ran"
    pack = module_pack("coded", files={"modules/rewards.yaml": REWARDS,
                                       "plugin.py": marker_code(marker)})
    report = site.packs.check(pack, admin, "coded.zip")
    assert report.steps[-1].name == "permission" and not report.steps[-1].ok
    with pytest.raises(PackError, match="contains Python code"):
        site.packs.install(pack, admin, "coded.zip")
    assert not marker.exists()

    site.set_setting("allow_code_packs", True)
    report = site.packs.check(pack, admin, "coded.zip")  # allowed: still only checked
    assert report.ok and "create table rewards" in report.changes
    assert not marker.exists()
    site.packs.install(pack, admin, "coded.zip")  # the real install runs it
    assert marker.read_text() == "ran"
    assert site.plugin_manager.has_plugin("pack:coded")


def test_the_command_line_never_runs_a_refused_code_pack(tmp_path, database_url):
    from click.testing import CliRunner

    import cli

    runner = CliRunner()

    def crbm(*args):
        return runner.invoke(cli.main, ["--site", str(tmp_path / "cli-site"), *args])

    assert crbm("init", "--database-url", database_url).exit_code == 0
    marker = tmp_path / "ran"
    source = tmp_path / "coded"
    (source / "modules").mkdir(parents=True)
    (source / "pack.yaml").write_text(manifest("coded"))
    (source / "modules" / "rewards.yaml").write_text(REWARDS)
    (source / "plugin.py").write_text(marker_code(marker))
    built = str(build(source, tmp_path))

    for target in (str(source), built):
        checked = crbm("validate", target)
        assert checked.exit_code == 0, checked.output
    dry = crbm("pack", "install", "--dry-run", built)
    assert dry.exit_code == 1 and "contains Python code (plugin.py)" in dry.output
    refused = crbm("pack", "install", built)
    assert refused.exit_code == 1 and "Refused at step permission" in refused.output
    assert not marker.exists()

    assert crbm("settings", "set", "allow_code_packs", "true").exit_code == 0
    dry = crbm("pack", "install", "--dry-run", built)
    assert dry.exit_code == 0 and "create table rewards" in dry.output
    assert not marker.exists()
    installed = crbm("pack", "install", built)
    assert installed.exit_code == 0, installed.output
    assert marker.read_text() == "ran"


# -- what a pack's modules may be called, and changing a module takes an explicit overlay --

@pytest.mark.parametrize("name, reason", [
    ("select", "'select' is reserved: an SQL word or a system field's name"),
    ("drop", "'drop' is reserved: an SQL word or a system field's name"),
    ("users", "'users' is reserved: the kernel's users are not a module"),
    ("webhooks", "'webhooks' is reserved: a fixed path of the web pages or the API"),
    ("crbm_notes", "'crbm_notes' is reserved: names starting with crbm_ are the kernel's tables"),
])
def test_a_pack_module_is_named_by_the_studios_rules(site, admin, tmp_path, name, reason):
    body = REWARDS.replace("\nname: rewards\n", f"\nname: {name}\n")
    before = snapshot(site)
    with pytest.raises(PackError) as refused:
        site.packs.install(module_pack(files={"modules/rewards.yaml": body}), admin, "x.zip")
    assert refused.value.step == "validate"
    assert [str(p) for p in refused.value.problems] == [f"modules/rewards.yaml: $.name: {reason}"]
    assert_unchanged(site, before)
    with pytest.raises(Exception, match=re.escape(reason)):  # the Studio says the same
        site.studio.create_module(admin, name, "Things")

    folder = tmp_path / "loyalty"  # and so does `crbm validate`, offline
    (folder / "modules").mkdir(parents=True)
    (folder / "pack.yaml").write_text(manifest())
    (folder / "modules" / "rewards.yaml").write_text(body)
    assert any(reason in str(p) for p in check_offline(folder))


REDEFINED = ("modules/accounts.yaml: $.name: module 'accounts' exists already "
             "(plugins/accounts/modules/accounts.yaml); a pack changes a module it does not "
             "define with an overlay in extends/accounts.yaml")


def test_redefining_a_module_takes_an_explicit_overlay(site, admin, tmp_path):
    whole = "name: accounts\nlabel: Accounts\nfields: {name: {type: name, required: true}}\n"
    before = snapshot(site)
    for files in ({"modules/accounts.yaml": whole}, {"modules/accounts.yaml": LOYALTY_TIER}):
        with pytest.raises(PackError) as refused:
            site.packs.install(module_pack(files=files), admin, "loyalty.zip")
        assert [str(p) for p in refused.value.problems] == [REDEFINED]
        assert refused.value.step == "validate"
    with pytest.raises(PackError) as refused:
        site.packs.install(module_pack(files={"extends/nothing.yaml": LOYALTY_TIER.replace(
            "accounts", "nothing")}), admin, "loyalty.zip")
    assert [str(p) for p in refused.value.problems] == [(
        "extends/nothing.yaml: $.name: there is no module 'nothing' to extend (a new module "
        "goes in modules/)")]
    assert_unchanged(site, before)
    assert last_history(site)["outcome"] == "refused"

    folder = tmp_path / "loyalty"  # `crbm validate` tells the same before any site sees it
    (folder / "modules").mkdir(parents=True)
    (folder / "pack.yaml").write_text(manifest())
    (folder / "modules" / "accounts.yaml").write_text(LOYALTY_TIER)
    assert [str(p) for p in check_offline(folder)] == [REDEFINED]
    (folder / "extends").mkdir()
    (folder / "modules" / "accounts.yaml").rename(folder / "extends" / "accounts.yaml")
    assert check_offline(folder) == []

    site.packs.install(module_pack(), admin, "loyalty.zip")  # extends/accounts.yaml: fine
    assert "loyalty_tier" in site.registry.module("accounts").fields
    assert site.registry.module("accounts").label == "Accounts"


def test_a_personality_making_a_module_names_it_by_the_same_rules(site, admin):
    at = "2020-01-01T00:00:00+00:00"
    body = {"name": "select", "label": "Picks", "fields": {"name": {"type": "name"}}}
    layer = {"format": 1, "exported_at": at, "items": [
        {"kind": "module", "name": "select", "modified_at": at, "body": body}]}
    pack = zip_of({"pack.yaml": manifest("brand", "personality"),
                   "customizations.yaml": yaml.safe_dump(layer)})
    before = snapshot(site)
    with pytest.raises(PackError) as refused:
        site.packs.install(pack, admin, "brand.zip")
    assert str(refused.value) == ("customizations.yaml: module 'select': 'select' is reserved: "
                                  "an SQL word or a system field's name")
    assert_unchanged(site, before)


# -- an install killed mid-way (kill -9) is put back and recorded at the next start --------

KILLED_AT = """
import os, sys
from pathlib import Path

from core.kernel.site import Site

site = Site(Path(sys.argv[1]))
step = sys.argv[2]


def die(name):  # a real kill -9, at a known point of the install: no timing involved
    if name == step:
        os.kill(os.getpid(), 9)


site.packs._fail_if_injected = die
if step == "after commit":
    site.after_sync = lambda: die(step)
site.packs.install(Path(sys.argv[3]).read_bytes(), None, "loyalty.zip")
"""


def kill_install_at(site, step: str, pack: bytes, tmp_path) -> None:
    import subprocess
    import sys
    from pathlib import Path

    source = tmp_path / "loyalty.zip"
    source.write_bytes(pack)
    done = subprocess.run([sys.executable, "-c", KILLED_AT, str(site.folder), step, str(source)],
                          cwd=Path(__file__).resolve().parents[3], capture_output=True,
                          check=False)
    assert done.returncode == -9, done.stderr.decode()[-2000:]


def debris(site) -> list[str]:
    return sorted(p.relative_to(site.packs.store).as_posix()
                  for kind in (".staging", ".trash") for p in (site.packs.store / kind).glob("*"))


@pytest.mark.parametrize("step", ["validate", "files", "schema", "hook", "history"])
def test_an_install_killed_mid_way_is_put_back_and_recorded_at_the_next_start(
        make_site, site, admin, tmp_path, step):
    kill_install_at(site, step, module_pack(), tmp_path)
    assert debris(site)  # what the killed process left: its staging folder, journal, lock
    if step not in ("validate", "files"):  # "files" dies before the move
        assert site.pack_folder("loyalty").is_dir()

    booted = make_site()  # the next start: a site boot (the pack commands boot one too)
    assert debris(booted) == []
    assert not booted.pack_folder("loyalty").exists()
    assert "rewards" not in booted.registry.modules and booted.packs.installed() == []
    record = booted.packs.history(1)[0]
    assert (record["action"], record["pack"], record["outcome"]) == \
        ("install", "loyalty", "interrupted")
    assert (f"interrupted at step {step}: the process stopped; the pack's files were put back"
            if step != "validate" else "interrupted during its checks") in record["detail"]

    booted.packs.install(module_pack(), admin, "loyalty.zip")  # a retry installs cleanly
    assert "rewards" in booted.registry.modules
    booted.records.create("rewards", {"name": "Gold", "points": 5}, admin)
    assert debris(booted) == []


def test_an_upgrade_killed_mid_way_gets_the_old_version_back(make_site, site, admin, tmp_path):
    site.packs.install(module_pack(), admin, "loyalty.zip")
    newer = module_pack(version="2.0.0", files={
        "modules/rewards.yaml": REWARDS.replace("points: {type: integer}",
                                                "points: {type: integer}\n  expires: {type: date}"),
        "extends/accounts.yaml": LOYALTY_TIER})
    old_files = {p.relative_to(site.pack_folder("loyalty")): p.read_bytes()
                 for p in site.pack_folder("loyalty").rglob("*") if p.is_file()}
    kill_install_at(site, "registry", newer, tmp_path)
    assert any(p.startswith(".trash/") for p in debris(site))  # 1.0.0 moved aside

    booted = make_site()
    assert debris(booted) == []
    assert {p.relative_to(booted.pack_folder("loyalty")): p.read_bytes()
            for p in booted.pack_folder("loyalty").rglob("*") if p.is_file()} == old_files
    assert booted.packs.get("loyalty").version == "1.0.0"
    assert "expires" not in booted.registry.module("rewards").fields
    record = booted.packs.history(1)[0]
    assert (record["action"], record["version"], record["outcome"]) == \
        ("upgrade", "2.0.0", "interrupted")
    booted.packs.install(newer, admin, "loyalty-2.0.0.zip")
    assert "expires" in booted.registry.module("rewards").fields


def test_an_install_killed_after_it_committed_only_loses_its_debris(make_site, site, tmp_path):
    kill_install_at(site, "after commit", module_pack(), tmp_path)
    booted = make_site()
    assert debris(booted) == []
    assert booted.packs.get("loyalty").status == "enabled"
    assert "rewards" in booted.registry.modules
    assert [(h["action"], h["outcome"]) for h in booted.packs.history()] == [("install", "ok")]


def test_an_install_still_running_is_left_alone(site, admin, tmp_path):
    from core.apps.packs.packs import Attempt

    running = Attempt.start(site.packs._scratch("staging"), "install", "x.zip", admin)
    running.folder.mkdir()
    running.write(pack="loyalty", version="1.0.0", step="schema", target="loyalty",
                  had_target=False, backup=None)
    site.pack_folder("loyalty").mkdir()
    assert site.packs.recover_interrupted() == []  # its lock is held: it is not debris
    assert running.folder.is_dir() and site.pack_folder("loyalty").is_dir()
    running.close()
    assert debris(site) == []


def test_enabling_a_code_pack_again_needs_code_packs_allowed(site, admin, tmp_path):
    marker = tmp_path / "ran"
    site.set_setting("allow_code_packs", True)
    site.packs.install(module_pack("coded", files={"modules/rewards.yaml": REWARDS,
                                                   "plugin.py": marker_code(marker)}),
                       admin, "coded.zip")
    site.packs.remove("coded", "disable", admin)
    marker.unlink()
    site.set_setting("allow_code_packs", False)
    with pytest.raises(PackError, match=r"contains Python code \(plugin.py\)") as refused:
        site.packs.enable("coded", admin)
    assert refused.value.step == "permission"
    assert not marker.exists() and not site.plugin_manager.has_plugin("pack:coded")
    assert site.packs.get("coded").status == "disabled"
    assert last_history(site)["outcome"] == "refused"
