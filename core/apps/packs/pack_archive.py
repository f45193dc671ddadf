"""The pack format: a zip with ``pack.yaml`` at its root, read safely and checked offline.

Nothing here touches a site. ``open_archive`` refuses what could harm the machine (path
traversal, absolute paths, symlinks, oversize archives, compression bombs) before a byte
is written; ``unpack`` writes into a staging folder; ``check_folder`` checks a pack (or
plugin) folder the way ``crbm validate`` and the installer do; ``build`` zips a folder
after checking it.
"""
from __future__ import annotations

import hashlib
import io
import re
import stat
import unicodedata
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import jsonschema
import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from core.kernel.errors import CrbmError, MetadataProblem
from core.kernel.registry import (
    ModuleDef,
    json_path,
    load_schema,
    read_extensions,
    read_folder,
    schema_problems,
)

MANIFEST = "pack.yaml"
MANIFEST_SCHEMA = load_schema("pack")
MANIFEST_VALIDATOR = jsonschema.Draft202012Validator(MANIFEST_SCHEMA)
KINDS = tuple(MANIFEST_SCHEMA["properties"]["kind"]["enum"])

# Limits: a pack is metadata, templates, catalogs and images, never hundreds of megabytes.
MAX_ARCHIVE_BYTES = 50 * 2**20
MAX_UNPACKED_BYTES = 200 * 2**20
MAX_ENTRIES = 5000
MAX_RATIO = 100  # deflate reaches ~1000:1 on zeros; real text and images stay far below 100

ASSETS = frozenset({".css", ".js", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".ico",
                    ".woff", ".woff2"})
_CODE_PACK_FILES = [("modules/", {".yaml"}), ("extends/", {".yaml"}), ("dropdowns/", {".yaml"}),
                    ("templates/", {".html"}),
                    ("static/", ASSETS), ("pdf/", {".yaml"}), ("locale/", {".po"}), ("", {".py"})]
# What each kind may carry, as (folder prefix, allowed suffixes); plus pack.yaml and README.md.
ALLOWED_FILES: dict[str, list[tuple[str, set[str]]]] = {
    "module": _CODE_PACK_FILES,
    "upgrade": _CODE_PACK_FILES,
    "language": [("locale/", {".po"})],
    "theme": [("static/", ASSETS), ("templates/", {".html"})],
    "holiday": [],
    "personality": [("customizations.yaml", {".yaml"}), ("packs/", {".zip"})],
}
ROOT_FILES = {MANIFEST, "README.md"}
IGNORED_IN_BUILD = {"__pycache__", ".DS_Store"}


@dataclass(frozen=True)
class Problem:
    where: str  # a file inside the pack, or "pack.yaml: $.requires.crbm"
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


class PackError(CrbmError):
    """A pack was refused, or an operation on one failed; ``problems`` says what and where.

    ``step`` names the install step that refused or failed (see ``core.apps.packs.packs.STEPS``)."""

    def __init__(self, problems: list[Problem], step: str = "validate"):
        self.problems = list(problems)
        self.step = step
        super().__init__("; ".join(map(str, self.problems)))


def refuse(where: str, reason: str, step: str = "validate") -> PackError:
    return PackError([Problem(where, reason)], step)


@dataclass
class Manifest:
    name: str
    kind: str
    version: Version
    title: str
    body: dict  # the manifest as written

    @property
    def requires(self) -> dict:
        return self.body.get("requires", {})

    @property
    def provides(self) -> dict:
        return self.body.get("provides", {})

    def required_packs(self) -> dict[str, SpecifierSet]:
        return {name: SpecifierSet(spec or "") for name, spec in self.requires.get("packs", {}).items()}

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


def parse_manifest(text: str | bytes, where: str = MANIFEST) -> Manifest:
    """Read and strictly check a manifest; raises ``PackError`` listing every problem."""
    try:
        body = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark else ""
        raise refuse(where, f"YAML syntax error{at}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(body, dict):
        raise refuse(where, "must be a mapping with name, kind, version and title")
    if isinstance(body.get("version"), int | float):
        body["version"] = str(body["version"])  # `version: 1.0` is a YAML float
    problems = [Problem(where, f"{json_path(e.absolute_path)}: {_schema_message(e)}")
                for e in sorted(MANIFEST_VALIDATOR.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))]
    version = None
    if isinstance(body.get("version"), str):
        try:
            version = Version(body["version"])
        except InvalidVersion:
            problems.append(Problem(where, f"$.version: {body['version']!r} is not a PEP 440 version"))
    requires = body.get("requires") if isinstance(body.get("requires"), dict) else {}
    specs = {"$.requires.crbm": requires.get("crbm")}
    for name, spec in (requires.get("packs") or {}).items() if isinstance(requires.get("packs"), dict) else ():
        specs[f"$.requires.packs.{name}"] = spec
    for path, spec in specs.items():
        if isinstance(spec, str) and spec:
            try:
                SpecifierSet(spec)
            except InvalidSpecifier:
                problems.append(Problem(where, f"{path}: {spec!r} is not a PEP 440 version range"))
    if problems:
        raise PackError(problems)
    return Manifest(body["name"], body["kind"], version, body["title"], body)


