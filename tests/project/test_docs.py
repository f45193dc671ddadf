"""The plugin-author guide's example module must stay valid as the schema evolves."""
import re
from pathlib import Path

from core.apps.field_types.types import TYPES
from core.kernel import plugins
from core.kernel.plugins import SHIPPED_PLUGINS, discover_shipped
from core.kernel.registry import build_registry, plugin_layers, read_folder


def test_the_plugin_guide_example_builds(tmp_path):
    blocks = re.findall(r"```yaml\n(.*?)```", Path("docs/plugins.md").read_text(), re.DOTALL)
    (tmp_path / "modules").mkdir()
    (tmp_path / "dropdowns").mkdir()
    (tmp_path / "modules" / "assets.yaml").write_text(blocks[0])
    (tmp_path / "dropdowns" / "assets.yaml").write_text(blocks[1])
    problems = []
    # beside the shipped plugins (the example relates to accounts and contacts)
    shipped = [SHIPPED_PLUGINS / name for name, _ in discover_shipped()]
    base, extensions = plugin_layers(shipped, problems)
    base.documents += read_folder(tmp_path, problems)
    # the shipped modules' line items are a plugin's module feature (crbm_module_features)
    from plugins.line_items.plugin import LineItemsFeature
    # and the field types shipped plugins bring (email_templates' module_choice)
    manager, _ = plugins.load_plugins()
    types = [*TYPES, *(t for found in manager.hook.crbm_field_types(site=None) for t in found
                       if t.name not in {b.name for b in TYPES})]
    registry = build_registry([base, extensions], types, features=[LineItemsFeature()])
    assert not problems
    assets = registry.module("assets")
    assert {"cost_currency", "location_city", "account_phone"} <= set(assets.fields)
