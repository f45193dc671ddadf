"""Plugin manifests (plugin.yaml): checked by schema at boot and by `crbm validate`; a
missing, disabled or out-of-range dependency, an unsupported CRBM version and a misspelt
hook each stop boot with one line naming the file and the reason; plugins can be disabled
(kept on disk with their data) and enabled; glue registers only with its other plugin."""
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import cli
from core.apps.packs.pack_archive import check_offline
from core.kernel import plugins
from core.kernel.plugins import PluginError
from core.kernel.site import Site, create_site
from core.kernel.users import create_user
from tests.plugins.manifests import (
    future_crbm,
    misspelt_hook,
    needs_missing,
    needs_newer,
    with_glue,
)
from tests.plugins.manifests.with_glue import glue_accounts

HERE = Path(__file__).resolve().parents[1] / "plugins" / "manifests"


@pytest.mark.parametrize("name", [n for n, _ in plugins.discover_shipped()])
def test_every_shipped_plugin_has_a_valid_manifest_naming_only_shipped_plugins(name):
    path = plugins.SHIPPED_PLUGINS / name / "plugin.yaml"
    assert plugins.manifest_problems(path) == []
    manifest = plugins.read_manifest(path.parent, name, "?")
    shipped = {n for n, _ in plugins.discover_shipped()}
    assert set(manifest.requires) | set(manifest.optional_requires) <= shipped - {name}
    module = __import__(f"plugins.{name}.plugin", fromlist=["x"])
    assert manifest.version == module.__version__


@pytest.mark.parametrize("module, line", [
    (misspelt_hook, (f"{HERE}/misspelt_hook/__init__.py: plugin 'misspelt_hook' implements hook "
                    "'crbm_befor_save', which is not a CRBM hook (see core/kernel/hookspecs.py)")),
    (needs_missing, (f"{HERE}/needs_missing/plugin.yaml: $.requires.warehouses: requires plugin "
                    "'warehouses', which is not installed")),
    (needs_newer, (f"{HERE}/needs_newer/plugin.yaml: $.requires.accounts: requires accounts "
                  ">=2.0, but 0.1.0 is installed")),
    (future_crbm, (f"{HERE}/future_crbm/plugin.yaml: $.crbm: supports CRBM >=99, this is CRBM "
                  "0.1.0")),
])
def test_boot_stops_with_one_line_naming_the_file_and_reason(tmp_path, database_url, module,
                                                             line, monkeypatch):
    folder = create_site(tmp_path / "site", database_url)
    with pytest.raises(PluginError) as refused:
        Site(folder, extra_plugins=[module])
    assert str(refused.value) == line
    # the CLI: exit status 1 and that line, no traceback
    monkeypatch.setattr(cli, "open_site", lambda ctx: Site(ctx.obj, extra_plugins=[module]))
    result = CliRunner().invoke(cli.main, ["--site", str(folder), "db", "check"])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {line}"


def test_a_manifest_breaking_the_schema_is_refused_at_boot_and_by_validate(tmp_path):
    copy = tmp_path / "accounts"
    shutil.copytree(plugins.SHIPPED_PLUGINS / "accounts", copy)
    text = (copy / "plugin.yaml").read_text()
    (copy / "plugin.yaml").write_text(text + "requires: {contacts: banana}\nflavour: 1\n")
    problems = [str(p) for p in check_offline(copy)]
    assert "plugin.yaml: $: Additional properties are not allowed ('flavour' was " \
           "unexpected)" in problems
    (copy / "plugin.yaml").write_text(text + "requires: {contacts: banana}\n")
    assert [str(p) for p in check_offline(copy)] == [
        "plugin.yaml: $.requires.contacts: 'banana' is not a version range (e.g. >=1.0,<2)"]
    with pytest.raises(PluginError, match=r"accounts/plugin.yaml: \$.requires.contacts: "
                                          r"'banana' is not a version range"):
        plugins.read_manifest(copy, "accounts", "?")


def test_validate_names_an_overlay_on_a_module_no_plugin_defines(tmp_path):
    copy = tmp_path / "quotes"
    shutil.copytree(plugins.SHIPPED_PLUGINS / "quotes", copy)
    (copy / "extends" / "warehouses.yaml").write_text("name: warehouses\nadd: {filters: [x]}\n")
    assert [str(p) for p in check_offline(copy)] == [
        "extends/warehouses.yaml: $.name: no plugin defines a module named 'warehouses'"]


def test_glue_is_registered_only_while_its_other_plugin_is_active(make_site):
    site = make_site()  # a synced database, then a site with the glue plugin
    glued = Site(site.folder, extra_plugins=[with_glue])
    plugin = next(p for p in glued.plugins if p.name == "with_glue")
    assert plugin.glue == ("tests.plugins.manifests.with_glue.glue_accounts",)
    glue_accounts.CALLS.clear()
    user = create_user(glued, "glue-admin", "correct horse battery", is_admin=True)
    glued.records.create("accounts", {"name": "Acme"}, user)
    assert glue_accounts.CALLS == ["Acme"]
    glued.disable_plugin("accounts", with_dependents=True)
    assert glued.plugin_manager.get_plugin(f"glue:{plugin.glue[0]}") is None
    assert "accounts" not in glued.registry.modules


