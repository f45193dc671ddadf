"""The example third-party plugin (examples/crbm-example-plugin) and the published site
fixtures, from CRBM's side. Installing it into the venv, running its own tests and
uninstalling it is .ci/example-plugin's job (run by .ci/run: pip is too slow for a test);
here: CRBM publishes its fixtures as a pytest plugin, the example is packaged as a
third-party plugin (entry point, manifest, no import of CRBM's tests or non-public code),
and a site that had it and lost it — uninstalled — still boots with its database in step,
the plugin's table and rows kept."""
from __future__ import annotations

import ast
import configparser
import importlib
import importlib.util
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.kernel import plugins
from core.kernel.site import Site, create_site
from core.kernel.users import create_user

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "crbm-example-plugin"


def entry_points(setup_cfg: Path) -> dict[str, str]:
    config = configparser.ConfigParser()
    config.read(setup_cfg)
    return dict(config["options.entry_points"])


def test_crbm_publishes_its_site_fixtures_as_a_pytest_plugin():
    assert entry_points(ROOT / "setup.cfg")["pytest11"].split() == ["crbm", "=", "core.testing"]
    testing = importlib.import_module("core.testing")
    for fixture in ("site", "admin", "make_site", "database_url", "quick_hashes", "web",
                    "crbm_extra_plugins", "smtp_inbox"):
        assert callable(getattr(testing, fixture)), fixture
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert config["tool:pytest"]["testpaths"].split() == ["tests", "plugins"]  # examples/ run apart


def test_the_example_is_packaged_as_a_third_party_plugin():
    assert (EXAMPLE / "pyproject.toml").is_file()
    assert entry_points(EXAMPLE / "setup.cfg")["crbm.plugins"].split() == \
        ["loyalty", "=", "crbm_loyalty.plugin"]
    manifest = plugins.read_manifest(EXAMPLE / "crbm_loyalty", "loyalty", "0.1.0")
    assert (manifest.version, dict(manifest.requires)) == ("0.1.0", {"accounts": ">=0.1"})
    # it imports only CRBM's public surface (docs/plugins.md), never CRBM's tests
    private = ("tests", "core.web.app", "core.api.", "core.apps.studio", "plugins.")
    for path in [*EXAMPLE.glob("crbm_loyalty/**/*.py"), *EXAMPLE.glob("tests/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(private), f"{path.name}: {node.module}"
    assert not list(EXAMPLE.glob("tests/conftest.py"))  # the published fixtures suffice


@pytest.fixture
def loyalty():
    """The example's plugin module, loaded from its file: its folder is not put on the
    path, where an editable install's egg-info would register its entry point as well."""
    spec = importlib.util.spec_from_file_location(
        "crbm_loyalty_example", EXAMPLE / "crbm_loyalty" / "plugin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_site_boots_and_is_in_step_after_the_plugin_is_uninstalled(tmp_path, database_url,
                                                                     loyalty):
    folder = create_site(tmp_path / "site", database_url)
    site = Site(folder, extra_plugins=[loyalty])  # as if installed
    site.sync_schema()
    admin = create_user(site, "admin", "correct horse battery", is_admin=True)
    card = site.records.create("loyalty_cards", {"name": "L-1", "points": 700}, admin)
    assert card["tier"] == "silver"
    site.close()

    site = Site(folder)  # uninstalled: no entry point, no module, no hook
    try:
        assert "loyalty_cards" not in site.registry.modules
        assert "loyalty" not in [p.name for p in site.plugins]
        assert site.check_schema().in_sync  # its table is not ours to drop: kept
        with site.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT name, points FROM loyalty_cards")).all() == \
                [("L-1", 700)]
    finally:
        site.close()
