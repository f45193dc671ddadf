"""A site: one CRBM installation, booted from its folder and its database.

The folder holds ``site.yaml`` (the database URL and the secret key — the only settings
that cannot live in the database), uploaded files, and installed packs. Everything else
is in the database, so any number of stateless web workers can boot the same site.

Boot order: plugins -> registry (plugin base, packs, site customizations) -> tables ->
record service. A registry error stops boot before anything is served.
"""
from __future__ import annotations

import json
import secrets
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
import yaml

from core import access_admin, database, plugins, sequences
from core.access import AccessControl
from core.errors import CrbmError, MetadataProblem
from core.records import RecordService
from core.registry import Document, Layer, MetadataError, Registry, build_registry, read_folder

CONFIG = "site.yaml"


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
    config = {
        "database_url": database_url or f"sqlite:///{folder / 'crbm.db'}",
        "secret_key": secrets.token_urlsafe(32),
    }
    (folder / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    (folder / CONFIG).chmod(0o600)  # it holds the secret key
    return folder


class Site:
    def __init__(self, folder: Path, *, database_url: str | None = None,
                 extra_plugins: list[ModuleType] = (), engine: sa.Engine | None = None):
        self.folder = Path(folder).resolve()
        config_path = self.folder / CONFIG
        if not config_path.is_file():
            raise SiteError(f"no site at {self.folder} (run `crbm init` first)")
        self.config = yaml.safe_load(config_path.read_text()) or {}
        self.database_url = database_url or self.config["database_url"]
        self.engine = engine or database.engine_for(self.database_url)
        self.plugin_manager, self.plugins = plugins.load_plugins(list(extra_plugins))
        self.hook = self.plugin_manager.hook
        self.reload()

    def reload(self) -> None:
        """Rebuild the registry from all layers; on error the old one stays in place."""
        registry = build_registry(self.layers(), self._extra_field_types())
        self.registry: Registry = registry
        self.tables = database.schema_for(registry)
        self.access = AccessControl(self.engine, self.tables, lambda: self.settings)
        self.records = RecordService(self.engine, registry, self.tables, self.hook, self.access,
                                     settings=lambda: self.settings)

    def _extra_field_types(self):
        return [t for types in self.hook.crbm_field_types() for t in types]

    def layers(self) -> list[Layer]:
        problems: list[MetadataProblem] = []
        base = Layer("plugins")
        for plugin in self.plugins:
            base.documents += read_folder(plugin.folder, problems)
        for folders in self.hook.crbm_metadata_dirs():
            for folder in folders:
                base.documents += read_folder(Path(folder), problems)
        packs = Layer("packs")
        for pack in sorted(p for p in (self.folder / "packs").glob("*") if p.is_dir()):
            packs.documents += read_folder(pack, problems)
        if problems:
            raise MetadataError(problems)
        return [base, packs, self._customizations()]

    def _customizations(self) -> Layer:
        layer = Layer("site")
        if not sa.inspect(self.engine).has_table("crbm_customizations"):
            return layer  # a new database: nothing customized yet
        kernel = sa.MetaData()
        database.kernel_tables(kernel)
        table = kernel.tables["crbm_customizations"]
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table).order_by(table.c.kind.desc(), table.c.name))
            for row in rows:
                kind = "module" if row.kind == "module" else "dropdowns"
                layer.documents.append(Document(f"site customization: {row.kind} {row.name}",
                                                kind, json.loads(row.body)))
        return layer

    # -- settings (stored in the database, so every worker sees the same) ------------------

    @property
    def settings(self) -> dict:
        """Site settings as a dict of JSON values ({} before the first sync)."""
        table = self.tables.tables["crbm_settings"]
        try:
            with self.engine.connect() as conn:
                return {row.key: json.loads(row.value) for row in conn.execute(sa.select(table))}
        except sa.exc.OperationalError:
            return {}  # tables not created yet
        except sa.exc.ProgrammingError:
            return {}

    def set_setting(self, key: str, value) -> None:
        table = self.tables.tables["crbm_settings"]
        with self.engine.begin() as conn:
            conn.execute(table.delete().where(table.c.key == key))
            if value is not None:
                conn.execute(table.insert().values(key=key, value=json.dumps(value)))

    # -- schema ----------------------------------------------------------------------------

    def check_schema(self) -> database.SchemaDiff:
        return database.check(self.engine, self.registry)

    def sync_schema(self, allow_drop: bool = False) -> database.SchemaDiff:
        diff = database.sync(self.engine, self.registry, allow_drop=allow_drop)
        self._ensure_sequences()
        access_admin.ensure_builtins(self)
        return diff

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
