"""A site: one CRBM installation, booted from its folder and its database.

The folder holds ``site.yaml`` (the database URL and the secret key — the only settings
that cannot live in the database), uploaded files, and installed packs. Everything else
is in the database, so any number of stateless web workers can boot the same site.

Boot order: plugins -> registry (plugin base, packs, site customizations) -> tables ->
record service. A registry error stops boot before anything is served.
"""
from __future__ import annotations

import contextvars
import json
import logging
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
import yaml

from core.kernel import customizations as site_customizations
from core.kernel import database, plugins, sequences
from core.kernel.access import AccessControl
from core.kernel.errors import CrbmError, MetadataProblem
from core.kernel.records import RecordService
from core.kernel.registry import (Layer, MetadataError, Registry, build_registry, plugin_layers,
                                  read_extensions, read_folder)

CONFIG = "site.yaml"
# Site setting: the plugins kept on disk but not loaded (``crbm plugins disable``). Read at
# boot straight from crbm_settings, before any plugin is imported.
DISABLED_PLUGINS = "disabled_plugins"
log = logging.getLogger(__name__)
# the site whose settings' version this request has read (core.web.pages.catch_up): its
# accesses need not read it again
_SETTINGS_CHECKED: contextvars.ContextVar = contextvars.ContextVar("crbm_settings_checked",
                                                                  default=None)


@dataclass(frozen=True)
class EnabledPack:
    name: str
    kind: str
    manifest: dict  # the validated pack.yaml
    folder: Path  # where its files are: <site>/packs/<name>


class SiteError(CrbmError):
    """The site folder is missing or unusable."""