def _schema_message(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":  # say which key, and that it is unknown
        unknown = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        known = ", ".join(error.schema.get("properties", {}))
        return f"unknown key {', '.join(map(repr, unknown))} (known: {known})"
    return error.message


# -- reading an archive safely ---------------------------------------------------------------

@dataclass
class Archive:
    """A checked zip: its manifest, its file names, and its content digest."""

    manifest: Manifest
    zip: zipfile.ZipFile
    files: list[str]
    digest: str
    size: int
    _members: dict[str, zipfile.ZipInfo] = field(default_factory=dict)

    @property
    def has_code(self) -> bool:
        return any(name.endswith(".py") for name in self.files)

    def read(self, name: str) -> bytes:
        return _read_capped(self.zip, self._members[name])


MAX_UPLOAD_NAME = 255  # what file systems allow for one name


def upload_name(filename: str) -> tuple[str, str | None]:
    """The name to show and record for an uploaded file, and why it is refused (None when
    it is not). Browsers send a bare file name (old ones a Windows path, whose last part is
    taken). A name that walks up (``..``), is no name (``/``, ``.``), holds control or
    direction characters (NUL, line breaks, right-to-left overrides that disguise it) or is
    longer than a file system allows is refused, never used: the name is only ever shown
    and recorded (uploads are stored under a random id), but it must not break either."""
    def visible(text: str) -> str:
        return "".join("?" if unicodedata.category(ch) in ("Cc", "Cf") else ch for ch in text)

    parts = re.split(r"[\\/]", filename)
    base = parts[-1].strip()
    shown = visible(filename.strip())[:100] or "?"  # a refused name, as sent (made visible)
    if shown != filename.strip()[:100]:
        return shown, "the file name contains control characters"
    if len(filename) > MAX_UPLOAD_NAME:
        return shown, f"the file name is longer than {MAX_UPLOAD_NAME} characters"
    if ".." in (part.strip() for part in parts) or base in ("", "."):
        return shown, "the file name is a path, not the name of a file"
    return base[:100], None


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _unsafe_name(name: str) -> str | None:
    if "\\" in name:
        return "backslash in path"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in PurePosixPath(name).parts:
        return "path goes outside the pack (..)"
    if "\x00" in name:
        return "NUL in path"
    return None


def _read_capped(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """The member's bytes, refusing to inflate more than its header declares (a lying
    header is the other way to hide a bomb)."""
    limit = info.file_size
    out = io.BytesIO()
    with archive.open(info) as stream:
        while chunk := stream.read(1 << 16):
            if out.tell() + len(chunk) > limit:
                raise refuse(info.filename, "expands beyond its declared size (compression bomb?)")
            out.write(chunk)
    return out.getvalue()


def open_archive(data: bytes, source: str = "pack") -> Archive:
    """Check a pack zip held in memory. Raises ``PackError`` before anything is unpacked."""
    if len(data) > MAX_ARCHIVE_BYTES:
        raise refuse(source, f"archive is {len(data) // 2**20} MB; packs may be at most "
                     f"{MAX_ARCHIVE_BYTES // 2**20} MB")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise refuse(source, f"not a zip file ({exc})") from None
    problems: list[Problem] = []
    if len(infos) > MAX_ENTRIES:
        raise refuse(source, f"{len(infos)} entries; at most {MAX_ENTRIES} allowed")
    total = 0
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename
        reason = _unsafe_name(name)
        if reason:
            problems.append(Problem(name, f"refused: {reason}"))
            continue
        if _is_symlink(info):
            problems.append(Problem(name, "refused: symbolic links are not allowed in packs"))
            continue
        if info.is_dir():
            continue
        total += info.file_size
        if info.file_size > 2**20 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            problems.append(Problem(name, f"refused: expands {info.file_size // max(info.compress_size, 1)}"
                                    f" times (compression bomb?)"))
        members[name] = info
    if total > MAX_UNPACKED_BYTES:
        problems.append(Problem(source, f"refused: unpacks to {total // 2**20} MB; at most "
                                f"{MAX_UNPACKED_BYTES // 2**20} MB allowed (compression bomb?)"))
    if problems:
        raise PackError(problems)
    if MANIFEST not in members:
        raise refuse(source, "no pack.yaml at the root of the archive (build packs with "
                     "`crbm pack build DIR`)")
    try:
        manifest = parse_manifest(_read_capped(archive, members[MANIFEST]))
    except zipfile.BadZipFile as exc:
        raise refuse(MANIFEST, f"cannot be read ({exc})") from None
    files = sorted(members)
    problems = [Problem(name, reason) for name in files
                if (reason := disallowed(manifest.kind, name))]
    if problems:
        raise PackError(problems)
    return Archive(manifest, archive, files, hashlib.sha256(data).hexdigest(), len(data), members)


def disallowed(kind: str, name: str) -> str | None:
    """Why a file may not be in a pack of ``kind`` (None when it may)."""
    if name in ROOT_FILES:
        return None
    suffix = PurePosixPath(name).suffix.lower()
    for prefix, suffixes in ALLOWED_FILES[kind]:
        if name.startswith(prefix) and suffix in suffixes:
            return None
    allowed = ", ".join(f"{p or '*'}{'|'.join(sorted(s))}" if p.endswith("/") or not p else p
                        for p, s in ALLOWED_FILES[kind]) or "nothing but pack.yaml"
    return f"not allowed in a {kind} pack (allowed: pack.yaml, README.md, {allowed})"


def unpack(archive: Archive, target: Path) -> None:
    """Write every member below ``target`` (already checked: no name can escape it)."""
    target.mkdir(parents=True)
    root = target.resolve()
    try:
        for name in archive.files:
            path = (root / name).resolve()
            if not path.is_relative_to(root):  # belt and braces: _unsafe_name refused these
                raise refuse(name, "path goes outside the pack")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(archive.read(name))
    except (zipfile.BadZipFile, OSError) as exc:
        raise refuse(archive.manifest.name, f"cannot unpack: {exc}") from None


# -- checking a folder offline (crbm validate, and the installer's validate step) -----------

def folder_files(folder: Path) -> list[str]:
    out = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part in IGNORED_IN_BUILD or part.endswith(".pyc") or part.startswith(".")
               for part in rel.parts):  # hidden files: editor leftovers, the installer's notes
            continue
        if path.is_symlink():
            out.append(rel.as_posix() + " (symlink)")
        elif path.is_file():
            out.append(rel.as_posix())
    return out


def check_folder(folder: Path, manifest: Manifest | None) -> list[Problem]:
    """Problems in the files of an unpacked pack (or a plugin folder when ``manifest`` is
    None): allowed files, YAML against its schema, per-kind content. Cross-module checks
    need the site's registry and are done by the caller."""
    problems: list[Problem] = []
    files = folder_files(folder)
    if manifest is not None:
        for name in files:
            if name.endswith(" (symlink)"):
                problems.append(Problem(name[:-10], "symbolic links are not allowed in packs"))
            elif reason := disallowed(manifest.kind, name):
                problems.append(Problem(name, reason))
    metadata_problems: list[MetadataProblem] = []
    documents = read_folder(folder, metadata_problems)
    if manifest is not None:  # a plugin's extends/ is read by plugin_layers
        documents += read_extensions(folder, metadata_problems)
    for document in documents:
        validator = "dropdowns" if document.kind == "dropdowns" else "overlay"
        metadata_problems += schema_problems(document, validator)
    problems += [Problem(_rel(p.source, folder), f"{p.path}: {p.reason}") for p in metadata_problems]
    problems += python_problems(folder, [n for n in files if n.endswith(".py")])
    if manifest is None:
        from core.kernel import plugins  # a plugin's own manifest, when it has one

        if (folder / plugins.MANIFEST).is_file():
            problems += [Problem(f"{plugins.MANIFEST}: {where}", reason) for where, reason
                         in plugins.manifest_problems(folder / plugins.MANIFEST)]
        return problems
    provides = manifest.provides
    if manifest.kind == "language":
        declared = set(provides.get("languages", []))
        found = {p.parent.parent.name for p in (folder / "locale").glob("*/LC_MESSAGES/*.po")}
        if not declared:
            problems.append(Problem(MANIFEST, "$.provides.languages: a language pack names its languages"))
        for code in sorted(declared - found):
            problems.append(Problem(MANIFEST, f"$.provides.languages: no catalog for {code!r} "
                                    f"(expected locale/{code}/LC_MESSAGES/crbm.po)"))
        for code in sorted(found - declared):
            problems.append(Problem(f"locale/{code}", "catalog for a language the manifest does not list"))
    if manifest.kind == "theme" and "theme" not in provides:
        problems.append(Problem(MANIFEST, "$.provides.theme: a theme pack gives its label"))
    if manifest.kind == "holiday":
        if "holidays" not in provides:
            problems.append(Problem(MANIFEST, "$.provides.holidays: a holiday pack names its country"))
        else:
            from core.apps.calendar import (
                holidays,  # the holidays library is only needed for these packs
            )
            problems += [Problem(MANIFEST, f"$.provides.holidays: {p}")
                         for p in holidays.problems(provides["holidays"])]
    if manifest.kind == "personality":
        bundled = set(provides.get("bundled", []))
        found = {p.stem.split("-")[0] for p in (folder / "packs").glob("*.zip")}
        for name in sorted(bundled - found):
            problems.append(Problem(MANIFEST, f"$.provides.bundled: packs/{name}-*.zip is missing"))
        if (folder / "customizations.yaml").is_file():
            try:
                body = yaml.safe_load((folder / "customizations.yaml").read_text(encoding="utf-8"))
            except yaml.YAMLError as exc:
                problems.append(Problem("customizations.yaml", f"YAML syntax error: {exc}"))
            else:
                from core.apps.packs import personality
                problems += [Problem("customizations.yaml", p) for p in personality.problems(body)]
    return problems


def module_problems(folder: Path, existing: Mapping[str, ModuleDef]) -> list[Problem]:
    """What a pack's module files may not do, given the modules the site has without it
    (``existing``): ``modules/`` brings new modules only, named by the Studio's rule (no SQL
    words, kernel names, fixed paths: ``core.apps.studio.studio.module_name_problem``); changing a module
    defined elsewhere takes an explicit overlay in ``extends/``, on a module that exists."""
    from core.apps.studio.studio import module_name_problem  # the Studio builds on the pack store

    problems: list[Problem] = []
    own = set()
    for document in read_folder(folder, []):  # unreadable files: check_folder says why
        name = document.body.get("name")
        if document.kind != "module" or not isinstance(name, str):
            continue
        where = _rel(document.source, folder)
        own.add(name)
        if name in existing:
            problems.append(Problem(where, f"$.name: module {name!r} exists already "
                                    f"({_origin(existing[name])}); a pack changes a module it "
                                    f"does not define with an overlay in extends/{name}.yaml"))
        elif reason := module_name_problem(name):
            problems.append(Problem(where, f"$.name: {reason}"))
    for document in read_extensions(folder, []):
        name = document.body.get("name")
        if not isinstance(name, str):
            continue
        where = _rel(document.source, folder)
        if name in own:
            problems.append(Problem(where, f"$.name: {name!r} is this pack's own module; "
                                    f"define it whole in modules/"))
        elif name not in existing:
            problems.append(Problem(where, f"$.name: there is no module {name!r} to extend "
                                    "(a new module goes in modules/)"))
    return problems


def _origin(module: ModuleDef) -> str:
    """Where a module is defined, for a message: "plugins/accounts/modules/accounts.yaml",
    "packs/fleet/modules/vehicles.yaml" or "made in the Studio"."""
    source = module.sources[0] if module.sources else ""
    if source.startswith("site customization"):
        return "made in the Studio"
    parts = Path(source).parts
    for marker in ("plugins", "packs"):
        if marker in parts:
            index = len(parts) - 1 - parts[::-1].index(marker)
            return "/".join(parts[index:])
    return source


def python_problems(folder: Path, names: list[str]) -> list[Problem]:
    """Syntax errors in a pack's Python, found by compiling it: never by importing it, which
    would run it (a check must not run code the site may refuse)."""
    problems = []
    for name in names:
        try:
            compile((folder / name).read_bytes(), name, "exec", dont_inherit=True)
        except SyntaxError as exc:
            problems.append(Problem(name, f"line {exc.lineno}: {exc.msg}"))
        except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes, absurd nesting
            problems.append(Problem(name, f"cannot be compiled: {type(exc).__name__}"))
    return problems


def _rel(source: str, folder: Path) -> str:
    try:
        return Path(source).relative_to(folder).as_posix()
    except ValueError:
        return source


def build(folder: Path, output: Path | None = None) -> Path:
    """Check ``folder`` and zip it as ``<name>-<version>.zip`` (in ``output`` if it is a
    folder, or at ``output``). Deterministic: same files, same bytes."""
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        raise refuse(str(folder), "no pack.yaml in this folder")
    manifest = parse_manifest((folder / MANIFEST).read_bytes(), str(folder / MANIFEST))
    problems = check_folder(folder, manifest)
    if problems:
        raise PackError(problems)
    name = f"{manifest.name}-{manifest.version}.zip"
    target = output / name if output is not None and output.is_dir() else (output or Path(name))
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel in folder_files(folder):
            info = zipfile.ZipInfo(rel, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, (folder / rel).read_bytes())
    return target


def check_offline(target: Path) -> list[Problem]:
    """Everything ``crbm validate`` checks, without a site: a pack zip (safety, manifest,
    files), or a pack or plugin folder: every YAML against its schema, references between
    modules (against the shipped plugins), Python syntax, translations complete."""
    import tempfile

    target = Path(target)
    if target.is_file():
        try:
            archive = open_archive(target.read_bytes(), target.name)
        except PackError as exc:
            return exc.problems
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch) / archive.manifest.name
            unpack(archive, folder)
            return check_offline(folder)
    manifest = None
    if (target / MANIFEST).is_file():
        try:
            manifest = parse_manifest((target / MANIFEST).read_bytes())
        except PackError as exc:
            return exc.problems
    problems = check_folder(target, manifest)  # Python: compiled for syntax, never imported
    problems += _reference_problems(target, manifest)
    for po in sorted(target.glob("locale/*/LC_MESSAGES/*.po")):
        from babel.messages.pofile import read_po

        from core import i18n_tools as i18n
        # a language pack translates everything CRBM says; a module pack its own messages
        messages = None
        if manifest is None or manifest.kind != "language":
            with po.open("rb") as f:
                messages = [m.id for m in read_po(f) if m.id]
        problems += [Problem(_rel(str(po), target), line)
                     for line in i18n.catalog_problems(po, messages)]
    return problems


