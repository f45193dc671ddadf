"""Finding and loading plugins.

Two sources, in this order: every folder ``plugins/<name>/`` holding a ``plugin.py``
(shipped with CRBM), then every entry point in the ``crbm.plugins`` group (pip-installed).
Nothing is imported until a site boots and asks for the plugin manager.

Each plugin declares itself in a ``plugin.yaml`` beside its ``plugin.py`` (the manifest,
``metadata/schema/plugin.json``): its version, the plugins it ``requires`` (with PEP 440
version ranges), the CRBM versions it supports, the settings it reads, and ``glue``
modules registered only while another plugin is active too. A plugin without a manifest
(an entry point, a test plugin) requires nothing. Loading refuses, with one line naming the
manifest and the reason (``PluginError``), a manifest that breaks the schema, a missing,
disabled or out-of-range dependency, an unsupported CRBM version, and a hook implementation
no hook spec knows (a misspelt ``crbm_befor_save`` would otherwise never be called).

A site may *disable* plugins (``disabled``): a disabled shipped plugin is not even imported;
its metadata stays out of the registry, its tables and data stay in the database.
"""
from __future__ import annotations

import functools
import importlib
import importlib.metadata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import jsonschema
import pluggy
import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from pluggy._hooks import _SubsetHookCaller  # the proxy pluggy's subset_hook_caller uses

from core.kernel import hookspecs
from core.kernel.errors import CrbmError

ENTRY_POINT_GROUP = "crbm.plugins"
MANIFEST = "plugin.yaml"
SCHEMA_FILE = Path(__file__).resolve().parents[2] / "metadata" / "schema" / "plugin.json"
# the applications' hook modules that must be registered before every other one, so pluggy
# calls them last (the webhook outbox) unless they ask to run first (fills: a related
# field's ``fill``, before the plugins' own defaults)
KERNEL_HOOKS = ("core.apps.webhooks.webhooks", "core.apps.fills.fills")
# the applications shipped with CRBM (core/apps/), registered like any plugin after the
# kernel's own hooks and before the shipped plugins (as Datasette's default plugins): the
# kernel never imports them, it names them here. Their ``tryfirst`` hooks run in the
# reverse of this order (pluggy: last registered, first called): the administration
# page lists the Studio, packs, API, webhooks and mail entries in that order.
BUILTIN_PLUGINS = ("core.apps.field_types.plugin", "core.apps.admin.plugin",
                   "core.apps.calendar.plugin", "core.apps.documents.plugin", "core.apps.scheduler.plugin",
                   "core.apps.webhooks.plugin", "core.apps.oauth.plugin", "core.apps.packs.plugin",
                   "core.apps.admin.prune", "core.apps.search.plugin", "core.apps.studio.plugin",
                   "core.apps.notifications.plugin", "core.apps.duplicates.plugin",
                   "core.apps.site_export.plugin", "core.apps.board.plugin", "core.apps.activities.plugin",
                   "core.apps.imports.plugin", "core.apps.backup.plugin", "core.apps.storage.plugin",
                   "core.apps.maintenance.plugin", "core.apps.logs.plugin", "core.apps.smart_lists.plugin",
                   "core.apps.activity_tracking.plugin", "core.apps.favourites.plugin")
SHIPPED_PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


class PluginError(CrbmError):
    """A plugin cannot be loaded: the message is one line naming the file and the reason."""


@dataclass(frozen=True)
class Manifest:
    """A plugin's ``plugin.yaml`` (or what a plugin without one is taken to say)."""

    name: str
    version: str
    title: str = ""
    description: str = ""
    crbm: str = ""  # PEP 440 specifier; empty: any version
    requires: dict[str, str] = field(default_factory=dict)
    optional_requires: dict[str, str] = field(default_factory=dict)
    glue: dict[str, str] = field(default_factory=dict)
    settings: tuple[str, ...] = ()
    source: str = ""  # the manifest's path ("" when the plugin has none)

    @property
    def where(self) -> str:
        return self.source or f"plugin {self.name!r} (no {MANIFEST})"

class _ModuleHookCaller(_SubsetHookCaller):
    """One hook as called for one module: the implementations scoped to other modules
    (``hookspecs.for_modules``) left out. Worked out at each call from the live list, so
    a plugin registered later (a code pack) is seen; a few attribute reads per call."""

    __slots__ = ("_module",)

    def __init__(self, orig, module_name: str) -> None:
        super().__init__(orig, frozenset())
        self._module = module_name

    @property
    def _hookimpls(self):
        module = self._module
        return [impl for impl in self._orig._hookimpls
                if module in getattr(impl.function, hookspecs.MODULES_ATTRIBUTE, (module,))]