def test_disable_refuses_while_required_and_keeps_the_data(make_site):
    site = make_site()
    admin = create_user(site, "admin", "correct horse battery", is_admin=True)
    acme = site.records.create("accounts", {"name": "Acme"}, admin)
    with pytest.raises(PluginError, match="plugin 'quotes' is required by sales_orders: "
                                          "disable it first"):
        site.disable_plugin("quotes")
    assert site.disable_plugin("purchases") == ["purchases"]
    assert "bills" not in site.registry.modules
    assert "balance_payable" not in site.registry.module("accounts").fields
    assert site.check_schema().in_sync  # its tables and its accounts column are kept
    assert sa.inspect(site.engine).has_table("bills")
    assert "balance_payable" in {c["name"] for c in sa.inspect(site.engine).get_columns(
        "accounts")}
    assert site.records.get("accounts", acme["id"], admin)["name"] == "Acme"
    # another worker (a fresh boot) sees it disabled
    assert "purchases" not in {p.name for p in Site(site.folder).plugins}
    with pytest.raises(PluginError, match="plugin 'sales_orders' requires .*quotes.*, which "
                                          "is disabled: enable it first"):
        site.disable_plugin("quotes", with_dependents=True)
        site.enable_plugin("sales_orders")
    assert site.enable_plugin("quotes") == ["quotes"]
    assert site.enable_plugin("sales_orders") == ["sales_orders"]
    assert site.enable_plugin("purchases") == ["purchases"]
    assert site.check_schema().in_sync
    assert "bills" in site.registry.modules


def test_cli_plugins_list_disable_enable(tmp_path, database_url):
    runner = CliRunner()
    folder = tmp_path / "cli-site"

    def crbm(*args):
        return runner.invoke(cli.main, ["--site", str(folder), *args])

    assert crbm("init", "--database-url", database_url).exit_code == 0
    refused = crbm("plugins", "disable", "products")
    assert refused.exit_code == 1
    assert refused.output.strip() == (
        "Error: plugin 'products' is required by invoices, purchases, quotes, sales_orders, "
        "service_contracts: "
        "disable them first (or disable with dependents)")
    done = crbm("plugins", "disable", "quotes", "--with-dependents")
    assert done.exit_code == 0 and "Disabled quotes, sales_orders." in done.output
    listing = crbm("plugins")
    assert "quotes 0.1.0  [disabled]" in listing.output
    assert "accounts 0.1.0  [enabled]" in listing.output
    assert "requires: accounts >=0.1, contacts >=0.1" in listing.output
    assert crbm("db", "check").exit_code == 0
    assert crbm("plugins", "enable", "quotes").exit_code == 0
    assert crbm("plugins", "enable", "nothing").output.strip() == \
        "Error: no plugin named 'nothing' (see `crbm plugins`)"


def test_the_guide_s_manifest_and_overlay_examples_are_valid(tmp_path):
    import re

    from core.kernel.registry import VALIDATORS

    blocks = re.findall(r"```yml\n(.*?)```", Path("docs/plugins.md").read_text(), re.DOTALL)
    (tmp_path / "plugin.yaml").write_text(blocks[0])
    assert plugins.manifest_problems(tmp_path / "plugin.yaml") == []
    import yaml
    assert list(VALIDATORS["overlay"].iter_errors(yaml.safe_load(blocks[1]))) == []


def test_plugins_name_only_their_own_modules_and_those_of_plugins_they_declare():
    """Item 4: no plugin's modules name another plugin's module unless it requires it, and
    its overlays extend only plugins it requires or declares optional."""
    import yaml

    owner = {path.stem: name for name, _ in plugins.discover_shipped()
             for path in (plugins.SHIPPED_PLUGINS / name / "modules").glob("*.yaml")}
    for name, _ in plugins.discover_shipped():
        folder = plugins.SHIPPED_PLUGINS / name
        manifest = plugins.read_manifest(folder, name, "?")
        needed = {name, *manifest.requires}
        for path in (folder / "modules").glob("*.yaml"):
            text = yaml.safe_load(path.read_text())
            named = {spec.get("module") for spec in text.get("fields", {}).values()}
            named |= {m for spec in text.get("fields", {}).values()
                      for m in spec.get("modules", [])}
            named |= {rel["module"] for rel in text.get("relationships", {}).values()}
            plugins_named = {owner[m] for m in named - {None}}
            assert plugins_named <= needed, (path, plugins_named - needed)
        for path in (folder / "extends").glob("*.yaml"):
            target = owner[yaml.safe_load(path.read_text())["name"]]
            assert target in needed | set(manifest.optional_requires), (path, target)


def test_a_code_pack_with_a_misspelt_hook_is_refused_naming_its_file(make_site):
    from core.kernel.site import EnabledPack

    site = make_site()
    folder = site.folder / "packs" / "typo"
    folder.mkdir(parents=True)
    (folder / "plugin.py").write_text("from core.kernel.hookspecs import hookimpl\n\n\n@hookimpl\n"
                                      "def crbm_afterr_save(module, batch, user):\n    pass\n")
    pack = EnabledPack("typo", "module", {"name": "typo"}, folder)
    with pytest.raises(PluginError) as refused:
        site.reload(packs=[pack])
    assert str(refused.value) == (f"{folder / 'plugin.py'}: plugin 'pack:typo' implements hook "
                                  "'crbm_afterr_save', which is not a CRBM hook "
                                  "(see core/kernel/hookspecs.py)")
    assert not site.plugin_manager.has_plugin("pack:typo")  # the site is as it was
