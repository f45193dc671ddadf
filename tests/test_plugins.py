"""Plugin discovery: shipped folders and pip-installed packages (entry points)."""
import sys
import textwrap

import pytest

from core.kernel.plugins import discover_shipped, hooks_implemented, load_plugins


@pytest.fixture
def installed_package(tmp_path, monkeypatch):
    """A real installed distribution on sys.path declaring a crbm.plugins entry point."""
    package = tmp_path / "crbm_hello"
    (package / "modules").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "plugin.py").write_text(textwrap.dedent('''\
        """Says hello."""
        from core.kernel.hookspecs import hookimpl
        __version__ = "2.3.4"

        @hookimpl
        def crbm_after_save(module, batch, user):
            pass
        '''))
    (package / "modules" / "greetings.yaml").write_text(
        "name: greetings\nlabel: Greetings\nfields: {name: {type: name}}\n")
    dist = tmp_path / "crbm_hello-2.3.4.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: crbm-hello\nVersion: 2.3.4\n")
    (dist / "entry_points.txt").write_text("[crbm.plugins]\nhello = crbm_hello.plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("crbm_hello.plugin", None)
    sys.modules.pop("crbm_hello", None)


def test_shipped_plugins_are_found_in_the_plugins_folder():
    names = [name for name, _ in discover_shipped()]
    assert {"accounts", "contacts"} <= set(names)


def test_an_installed_package_adds_a_plugin_with_its_modules(installed_package, make_site):
    pm, plugins = load_plugins()
    hello = next(p for p in plugins if p.name == "hello")
    assert hello.version == "2.3.4" and hello.source == "entry point crbm-hello"
    assert hooks_implemented(pm, hello) == ["crbm_after_save"]
    site = make_site()
    assert site.registry.module("greetings").label == "Greetings"
    assert site.check_schema().in_sync
