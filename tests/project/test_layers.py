"""The layer contracts (setup.cfg ``[importlinter]``): the kernel imports no web, API,
application or plugin code; core's web, API and applications import no plugin; plugins
import only the kernel's public surface. ``lint-imports`` checks them (.ci/run); these
tests run it, and prove on a copy of the tree that a kernel -> web import breaks it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint(cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the tree in cwd
    return subprocess.run([str(LINT_IMPORTS), "--config", str(cwd / "setup.cfg")], check=False,
                          cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


def copy_tree(target: Path) -> Path:
    """The Python sources and setup.cfg only (no fonts, templates or data). The plugins'
    tests come along: setup.cfg's ignore_imports names them, and an ignore that matches
    nothing is an error."""
    keep = shutil.ignore_patterns("*.ttf", "*.ttc", "*.mo", "*.po", "*.pot", "static",
                                  "templates", "__pycache__")
    for package in ("core", "plugins"):
        shutil.copytree(REPO / package, target / package, ignore=keep)
    shutil.copy(REPO / "setup.cfg", target / "setup.cfg")
    return target


def test_the_layer_contracts_hold():
    result = lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_kernel_module_importing_the_web_ui_breaks_them(tmp_path):
    tree = copy_tree(tmp_path / "tree")
    kernel_module = tree / "core" / "kernel" / "crypto.py"
    kernel_module.write_text(kernel_module.read_text() + "\nfrom core.web import pages\n")
    result = lint(tree)
    assert result.returncode != 0
    assert "The kernel imports no web, API, application or plugin code BROKEN" in result.stdout
    assert "core.kernel.crypto -> core.web.pages" in result.stdout


def test_a_plugin_importing_the_web_views_breaks_them(tmp_path):
    tree = copy_tree(tmp_path / "tree")
    plugin = tree / "plugins" / "accounts" / "plugin.py"
    plugin.write_text(plugin.read_text() + "\nfrom core.web import views\n")
    result = lint(tree)
    assert result.returncode != 0
    assert "Plugins import only the kernel's public surface" in result.stdout
    assert "plugins.accounts.plugin -> core.web.views" in result.stdout
