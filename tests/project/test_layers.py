"""The layer contracts (setup.cfg ``[importlinter]``): the kernel imports no web, API,
application or plugin code; core's web, API and applications import no plugin; plugins
import only the kernel's public surface. ``lint-imports`` checks them (.ci/run); these
tests run it, and prove on a copy of the tree that a kernel -> web import breaks it."""
from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from babel import numbers

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


# -- the kernel: small, and free of business -------------------------------------------------

KERNEL = REPO / "core" / "kernel"
KERNEL_LIMIT = 6_000  # non-blank lines (issue 16): what a newcomer reads to know the kernel


def test_the_kernel_stays_under_its_size():
    lines = sum(1 for path in KERNEL.glob("*.py")
                for line in path.read_text().splitlines() if line.strip())
    assert lines <= KERNEL_LIMIT, f"core/kernel/ has {lines} non-blank lines (at most {KERNEL_LIMIT})"


def _code_words(path: Path):
    """(line, text) of every name, attribute, definition and string of the code: not the
    docstrings or comments, which may give a business example."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docstrings:
            yield node.lineno, node.value
        elif isinstance(node, ast.Name | ast.Attribute | ast.ClassDef | ast.FunctionDef | ast.arg):
            yield node.lineno, getattr(node, "id", None) or getattr(node, "attr", None) \
                or getattr(node, "name", None) or node.arg


def test_the_kernel_names_no_module_tax_discount_product_or_currency():
    modules = {yaml.safe_load(path.read_text())["name"]
               for path in (REPO / "plugins").glob("*/modules/*.yaml")}
    assert {"accounts", "quotes", "invoices"} <= modules  # the rule has something to check
    names = "|".join(sorted(modules))
    words = re.compile(rf"\b({names}|tax\w*|discount\w*|product\w*)\b", re.IGNORECASE)
    currencies = set(numbers.list_currencies()) - {"ALL"}  # the lek, and the access level
    found = [f"{path.relative_to(REPO)}:{line}: {text!r}"
             for path in sorted(KERNEL.glob("*.py")) for line, text in _code_words(path)
             if words.search(text) or text.strip().upper() in currencies
             and text.strip().isupper()]
    assert not found, "\n".join(found)


def test_the_business_check_finds_a_currency_code(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text('"""A docstring may say USD."""\nDEFAULT = "USD"\ntaxes = 1\n')
    assert [text for _line, text in _code_words(planted)].count("USD") == 1