def _reference_problems(folder: Path, manifest: Manifest | None) -> list[Problem]:
    """Build the registry the shipped plugins plus this folder would give."""
    from core.kernel import plugins
    from core.kernel.errors import MetadataError
    from core.kernel.registry import Layer, build_registry, plugin_layers

    manager, shipped = plugins.load_plugins()
    types = [t for found_types in manager.hook.crbm_field_types(site=None) for t in found_types]
    features = [f for found in manager.hook.crbm_module_features(site=None) for f in found or ()]
    found: list[MetadataProblem] = []
    # a plugin folder stands for the shipped plugin of its name (a copy being worked on)
    others = [p.folder for p in shipped if p.folder.resolve() != folder.resolve()
              and (manifest is not None or p.name != folder.resolve().name)]
    if manifest is not None:
        layers = plugin_layers(others, found) + [Layer("packs", read_folder(folder, found)),
                                                 Layer("pack extensions",
                                                       read_extensions(folder, found))]
    else:  # a plugin's own folder, checked as one of the shipped plugins
        layers = plugin_layers(others + [folder], found)
    if found:
        return []  # syntax problems are reported by check_folder already
    problems = []
    if manifest is not None and manifest.kind in ("module", "upgrade"):
        try:
            problems = module_problems(folder, build_registry(layers[:2], types, features).modules)
        except MetadataError:
            pass  # the shipped plugins' own problems are not this pack's
        if problems:
            return problems
    try:
        registry = build_registry(layers, types, features)
    except MetadataError as exc:
        return [Problem(_rel(p.source, folder), f"{p.path}: {p.reason}") for p in exc.problems]
    if manifest is None:  # at boot an overlay on a module no active plugin has is skipped;
        # here, with every shipped plugin, one naming no module at all is a mistake
        problems = [Problem(_rel(d.source, folder), f"$.name: no plugin defines a module "
                            f"named {d.body.get('name')!r}")
                    for d in layers[1].documents if d.source.startswith(str(folder))
                    and d.body.get("name") not in registry.modules]
    return problems