class ModuleHooks:
    """``pm.hook`` for one module at a time: ``hooks.of(module).crbm_before_save(...)``
    calls the implementations for every module and those scoped to this one. Callers
    are made once per (module, hook) and kept."""

    def __init__(self, hook: pluggy.HookRelay) -> None:
        self.hook = hook  # pm.hook
        self._callers: dict[tuple[str, str], _ModuleHookCaller] = {}

    def of(self, module) -> _ModuleRelay:
        return _ModuleRelay(self, module if isinstance(module, str) else module.name)

    def caller(self, hook_name: str, module_name: str) -> _ModuleHookCaller:
        key = (module_name, hook_name)
        found = self._callers.get(key)
        if found is None:
            found = self._callers[key] = _ModuleHookCaller(getattr(self.hook, hook_name),
                                                           module_name)
        return found


class _ModuleRelay:
    __slots__ = ("_hooks", "_module")

    def __init__(self, hooks: ModuleHooks, module_name: str) -> None:
        self._hooks, self._module = hooks, module_name

    def __getattr__(self, hook_name: str):
        return self._hooks.caller(hook_name, self._module)


@dataclass(frozen=True)
class Plugin:
    name: str
    version: str
    folder: Path  # where its modules/ and dropdowns/ live
    module: ModuleType
    source: str  # "shipped" or "entry point <dist>"
    manifest: Manifest = None  # type: ignore[assignment]
    glue: tuple[str, ...] = ()  # import paths of the glue modules registered for it


@dataclass(frozen=True)
class Candidate:
    """A plugin found on disk or by entry point, before it is imported (if ever)."""

    name: str
    folder: Path
    source: str
    manifest: Manifest
    load: Callable[[], ModuleType]
    disabled: bool = False


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    import json

    return jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))


def _json_path(parts: Iterable) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def manifest_problems(path: Path) -> list[tuple[str, str]]:
    """(JSON path, reason) of everything wrong in a ``plugin.yaml``: syntax, schema, and
    version ranges and versions that are not PEP 440. Empty when it is right."""
    try:
        body = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "$"
        return [(where, f"YAML syntax error: {getattr(exc, 'problem', None) or exc}")]
    except (OSError, UnicodeDecodeError) as exc:
        return [("$", f"cannot read: {exc}")]
    if not isinstance(body, dict):
        return [("$", "must be a mapping")]
    problems = [(_json_path(e.absolute_path), e.message) for e in
                sorted(_validator().iter_errors(body), key=lambda e: list(map(str, e.path)))]
    if problems:
        return problems
    try:
        Version(body["version"])
    except InvalidVersion:
        problems.append(("$.version", f"{body['version']!r} is not a PEP 440 version"))
    ranges = [("$.crbm", body.get("crbm", ""))]
    for key in ("requires", "optional_requires"):
        ranges += [(f"$.{key}.{name}", spec) for name, spec in body.get(key, {}).items()]
    for where, spec in ranges:
        try:
            SpecifierSet(spec)
        except InvalidSpecifier:
            problems.append((where, f"{spec!r} is not a version range (e.g. >=1.0,<2)"))
    return problems


# Checked manifests by (path, modification time, size): every boot and every pack check
# loads the plugins again, and YAML plus schema would cost more than the rest of loading.
_checked: dict[str, tuple[tuple, Manifest]] = {}


def read_manifest(folder: Path, name: str, fallback_version: str) -> Manifest:
    """The manifest in ``folder``, checked (``PluginError`` naming the file and place);
    a folder without one gives a manifest that requires nothing."""
    path = folder / MANIFEST
    try:
        stat = path.stat()
    except OSError:
        return Manifest(name, fallback_version)
    stamp = (stat.st_mtime_ns, stat.st_size, name)
    cached = _checked.get(str(path))
    if cached is not None and cached[0] == stamp:
        return cached[1]
    manifest = _read_manifest(path, name)
    _checked[str(path)] = (stamp, manifest)
    return manifest


def _read_manifest(path: Path, name: str) -> Manifest:
    problems = manifest_problems(path)
    if problems:
        where, reason = problems[0]
        raise PluginError(f"{path}: {where}: {reason}")
    body = yaml.safe_load(path.read_text(encoding="utf-8"))
    if body["name"] != name:
        raise PluginError(f"{path}: $.name: {body['name']!r} is not the plugin's name "
                          f"{name!r} (its folder or entry point)")
    return Manifest(body["name"], body["version"], body["title"], body.get("description", ""),
                    body.get("crbm", ""), dict(sorted(body.get("requires", {}).items())),
                    dict(sorted(body.get("optional_requires", {}).items())), dict(body.get("glue", {})),
                    tuple(body.get("settings", ())), str(path))


