"""The plugin-author guide's example module must stay valid as the schema evolves."""
import re
from pathlib import Path

from core.plugins import SHIPPED_PLUGINS
from core.registry import Layer, build_registry, read_folder


def test_the_plugin_guide_example_builds(tmp_path):
    blocks = re.findall(r"```yaml\n(.*?)```", Path("docs/plugins.md").read_text(), re.DOTALL)
    (tmp_path / "modules").mkdir()
    (tmp_path / "dropdowns").mkdir()
    (tmp_path / "modules" / "assets.yaml").write_text(blocks[0])
    (tmp_path / "dropdowns" / "assets.yaml").write_text(blocks[1])
    problems = []
    documents = read_folder(tmp_path, problems)
    for plugin in ("accounts", "contacts"):
        documents += read_folder(SHIPPED_PLUGINS / plugin, problems)
    registry = build_registry([Layer("plugins", documents)])
    assert not problems
    assets = registry.module("assets")
    assert {"cost_currency", "location_city", "account_phone"} <= set(assets.fields)
