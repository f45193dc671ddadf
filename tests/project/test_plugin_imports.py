"""A plugin imports another plugin's code only where its ``plugin.yaml`` declares it.

The layer contracts (setup.cfg ``[importlinter]``) keep plugins on the kernel's public
surface; this test closes the other half of the rule: ``plugins.<other>`` appears in a
plugin's imports only if ``<other>`` is in its ``requires`` or ``optional_requires`` — and
an optional one only inside a glue module registered when both are active, so a site
without the optional plugin never imports it.
"""
from __future__ import annotations

import ast
from pathlib import Path

import yaml

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


def imported_plugins(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                 else [])
        for name in names:
            parts = name.split(".")
            if parts[0] == "plugins" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_each_plugin_imports_only_the_plugins_its_manifest_declares():
    undeclared = []
    for folder in sorted(p for p in PLUGINS.iterdir() if (p / "plugin.yaml").is_file()):
        manifest = yaml.safe_load((folder / "plugin.yaml").read_text())
        required = set(manifest.get("requires") or {})
        optional = set(manifest.get("optional_requires") or {})
        glue = {str(PLUGINS.parent / (path.replace(".", "/") + ".py")): other
                for other, path in (manifest.get("glue") or {}).items()}
        for source in sorted(folder.rglob("*.py")):
            if "tests" in source.relative_to(folder).parts:
                continue  # a plugin's tests may set up whatever site they test
            for other in imported_plugins(source) - {folder.name}:
                allowed = required | ({glue[str(source)]} if str(source) in glue else set())
                if other not in allowed:
                    kind = "optional, outside its glue" if other in optional else "undeclared"
                    undeclared.append(f"{source.relative_to(PLUGINS.parent)} imports "
                                      f"plugins.{other} ({kind})")
    assert undeclared == []