def discover_shipped(root: Path = SHIPPED_PLUGINS) -> list[tuple[str, str]]:
    """(name, import path) of each shipped plugin, sorted by name."""
    return [(d.name, f"plugins.{d.name}.plugin") for d in sorted(root.iterdir())
            if d.is_dir() and (d / "plugin.py").is_file()]


def _version_of(module: ModuleType, fallback: str) -> str:
    return str(getattr(module, "__version__", fallback))


def discover(extra: Iterable[ModuleType] = (), disabled: Iterable[str] = (),
             root: Path | None = None) -> list[Candidate]:
    """Every plugin there is — shipped, entry points, ``extra`` — with its manifest, none
    imported yet (an entry point is, to find its folder). ``disabled`` marks those a site
    turned off. ``root``: another folder of shipped plugins (tests: a copy lacking one);
    their code is still imported from the ``plugins`` package, their metadata read there."""
    from core import __version__ as crbm_version

    root = root or SHIPPED_PLUGINS
    off = set(disabled)
    found: list[Candidate] = []
    for name, import_path in discover_shipped(root):
        folder = root / name
        found.append(Candidate(name, folder, "shipped",
                               read_manifest(folder, name, crbm_version),
                               functools.partial(importlib.import_module, import_path),
                               name in off))
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        module = ep.load()
        dist = ep.dist.name if ep.dist else "?"
        version = _version_of(module, ep.dist.version if ep.dist else "?")
        folder = Path(module.__file__).parent
        found.append(Candidate(ep.name, folder, f"entry point {dist}",
                               read_manifest(folder, ep.name, version),
                               functools.partial(lambda m: m, module), ep.name in off))
    for module in extra:
        name = getattr(module, "PLUGIN_NAME", module.__name__.rsplit(".", 1)[-1])
        folder = Path(module.__file__).parent
        found.append(Candidate(name, folder, "extra",
                               read_manifest(folder, name, _version_of(module, crbm_version)),
                               functools.partial(lambda m: m, module), name in off))
    return found


def check_requirements(candidates: list[Candidate]) -> None:
    """Refuse (``PluginError``, one line) the first active plugin whose CRBM range excludes
    this CRBM, or whose required plugin is missing, disabled or of a version out of range."""
    from core import __version__ as crbm_version

    by_name = {c.name: c for c in candidates}
    for candidate in sorted(candidates, key=lambda c: c.name):
        if candidate.disabled:
            continue
        manifest = candidate.manifest
        if manifest.crbm and Version(crbm_version) not in SpecifierSet(manifest.crbm):
            raise PluginError(f"{manifest.where}: $.crbm: supports CRBM {manifest.crbm}, "
                              f"this is CRBM {crbm_version}")
        for name, spec in manifest.requires.items():
            other = by_name.get(name)
            if other is None:
                raise PluginError(f"{manifest.where}: $.requires.{name}: requires plugin "
                                  f"{name!r}, which is not installed")
            if other.disabled:
                raise PluginError(f"{manifest.where}: $.requires.{name}: requires plugin "
                                  f"{name!r}, which is disabled (crbm plugins enable {name})")
            if spec and not SpecifierSet(spec).contains(other.manifest.version, prereleases=True):
                raise PluginError(f"{manifest.where}: $.requires.{name}: requires {name} "
                                  f"{spec}, but {other.manifest.version} is installed")
        for name, spec in manifest.optional_requires.items():  # when there, in range
            other = by_name.get(name)
            if other is not None and not other.disabled and spec and not SpecifierSet(
                    spec).contains(other.manifest.version, prereleases=True):
                raise PluginError(f"{manifest.where}: $.optional_requires.{name}: works with "
                                  f"{name} {spec}, but {other.manifest.version} is installed "
                                  f"(disable one of them)")


def dependents(candidates: list[Candidate], name: str) -> list[str]:
    """The active plugins that need ``name``, directly or through others, sorted."""
    needed, changed = {name}, True
    while changed:
        changed = False
        for c in candidates:
            if not c.disabled and c.name not in needed and set(c.manifest.requires) & needed:
                needed.add(c.name)
                changed = True
    return sorted(needed - {name})


