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


def test_a_hook_scoped_to_modules_is_called_for_those_only():
    """@for_modules: the kernel leaves an implementation out for other modules, and a
    plugin may give each module its own function (``specname``)."""
    import types

    import pluggy

    from core.kernel import hookspecs
    from core.kernel.hookspecs import for_modules, hookimpl
    from core.kernel.plugins import ModuleHooks

    calls = []
    plugin = types.ModuleType("scoped")

    @hookimpl
    def crbm_after_save(module):
        calls.append(("every", module))

    @hookimpl(specname="crbm_after_save")
    @for_modules("quotes", "sales_orders")
    def after_orders(module):
        calls.append(("orders", module))

    @hookimpl(specname="crbm_after_save")
    @for_modules("invoices")
    def after_invoices(module):
        calls.append(("invoices", module))

    plugin.crbm_after_save, plugin.after_orders, plugin.after_invoices = \
        crbm_after_save, after_orders, after_invoices
    pm = pluggy.PluginManager("crbm")
    pm.add_hookspecs(hookspecs)
    pm.register(plugin)
    hooks = ModuleHooks(pm.hook)
    for name in ("quotes", "invoices", "accounts"):
        hooks.of(name).crbm_after_save(site=None, module=name, batch=[], user=None,
                                       connection=None)
    assert sorted(calls) == [("every", "accounts"), ("every", "invoices"), ("every", "quotes"),
                             ("invoices", "invoices"), ("orders", "quotes")]
    assert hooks.of("quotes").crbm_after_save is hooks.of("quotes").crbm_after_save  # kept
    with pytest.raises(TypeError):
        for_modules()


def test_the_shipped_plugins_check_no_module_names_in_their_hooks():
    """Module-scoped hooks replaced the ``module.name`` checks (issue 16, item 7)."""
    import re
    from pathlib import Path

    import plugins
    found = [f"{path}:{n}" for path in Path(plugins.__file__).parent.rglob("*.py")
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if re.search(r"\bmodule\.name\s*(==|!=|in\b|not in\b)", line)]
    assert found == []
