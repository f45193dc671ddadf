"""Message extraction and catalog upkeep for translators: the tooling apart from the
i18n runtime (``core.kernel.i18n``), which a running site needs without Babel's extractors.

``python -m core.i18n_tools update LOCALE/<lang>/LC_MESSAGES/crbm.po ...`` merges the
messages of ``core/``, ``plugins/`` and ``cli.py`` (and the labels of the YAML metadata)
into a catalog and lists what is left to translate; the pack checker runs
``catalog_problems`` on a language pack's catalogs.
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from pathlib import Path

import yaml
from babel.messages import frontend
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir, extract_from_file
from babel.messages.pofile import read_po, write_po

from core.kernel.i18n import DOMAIN

ROOT = Path(__file__).resolve().parent.parent  # the repository (babel.cfg, core/, plugins/)


def extract_catalog(sources: Sequence[Path] | None = None) -> Catalog:
    """Every marked message in ``sources`` (default core/, plugins/, cli.py): Python and
    templates by the method map in babel.cfg, plus the labels of module and dropdown YAML
    files (``modules/*.yaml``, ``extends/*.yaml``, ``dropdowns/*.yaml`` in a source folder
    or its subfolders)."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as f:
        parse = getattr(frontend, "parse_mapping_cfg", None) or frontend.parse_mapping  # Babel 2.14
        method_map, options_map = parse(f)
    catalog = Catalog(project="CRBM", domain=DOMAIN, charset="utf-8")

    def add(path: Path, lineno, message, comments=(), context=None):
        where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        catalog.add(message, None, [(where.as_posix(), lineno)], auto_comments=comments,
                    context=context)

    for source in sources or (ROOT / "core", ROOT / "plugins", ROOT / "cli.py"):
        source = Path(source)
        if source.is_dir():
            for name, *rest in extract_from_dir(source, method_map, options_map,
                                                comment_tags=("TRANSLATORS:",),
                                                strip_comment_tags=True):
                add(source / name, *rest)
            # a plugin's extends/ holds module overlays: labels like its modules/
            for folder, kind in (("modules", "modules"), ("extends", "modules"),
                                 ("dropdowns", "dropdowns")):
                for path in sorted({*source.glob(f"{folder}/*.yaml"),
                                    *source.glob(f"*/{folder}/*.yaml")}):
                    for lineno, message in yaml_labels(path, kind):
                        add(path, lineno, message)
        elif source.is_file():
            for rest in extract_from_file("python", source, comment_tags=("TRANSLATORS:",),
                                          strip_comment_tags=True):
                add(source, *rest)
    return catalog


def extract_messages(output: Path, sources: Sequence[Path] | None = None) -> int:
    """Write a .pot of ``extract_catalog(sources)``; returns how many messages it holds."""
    catalog = extract_catalog(sources)
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("wb") as f:
        write_po(f, catalog, width=88, sort_by_file=True)
    return len(catalog)


# Where a person-readable label sits in a module definition (str: any key, int: any index).
_MODULE_LABELS = (("label",), ("label_singular",), ("tab_group",), ("fields", str, "label"),
                  ("fields", str, "help"), ("relationships", str, "label"),
                  ("layouts", "detail", int, "label"), ("layouts", "edit", int, "label"),
                  ("features", "transitions", "actions", int, "label"),  # the buttons
                  ("add", "detail", int, "label"), ("add", "edit", int, "label"))  # overlays
_DROPDOWN_LABELS = ((str, int, "label"),)


def _matches(trail: tuple, pattern: tuple) -> bool:
    return len(trail) == len(pattern) and all(
        p == t if not isinstance(p, type) else isinstance(t, p) for t, p in zip(trail, pattern))


def yaml_labels(path: Path, kind: str) -> list[tuple[int, str]]:
    """(line, text) of each label a person reads in a ``modules`` or ``dropdowns`` YAML file,
    including the label a field without one gets from its name. A file that does not parse
    gives nothing here (the registry reports it)."""
    from core.kernel.registry import default_label  # the registry imports this module

    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return []
    patterns = _MODULE_LABELS if kind == "modules" else _DROPDOWN_LABELS
    found: list[tuple[int, str]] = []

    def walk(node, trail: tuple) -> None:
        if isinstance(node, yaml.MappingNode):
            keys = {k.value for k, _ in node.value}
            if kind == "modules" and len(trail) == 2 and trail[0] == "fields" \
                    and "label" not in keys:
                found.append((node.start_mark.line + 1, default_label(trail[1])))
            for key, value in node.value:
                walk(value, (*trail, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*trail, index))
        elif isinstance(node, yaml.ScalarNode) and node.value.strip() \
                and any(_matches(trail, p) for p in patterns):
            found.append((node.start_mark.line + 1, node.value))

    if root is not None:
        walk(root, ())
    return found


_PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[#0 +-]*\d*(?:\.\d+)?([sdifrx])")


def _placeholders(text: str) -> list[str]:
    """``%(name)s`` and ``%s`` style placeholders, sorted (``%%`` is a literal percent)."""
    return sorted(m.group(0) for m in _PLACEHOLDER.finditer(text.replace("%%", "")))


def _placeholder_mismatch(msgid, forms: list[str]) -> str | None:
    """The first translation whose placeholders would break formatting, if any."""
    if not isinstance(msgid, tuple | list):
        expected = _placeholders(msgid)
        return next((form for form in forms if _placeholders(form) != expected), None)
    # Plural forms: a form may leave out a placeholder ("une minute" for n=1 in some
    # languages), but none may add one, and some form must use them all.
    expected = set().union(*(_placeholders(i) for i in msgid))
    extra = next((form for form in forms if not set(_placeholders(form)) <= expected), None)
    if extra is not None:
        return extra
    if not any(set(_placeholders(form)) == expected for form in forms):
        return forms[-1]
    return None


def catalog_problems(po_path: Path, messages=None) -> list[str]:
    """What keeps the catalog at ``po_path`` from being complete: each message of the
    current extraction (or of ``messages``: a Catalog, or msgids, a plural as a
    (singular, plural) tuple) that is missing, empty or fuzzy there, and each translation
    whose placeholders differ from its msgid's. One readable line per problem."""
    po_path = Path(po_path)
    try:
        with po_path.open("rb") as f:
            po = read_po(f, domain=DOMAIN)
    except (OSError, ValueError) as exc:
        return [f"cannot read {po_path.name}: {exc}"]
    if messages is None:
        messages = extract_catalog()
    wanted = [(m.id, m.context) for m in messages if m.id] if isinstance(messages, Catalog) \
        else [(m, None) for m in messages]
    problems = []
    for msgid, context in wanted:
        shown = repr(msgid[0] if isinstance(msgid, tuple | list) else msgid)
        found = po.get(msgid, context)
        if found is None:
            problems.append(f"missing: {shown}")
            continue
        forms = list(found.string) if isinstance(found.string, tuple | list) else [found.string]
        if not all(forms):
            problems.append(f"empty: {shown}")
        elif found.fuzzy:
            problems.append(f"fuzzy: {shown}")
        else:
            bad = _placeholder_mismatch(msgid, forms)
            if bad is not None:
                problems.append(f"placeholders differ: {shown} -> {bad!r}")
    return problems


def _text(msgid) -> str:
    return msgid[0] if isinstance(msgid, tuple | list) else msgid


def _reworded(text: str, candidates: dict):
    """The candidate message whose text is nearly ``text`` (a small rewording), if any."""
    ratio = {key: difflib.SequenceMatcher(None, text, key).ratio() for key in candidates}
    best = max(ratio, key=ratio.get, default=None)
    return candidates[best] if best is not None and ratio[best] >= 0.8 else None


def update_catalog(po_path: Path, sources: Sequence[Path] | None = None) -> list[str]:
    """Merge a fresh extraction into the .po at ``po_path`` (``<lang>/LC_MESSAGES/crbm.po``;
    made if missing): new messages come in untranslated, a changed one keeps its old
    translation marked fuzzy, vanished ones go. Returns one line per change, so whoever
    translates next sees what to do; ``catalog_problems`` then lists what is still open."""
    po_path = Path(po_path)
    language = po_path.parent.parent.name
    template = extract_catalog(sources)
    if po_path.is_file():
        with po_path.open("rb") as f:
            catalog = read_po(f, locale=language, domain=DOMAIN)
    else:
        catalog = Catalog(locale=language, domain=DOMAIN, project="CRBM", charset="utf-8")
    before = {m.id for m in catalog if m.id}
    # Babel's own fuzzy matching pairs short labels at random ("Install" -> "All"): only
    # a close rewording of a message that went away keeps its translation, marked fuzzy.
    catalog.update(template, no_fuzzy_matching=True)
    gone = {_text(m.id): m for m in catalog.obsolete.values()}
    changes, reworded = [], set()
    for message in catalog:
        if not message.id or message.id in before:
            continue
        old = _reworded(_text(message.id), gone)
        if old is not None and isinstance(old.string, str) == isinstance(message.id, str):
            message.string, message.previous_id = old.string, [_text(old.id)]
            message.flags.add("fuzzy")
            reworded.add(_text(old.id))
            changes.append(f"fuzzy (check the old translation): {message.id!r}")
        else:
            changes.append(f"new: {message.id!r}")
    changes += [f"removed: {text!r}" for text in gone if text not in reworded]
    po_path.parent.mkdir(parents=True, exist_ok=True)
    with po_path.open("wb") as f:
        write_po(f, catalog, width=88, sort_by_file=True, ignore_obsolete=True)
    return changes


if __name__ == "__main__":  # python -m core.i18n_tools update PATH/TO/crbm.po [...]
    import sys

    if len(sys.argv) < 3 or sys.argv[1] != "update":
        sys.exit("usage: python -m core.i18n_tools update LOCALE/<lang>/LC_MESSAGES/crbm.po ...")
    for po_file in sys.argv[2:]:
        lines = update_catalog(Path(po_file))
        print(f"{po_file}: {len(lines)} change(s)", *lines, sep="\n  ")
        problems = catalog_problems(Path(po_file))
        print(f"{po_file}: {len(problems)} message(s) to translate or fix")