def dependency_order(found: list[Plugin]) -> list[Plugin]:
    """``found`` with every plugin after those it requires, and those it optionally requires
    when present but for a cycle of optional ones (by name otherwise): the order their
    metadata layers merge in, so an overlay can add to what such a plugin added, and their
    demo data is made in."""
    names, done, placed = {p.name for p in found}, [], set()
    pending = sorted(found, key=lambda p: p.name)
    while pending:
        first = next((p for p in pending if not ({*p.manifest.requires, *p.manifest.optional_requires}
                                                 & names) - placed - {p.name}), None) or \
            next((p for p in pending if not set(p.manifest.requires) & names - placed), pending[0])
        done.append(first)
        placed.add(first.name)
        pending.remove(first)
    return done


def check_hooks(pm: pluggy.PluginManager, where: dict[str, str] | None = None) -> None:
    """``pm.check_pending()`` with a clear line: a hook implementation that no hook spec
    knows (a misspelling) stops boot naming the plugin and the hook."""
    for hook_name in sorted(vars(pm.hook)):
        caller = getattr(pm.hook, hook_name)
        if not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook:
                continue
            plugin = impl.plugin_name
            place = (where or {}).get(plugin) or getattr(impl.plugin, "__file__", None) or plugin
            raise PluginError(f"{place}: plugin {plugin!r} implements "
                              f"hook {hook_name!r}, which is not a CRBM hook "
                              f"(see core/kernel/hookspecs.py)")
    pm.check_pending()  # anything pluggy itself would still refuse


def load_plugins(extra: list[ModuleType] = (), disabled: Iterable[str] = (),
                 root: Path | None = None,
                 candidates: list[Candidate] | None = None,
                 ) -> tuple[pluggy.PluginManager, list[Plugin]]:
    """Import every active plugin and register it with a fresh plugin manager, with the
    glue whose other plugin is active too. Returns the manager and the active plugins.

    ``extra`` lets tests and embedders add plugin modules without installing them."""
    if candidates is None:
        candidates = discover(extra, disabled, root)
    check_requirements(candidates)
    pm = pluggy.PluginManager("crbm")
    pm.add_hookspecs(hookspecs)
    for import_path in KERNEL_HOOKS:
        pm.register(importlib.import_module(import_path), name=f"kernel:{import_path}")
    for import_path in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(import_path), name=f"builtin:{import_path}")

    active = [c for c in candidates if not c.disabled]
    names = {c.name for c in active}
    where: dict[str, str] = {}
    found: list[Plugin] = []
    for candidate in active:
        module = candidate.load()
        glue = tuple(path for other, path in sorted(candidate.manifest.glue.items())
                     if other in names)
        found.append(Plugin(candidate.name, candidate.manifest.version, candidate.folder,
                            module, candidate.source, candidate.manifest, glue))
        where[candidate.name] = str(module.__file__)
    for plugin in found:  # a plugin's own hook specs, before any implementation of them
        specs = plugin_hookspecs(plugin)
        if specs is not None:
            pm.add_hookspecs(specs)
    for plugin in found:
        pm.register(plugin.module, name=plugin.name)
    for plugin in found:  # after every plugin: glue runs after the plugins it joins
        for import_path in plugin.glue:
            try:
                module = importlib.import_module(import_path)
            except ImportError as exc:
                raise PluginError(f"{plugin.manifest.where}: $.glue: cannot import "
                                  f"{import_path!r}: {exc}") from None
            name = f"glue:{import_path}"
            where[name] = str(module.__file__)
            pm.register(module, name=name)
    check_hooks(pm, where)
    return pm, found


HOOKSPECS_ATTRIBUTE = "HOOKSPECS"
HOOKSPECS_FILE = "hookspecs.py"


def plugin_hookspecs(plugin: Plugin):
    """The hook specs a plugin declares for other plugins to implement (pluggy's
    ``add_hookspecs`` lets a plugin add specs): its module's ``HOOKSPECS`` (a module or
    class of ``@hookspec`` functions), else a ``hookspecs.py`` beside its ``plugin.py``.
    Those who implement them ``require`` the plugin, so its specs are there first."""
    specs = getattr(plugin.module, HOOKSPECS_ATTRIBUTE, None)
    if specs is not None:
        return specs
    package = getattr(plugin.module, "__package__", None)
    if not package or not (Path(plugin.module.__file__).parent / HOOKSPECS_FILE).is_file():
        return None
    try:
        return importlib.import_module(f"{package}.{HOOKSPECS_FILE.removesuffix('.py')}")
    except ImportError as exc:
        raise PluginError(f"{plugin.manifest.where}: cannot import its {HOOKSPECS_FILE}: "
                          f"{exc}") from None


def hooks_implemented(pm: pluggy.PluginManager, plugin: Plugin) -> list[str]:
    callers = pm.get_hookcallers(plugin.module) or []
    return sorted({c.name for c in callers})  # once each: a hook may have several impls


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
