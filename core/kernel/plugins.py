"""Finding and loading plugins.

Two sources, in this order: every folder ``plugins/<name>/`` holding a ``plugin.py``
(shipped with CRBM), then every entry point in the ``crbm.plugins`` group (pip-installed).
Nothing is imported until a site boots and asks for the plugin manager.
"""
from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pluggy

from core.kernel import hookspecs

ENTRY_POINT_GROUP = "crbm.plugins"
# kernel modules that implement hooks themselves, registered before every plugin so pluggy
# calls them last (the webhook outbox) unless they ask to run first (fills: a related
# field's ``fill``, before the plugins' own defaults)
KERNEL_HOOKS = ("core.apps.webhooks.webhooks", "core.kernel.fills")
# the applications shipped with CRBM (core/apps/), registered like any plugin after the
# kernel's own hooks and before the shipped plugins (as Datasette's default plugins): the
# kernel never imports them, it names them here. Their ``tryfirst`` hooks run in the
# reverse of this order (pluggy: last registered, first called): the administration
# page lists the Studio, packs, API, webhooks and mail entries in that order.
BUILTIN_PLUGINS = ("core.apps.admin.plugin", "core.apps.calendar.plugin",
                   "core.apps.documents.plugin", "core.apps.webhooks.plugin",
                   "core.apps.oauth.plugin", "core.apps.packs.plugin",
                   "core.apps.studio.plugin")
SHIPPED_PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


@dataclass(frozen=True)
class Plugin:
    name: str
    version: str
    folder: Path  # where its modules/ and dropdowns/ live
    module: ModuleType
    source: str  # "shipped" or "entry point <dist>"


def discover_shipped(root: Path = SHIPPED_PLUGINS) -> list[tuple[str, str]]:
    """(name, import path) of each shipped plugin, sorted by name."""
    return [
        (d.name, f"plugins.{d.name}.plugin")
        for d in sorted(root.iterdir())
        if d.is_dir() and (d / "plugin.py").is_file()
    ]


def _version_of(module: ModuleType, fallback: str) -> str:
    return str(getattr(module, "__version__", fallback))


def load_plugins(extra: list[ModuleType] = ()) -> tuple[pluggy.PluginManager, list[Plugin]]:
    """Import every plugin and register it with a fresh plugin manager.

    ``extra`` lets tests and embedders add plugin modules without installing them.
    """
    from core import __version__ as crbm_version

    pm = pluggy.PluginManager("crbm")
    pm.add_hookspecs(hookspecs)
    found: list[Plugin] = []
    for import_path in KERNEL_HOOKS:
        pm.register(importlib.import_module(import_path), name=f"kernel:{import_path}")
    for import_path in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(import_path), name=f"builtin:{import_path}")

    for name, import_path in discover_shipped():
        module = importlib.import_module(import_path)
        found.append(Plugin(name, _version_of(module, crbm_version),
                            Path(module.__file__).parent, module, "shipped"))

    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        module = ep.load()
        dist = ep.dist.name if ep.dist else "?"
        version = ep.dist.version if ep.dist else "?"
        found.append(Plugin(ep.name, _version_of(module, version),
                            Path(module.__file__).parent, module, f"entry point {dist}"))

    for module in extra:
        name = getattr(module, "PLUGIN_NAME", module.__name__.rsplit(".", 1)[-1])
        found.append(Plugin(name, _version_of(module, crbm_version),
                            Path(module.__file__).parent, module, "extra"))

    for plugin in found:
        pm.register(plugin.module, name=plugin.name)
    return pm, found


def hooks_implemented(pm: pluggy.PluginManager, plugin: Plugin) -> list[str]:
    callers = pm.get_hookcallers(plugin.module) or []
    return sorted(c.name for c in callers)


def import_pack_plugin(name: str, folder: Path) -> ModuleType:
    """Import an installed code pack's ``plugin.py`` under a name of its own
    (``crbm_packs.<name>``), fresh each time so an upgraded pack's new code is used."""
    import importlib.util
    import sys

    module_name = f"crbm_packs.{name}"
    spec = importlib.util.spec_from_file_location(module_name, folder / "plugin.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        sys.modules.pop(module_name, None)
        raise
    return module