def create_site(folder: Path, database_url: str | None = None) -> Path:
    """Write a new site folder. SQLite inside the folder unless a URL is given."""
    folder = Path(folder).resolve()
    if (folder / CONFIG).exists():
        raise SiteError(f"{folder} already holds a site")
    folder.mkdir(parents=True, exist_ok=True)
    for sub in ("files", "packs"):
        (folder / sub).mkdir(exist_ok=True)
    config = {"database_url": database_url or f"sqlite:///{folder / 'crbm.db'}",
              "secret_key": secrets.token_urlsafe(32)}
    (folder / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    (folder / CONFIG).chmod(0o600)  # it holds the secret key
    return folder


_SCHEMAS: dict[tuple, sa.MetaData] = {}  # Site._schema's, by definitions and plugins


class Site:
    def __init__(self, folder: Path, *, database_url: str | None = None,
                 extra_plugins: list[ModuleType] = (), engine: sa.Engine | None = None,
                 plugins_root: Path | None = None):
        self.folder = Path(folder).resolve()
        config_path = self.folder / CONFIG
        if not config_path.is_file():
            raise SiteError(f"no site at {self.folder} (run `crbm init` first)")
        self.config = yaml.safe_load(config_path.read_text()) or {}
        self.database_url = database_url or self.config["database_url"]
        self.engine = engine or database.engine_for(self.database_url)
        self._extra_plugins, self._plugins_root = list(extra_plugins), plugins_root
        self._load_plugins(self._read_disabled_plugins())
        self._refresh_lock = threading.Lock()
        self._settings: dict | None = None  # read once, kept until their version moves
        self._settings_epoch: int | None = None
        self._services = self._read_services()
        for service in self._services.values():  # the pack store recovers an interrupted
            if service.boot:                      # install: before reading packs/
                getattr(self, service.name)
        self.reload()
        self.hook.crbm_startup(site=self)

    def rebuild(self) -> None:
        """Rebuild this worker's registry now and have the others follow at their next
        request (the metadata epoch moves): after a change to what it is built from."""
        self.reload()
        with self.engine.begin() as conn:
            site_customizations.bump_epoch(conn)
        self.metadata_epoch = site_customizations.read_epoch(self.engine)

    def reload(self, packs: list[EnabledPack] | None = None,
               customizations: list | None = None, *, import_code: bool = True) -> None:
        """Rebuild the registry from all layers; on error the old one stays in place.

        ``packs`` and ``customizations`` replace what the database says, so the pack
        installer can build (and check) the registry a change would give before making it.
        With ``import_code`` False no pack's ``plugin.py`` is imported that is not hooked
        already: checking a pack never runs its code (it may not even be allowed to run)."""
        epoch = site_customizations.read_epoch(self.engine)  # before reading what it covers
        disabled = self._read_disabled_plugins()
        if disabled != self.disabled_plugins:  # another worker disabled or enabled one
            self._load_plugins(disabled)
        enabled = self._read_enabled_packs() if packs is None else list(packs)
        before = getattr(self, "enabled_packs", [])
        # their field types and metadata count from now
        self._hook_pack_plugins(enabled, import_code=import_code)
        try:
            plugins.check_hooks(self.plugin_manager)  # a code pack's misspelt hook too
            registry = build_registry(self.layers(enabled, customizations),
                                      self.provided("crbm_field_types"),
                                      self.provided("crbm_module_features"))
        except Exception:
            self._hook_pack_plugins(before)
            raise
        self.enabled_packs = enabled
        self.metadata_epoch = epoch
        self.registry: Registry = registry
        self.tables = self._schema(registry)
        self.access = AccessControl(self.engine, self.tables, lambda: self.settings)
        self.records = RecordService(self.engine, registry, self.tables, self.hook, self.access,
                                     settings=lambda: self.settings, site=self)
        self.access_predicates = self._read_access_predicates()

    def _schema(self, registry) -> sa.MetaData:
        """The registry's tables and the plugins' own (``crbm_tables``), built once per
        process for the same definitions and plugins and shared, read-only: most of a
        boot's time (each test boots a site)."""
        key = (json.dumps([m.definition for m in registry.modules.values()], default=repr),
               tuple(sorted(name for name, _ in self.plugin_manager.list_name_plugin())))
        if key not in _SCHEMAS:
            _SCHEMAS.clear() if len(_SCHEMAS) >= 8 else None
            _SCHEMAS[key] = database.schema_for(registry)
            self.hook.crbm_tables(metadata=_SCHEMAS[key])
        return _SCHEMAS[key]

    def refresh(self, epoch: int) -> bool:
        """Rebuild the registry if another worker changed it (``epoch`` read from the
        database is not the one this registry was built at). Returns whether it did."""
        if epoch == self.metadata_epoch:
            return False
        with self._refresh_lock:  # one thread rebuilds; the others find it done
            if epoch == self.metadata_epoch:
                return False
            try:
                self.reload()
            except Exception:  # the writer checked it; keep serving the old registry
                log.exception("registry reload for metadata epoch %s failed", epoch)
                self.metadata_epoch = epoch  # not again on every request
                return False
        return True

    def state(self) -> tuple:
        """What ``reload`` replaces, to put back with ``restore`` (a pack installer trying
        a registry, or undoing a failed change, without rebuilding the old one)."""
        return (self.registry, self.tables, self.access, self.records, self.enabled_packs)

    def restore(self, state: tuple) -> None:
        self.registry, self.tables, self.access, self.records, packs = state
        self._hook_pack_plugins(packs)
        self.enabled_packs = packs

    # -- plugins (core.kernel.plugins finds and loads them; a site may disable some) -------------

    def _read_disabled_plugins(self) -> list[str]:
        table = database.kernel_table("crbm_settings")
        try:
            with self.engine.connect() as conn:
                row = conn.execute(sa.select(table.c.value)
                                   .where(table.c.key == DISABLED_PLUGINS)).first()
        except (sa.exc.OperationalError, sa.exc.ProgrammingError):
            return []  # a new site: no tables yet
        return sorted(json.loads(row.value)) if row else []

    def _load_plugins(self, disabled: list[str]) -> None:
        self.plugin_candidates = plugins.discover(self._extra_plugins, disabled, self._plugins_root)
        self.plugin_manager, self.plugins = plugins.load_plugins(candidates=self.plugin_candidates)
        self.hook = self.plugin_manager.hook
        # the hooks that take a module, as called for one: ``site.module_hooks.of(module)``
        self.module_hooks = plugins.ModuleHooks(self.hook)
        self.disabled_plugins = sorted(disabled)
        if hasattr(self, "enabled_packs"):  # a reload: the code packs' hooks come along
            self._hook_pack_plugins(self.enabled_packs)

    def disable_plugin(self, name: str, *, with_dependents: bool = False) -> list[str]:
        """Keep plugin ``name`` on disk but stop loading it: unhooked, its metadata out of
        the registry, its tables and columns kept with their data. Refused while active
        plugins require it, unless ``with_dependents`` disables those too. Returns the
        plugins disabled now."""
        candidate = self._plugin_candidate(name)
        if candidate.disabled:
            return []
        needing = plugins.dependents(self.plugin_candidates, name)
        if needing and not with_dependents:
            raise plugins.PluginError(
                f"plugin {name!r} is required by {', '.join(needing)}: disable "
                f"{'it' if len(needing) == 1 else 'them'} first (or disable with dependents)")
        self._change_plugins(sorted(set(self.disabled_plugins) | {name, *needing}))
        return [name, *needing]

    def enable_plugin(self, name: str) -> list[str]:
        """Load a disabled plugin again (its tables brought in step with ``sync_schema``,
        adding only). Refused while a plugin it requires is disabled. Returns the plugins
        enabled now."""
        candidate = self._plugin_candidate(name)
        if not candidate.disabled:
            return []
        off = sorted(r for r in candidate.manifest.requires if r in self.disabled_plugins)
        if off:
            raise plugins.PluginError(
                f"{candidate.manifest.where}: plugin {name!r} requires {', '.join(off)}, "
                f"which {'is' if len(off) == 1 else 'are'} disabled: enable "
                f"{'it' if len(off) == 1 else 'them'} first")
        self._change_plugins([n for n in self.disabled_plugins if n != name])
        self.sync_schema()
        return [name]

    def _plugin_candidate(self, name: str) -> plugins.Candidate:
        for candidate in self.plugin_candidates:
            if candidate.name == name:
                return candidate
        raise SiteError(f"no plugin named {name!r} (see `crbm plugins`)")

    def _change_plugins(self, disabled: list[str]) -> None:
        """Store the new set of disabled plugins and rebuild this worker with it (the others
        follow at their next request: the metadata epoch moves). Nothing changes when the
        registry it gives is refused."""
        before = self.disabled_plugins
        self.set_setting(DISABLED_PLUGINS, disabled or None)  # reload reads it
        try:
            self.rebuild()
        except Exception:
            self.set_setting(DISABLED_PLUGINS, before or None)
            self._load_plugins(before)
            raise

    def kept_columns(self) -> set[tuple[str, str]]:
        """(table, column) that disabled plugins added to active modules' tables (a
        balance on accounts): ``db check`` and ``db sync`` keep them, with their data."""
        off = [c.folder for c in self.plugin_candidates if c.disabled]
        if not off:
            return set()
        problems: list[MetadataProblem] = []
        layers = plugin_layers([c.folder for c in self.plugin_candidates], problems)
        try:
            if problems:
                raise MetadataError(problems)
            features = {f.name: f for f in reversed(self.provided("crbm_module_features", True))}
            everything = database.schema_for(build_registry(
                layers, self.provided("crbm_field_types", True), list(features.values())))
        except MetadataError:  # the plugins on disk do not build together: keep nothing
            log.warning("the disabled plugins' metadata does not build; their columns are "
                        "not protected from `db sync --allow-drop`")
            return set()
        return {(name, column) for name, table in everything.tables.items()
                if name in self.tables.tables for column in table.columns.keys()  # noqa: SIM118
                if column not in self.tables.tables[name].columns}

    def provided(self, hook: str, every_plugin: bool = False) -> list:
        """What the plugins answer to a hook that provides things (``crbm_field_types``,
        ``crbm_module_features``). ``every_plugin``: the disabled ones' too — their modules
        may use a field type or feature only a disabled plugin provides (the line items, a
        recurrence rule), and their tables' columns are kept all the same (kept_columns).
        A disabled plugin's module is imported for this, never hooked."""
        found = [x for xs in getattr(self.hook, hook)(site=self) for x in xs or ()]
        for candidate in self.plugin_candidates if every_plugin else ():
            provide = getattr(candidate.load(), hook, None) if candidate.disabled else None
            found += (provide(site=self) if provide else None) or []
        return found

    def layers(self, packs: list[EnabledPack] | None = None,
               customizations: list | None = None) -> list[Layer]:
        problems: list[MetadataProblem] = []
        extra = [Path(folder) for folders in self.hook.crbm_metadata_dirs() for folder in folders]
        # in dependency order: a plugin's overlays come after those of the plugins it needs
        # (invoices' balance row after products' "Sales terms" section)
        base, extensions = plugin_layers([p.folder for p in plugins.dependency_order(
            self.plugins)] + extra, problems)
        # packs' own modules, then their overlays (extends/) on modules defined anywhere
        packs_layer, pack_extensions = Layer("packs"), Layer("pack extensions")
        for pack in self.enabled_packs if packs is None else packs:
            packs_layer.documents += read_folder(pack.folder, problems)
            pack_extensions.documents += read_extensions(pack.folder, problems)
        if problems:
            raise MetadataError(problems)
        site_items = customizations if customizations is not None else \
            site_customizations.read(self.engine)
        return [base, extensions, packs_layer, pack_extensions,
                site_customizations.layer(site_items)]

    # -- installed packs (core.apps.packs.packs installs them; these are what the rest reads) ----------

    def _read_enabled_packs(self) -> list[EnabledPack]:
        if not sa.inspect(self.engine).has_table("crbm_packs"):
            return []
        table = database.kernel_table("crbm_packs")
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table.c.name, table.c.kind, table.c.manifest)
                                .where(table.c.status == "enabled").order_by(table.c.name)).all()
        return [EnabledPack(r.name, r.kind, json.loads(r.manifest), self.pack_folder(r.name))
                for r in rows]

    def _hook_pack_plugins(self, enabled: list[EnabledPack], import_code: bool = True) -> None:
        """Register the ``plugin.py`` of each enabled code pack; unregister the others.
        Without ``import_code``, only unregister: nothing new is imported."""
        wanted = {f"pack:{p.name}": p for p in enabled if (p.folder / "plugin.py").is_file()}
        for name, module in list(self.plugin_manager.list_name_plugin()):
            if name.startswith("pack:") and name not in wanted:
                self.plugin_manager.unregister(module, name)
        for name, pack in wanted.items():
            if import_code and not self.plugin_manager.has_plugin(name):
                self.plugin_manager.register(plugins.import_pack_plugin(pack.name, pack.folder),
                                             name)

    # -- the applications' services (crbm_site_services: site.packs, site.studio) ----------

    def _read_services(self) -> dict:
        services = {}
        for found in self.hook.crbm_site_services(site=self):
            for service in found or ():
                if service.name in services or hasattr(type(self), service.name):
                    raise SiteError(f"two site services named {service.name!r} "
                                    "(crbm_site_services)")
                services[service.name] = service
        return services

    def _read_access_predicates(self) -> dict:
        found = {}
        for predicates in self.hook.crbm_access_predicates(site=self):
            for predicate in predicates or ():
                if predicate.name in found:
                    raise SiteError(f"two access predicates named {predicate.name!r} "
                                    "(crbm_access_predicates)")
                found[predicate.name] = predicate
        return found

    def __getattr__(self, name: str):
        service = self.__dict__.get("_services", {}).get(name)
        if service is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        value = self.__dict__[name] = service.factory(self)  # made once, like a cached_property
        return value

    def pack_folder(self, name: str) -> Path:
        return self.folder / "packs" / name

    def packs_of_kind(self, kind: str) -> list[EnabledPack]:
        return [p for p in self.enabled_packs if p.kind == kind]

    @property
    def locale_dirs(self) -> tuple[Path, ...]:
        """Catalog folders of enabled packs (language packs, module packs with locale/)."""
        return tuple(p.folder / "locale" for p in self.enabled_packs
                     if (p.folder / "locale").is_dir())

    # -- settings (stored in the database, so every worker sees the same) ------------------

    @property
    def settings(self) -> dict:
        """Site settings as a dict of JSON values ({} before the first sync).

        Read once per worker and kept: every writer of ``crbm_settings`` moves their
        version (``settings_changed``). A signed-in request reads that version along with
        its user (``core.web.pages.catch_up`` -> ``settings_seen``), so inside it settings
        cost no query at all (none inside a write); elsewhere (sign-in pages, the CLI,
        scripts) each access first reads the version — one row — and the settings only
        when another worker or process changed them."""
        if _SETTINGS_CHECKED.get() is not self:
            self.check_settings()
        cached = self._settings
        if cached is None:
            cached = self._read_settings()
        return dict(cached)

    def _read_settings(self) -> dict:
        table = database.kernel_table("crbm_settings")
        epochs = database.kernel_table("crbm_metadata_epoch")
        try:
            with self.engine.connect() as conn:  # the version first: never newer than the values
                epoch = conn.execute(sa.select(epochs.c.epoch)
                                     .where(epochs.c.id == database.SETTINGS_EPOCH_ROW)).scalar() or 0
                values = {row.key: json.loads(row.value) for row in conn.execute(sa.select(table))}
        except (sa.exc.OperationalError, sa.exc.ProgrammingError):
            return {}  # tables not created yet: nothing kept, read again next time
        self._settings, self._settings_epoch = values, epoch
        return values

    def settings_seen(self, epoch: int) -> None:
        """The settings' version as the database holds it (read with the signed-in user):
        if another worker changed them, they are read again at the next access; for the
        rest of this request (context), accesses trust it."""
        if epoch != self._settings_epoch:
            self._settings = None
        _SETTINGS_CHECKED.set(self)

    def check_settings(self) -> None:
        """Read the settings' version (one small query) and forget them if it moved."""
        if self._settings is None:
            return  # nothing kept: the next access reads them anyway
        epochs = database.kernel_table("crbm_metadata_epoch")
        try:
            with self.engine.connect() as conn:
                epoch = conn.execute(sa.select(epochs.c.epoch)
                                     .where(epochs.c.id == database.SETTINGS_EPOCH_ROW)).scalar() or 0
        except (sa.exc.OperationalError, sa.exc.ProgrammingError):
            return
        if epoch != self._settings_epoch:  # (not settings_seen: that trusts a whole request)
            self._settings = None

    def settings_changed(self, conn) -> None:
        """Called by whoever writes ``crbm_settings``, in the same transaction: moves the
        settings' version (every worker re-reads them) and forgets this worker's copy."""
        epochs = database.kernel_table("crbm_metadata_epoch")
        if conn.execute(epochs.update().where(epochs.c.id == database.SETTINGS_EPOCH_ROW)
                        .values(epoch=epochs.c.epoch + 1)).rowcount == 0:
            conn.execute(epochs.insert().values(id=database.SETTINGS_EPOCH_ROW, epoch=1))
        self._settings = None

    def set_setting(self, key: str, value) -> None:
        table = database.kernel_table("crbm_settings")
        with self.engine.begin() as conn:
            conn.execute(table.delete().where(table.c.key == key))
            if value is not None:
                conn.execute(table.insert().values(key=key, value=json.dumps(value)))
            self.settings_changed(conn)
        self._settings = None  # after the commit too: a reader in between kept the old

    # -- schema ----------------------------------------------------------------------------

    def check_schema(self) -> database.SchemaDiff:
        return database.check(self.engine, self.registry, keep=self.kept_columns(),
                              metadata=self.tables)

    def sync_schema(self, allow_drop: bool = False) -> database.SchemaDiff:
        diff = database.sync(self.engine, self.registry, allow_drop=allow_drop,
                             metadata=self.tables, keep=self.kept_columns())
        self.after_sync()
        return diff

    def after_sync(self) -> None:
        """What a new module needs beyond its table: its counter; then what plugins and the
        applications need (crbm_schema_synced: the built-in roles, the key pair that signs
        API access tokens)."""
        self._ensure_sequences()
        self.hook.crbm_schema_synced(site=self)

    def _ensure_sequences(self) -> None:
        """Counters exist before the first record, so creators never race to make one."""
        counters = self.tables.tables["crbm_sequences"]
        with self.engine.begin() as conn:
            for module in self.registry.modules.values():
                spec = module.features.get("sequence")
                if spec:
                    sequences.ensure(conn, counters, module.name, spec.get("prefix", ""),
                                     spec.get("start", 1))

    def close(self) -> None:
        self.engine.dispose()
