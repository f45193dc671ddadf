"""The metadata registry: strict schemas, precise refusals, and the layered merge."""
import json
import textwrap

import jsonschema
import pytest
import sqlalchemy as sa

from core.apps.field_types.types import TYPES
from core.kernel.errors import MetadataError
from core.kernel.registry import SCHEMA_DIR, Layer, build_registry, read_folder
from core.kernel.site import Site
from tests.pack_util import register

MODULE = """\
name: things
label: Things
fields:
  name: {type: name, required: true}
  size: {type: dropdown, options: thing_size_dom}
{extra}layouts:
  list: {columns: [name, size]}
"""
DROPDOWNS = """\
thing_size_dom:
  - {value: s, label: Small}
  - {value: l, label: Large}
"""


def write(folder, relative, text):
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def build(*folders):
    problems = []
    layers = [Layer(f"layer{i}", read_folder(folder, problems)) for i, folder in enumerate(folders)]
    if problems:
        raise MetadataError(problems)
    return build_registry(layers, TYPES)


@pytest.fixture
def base(tmp_path):
    folder = tmp_path / "base"
    write(folder, "modules/things.yaml", MODULE.replace("{extra}", ""))
    write(folder, "dropdowns/things.yaml", DROPDOWNS)
    return folder


def refusal(*folders) -> str:
    with pytest.raises(MetadataError) as caught:
        build(*folders)
    return str(caught.value)


@pytest.mark.parametrize("name", sorted(p.name for p in SCHEMA_DIR.glob("*.json")))
def test_schemas_are_valid_against_the_metaschema(name):
    schema = json.loads((SCHEMA_DIR / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)


def test_a_valid_definition_builds(base):
    registry = build(base)
    things = registry.module("things")
    assert list(things.fields)[:7] == ["id", "created_at", "created_by", "modified_at",
                                       "modified_by", "deleted", "version"]
    assert things.fields["size"].spec["options"] == "thing_size_dom"
    assert registry.option_values("thing_size_dom") == {"s", "l"}


def test_broken_yaml_names_file_line_and_column(base):
    path = write(base, "modules/broken.yaml", "name: broken\nfields: {name: [type: text}\n")
    message = refusal(base)
    assert str(path) in message
    assert "line 2, column" in message and "YAML syntax error" in message


def test_schema_violation_names_the_json_path(base):
    path = write(base, "modules/bad.yaml", """\
        name: bad
        label: Bad
        fields:
          name: {type: name, max_size: -5}
          note: {type: text, colour: red}
        """)
    message = refusal(base)
    assert f"{path}: $.fields.name.max_size: -5 is less than the minimum of 1" in message
    assert f"{path}: $.fields.note: Additional properties are not allowed ('colour' was unexpected)" in message


def test_unknown_field_type_is_refused_with_the_known_ones(base):
    path = write(base, "modules/odd.yaml", """\
        name: odd
        label: Odd
        fields:
          name: {type: name}
          mood: {type: feelings}
        """)
    message = refusal(base)
    assert f"{path}: $.fields.mood.type: unknown field type 'feelings' (known: address," in message


@pytest.mark.parametrize("field,path,reason", [
    ("{type: dropdown, options: nope_dom}", "$.fields.x.options", "no dropdown list named 'nope_dom'"),
    ("{type: dropdown}", "$.fields.x", "needs 'options'"),
    ("{type: related, module: ghosts}", "$.fields.x", "related module 'ghosts' does not exist"),
    ("{type: calculated, formula: 'add(1, '}", "$.fields.x.formula", "formula error: unexpected end of formula at line 1, column 8"),
    ("{type: calculated, formula: 'add(1, weight)'}", "$.fields.x.formula", "unknown field 'weight'"),
    ("{type: text, depends_on: {field: name, values: [a]}}", "$.fields.x.depends_on.field", "must name a dropdown"),
    ("{type: dropdown, options: thing_size_dom, depends_on: {field: size, values: [xl]}}", "$.fields.x.depends_on.values", "'xl' is not an option of 'size'"),
    ("{type: dropdown, options: thing_size_dom, default: huge}", "$.fields.x.default", "'huge' is not in thing_size_dom"),
    ("{type: integer, default: many}", "$.fields.x.default", "invalid default"),
    ("{type: related_value, related_field: name, source_field: y}", "$.fields.x.related_field", "must name a related field"),
])
def test_cross_reference_errors(base, field, path, reason):
    source = write(base, "modules/things.yaml", MODULE.replace("{extra}", f"  x: {field}\n"))
    message = refusal(base)
    assert f"{source}: {path}: " in message and reason in message


@pytest.mark.parametrize("extra,path,reason", [
    ("features: {email_to: [size]}\n", "$.features.email_to[0]",
     "must name a related field of this module"),
    ("features: {email_to: [ghost_id]}\n", "$.features.email_to[0]",
     "must name a related field of this module"),
    ("fields:\n  x: {type: related, module: things, filter_by: {size: name}}\n",
     "$.fields.x.filter_by.size", "module 'things' has no related or user field 'size'"),
    ("fields:\n  x: {type: related, module: things, filter_by: {created_by: ghost}}\n",
     "$.fields.x.filter_by.created_by", "no field 'ghost' in this module"),

    ("fields:\n  x: {type: related, module: things, fill: {ghost: name}}\n",
     "$.fields.x.fill.ghost", "no field 'ghost' in this module"),
    ("fields:\n  x: {type: related, module: things, fill: {name: ghost}}\n",
     "$.fields.x.fill.name", "module 'things' has no field 'ghost'"),
    ("fields:\n  x: {type: related, module: things, fill: {name: size}}\n",
     "$.fields.x.fill.name", "'name' and things.size differ in type, parts or dropdowns"),
    (("fields:\n  x: {type: related, module: things, fill: {where: name}}\n  where: "
      "{type: address}\n"), "$.fields.x.fill.where", "differ in type, parts or dropdowns"),
])
def test_document_options_name_fields_that_exist(base, extra, path, reason):
    if extra.startswith("fields:"):  # a field of its own
        extra, field = "", extra.split("\n", 1)[1]
    else:
        field = ""
    source = write(base, "modules/things.yaml", MODULE.replace("{extra}", field).replace(
        "fields:", extra + "fields:"))
    message = refusal(base)
    assert f"{source}: {path}: " in message and reason in message


def test_layout_and_relationship_references_are_checked(base):
    source = write(base, "modules/things.yaml", MODULE.replace("{extra}", "").replace(
        "layouts:\n  list: {columns: [name, size]}\n",
        "relationships:\n  parts: {kind: one_to_many, module: things, field: name}\n"
        "layouts:\n  list: {columns: [name, colour]}\n  subpanels: [stuff]\n"))
    message = refusal(base)
    assert f"{source}: $.layouts.list.columns[1]: no field 'colour'" in message
    assert f"{source}: $.layouts.subpanels[0]: no relationship 'stuff'" in message
    assert f"{source}: $.relationships.parts.field: must name a related field" in message


def test_every_problem_is_reported_at_once(base):
    write(base, "modules/a.yaml", "name: a\nlabel: A\nfields: {x: {type: nope}}\n")
    write(base, "modules/b.yaml", "name: b\nfields: {x: {type: text}}\n")
    with pytest.raises(MetadataError) as caught:
        build(base)
    assert len(caught.value.problems) == 2


def test_a_module_defined_twice_in_the_base_layer_is_refused(base, tmp_path):
    other = tmp_path / "other"
    write(other, "modules/things.yaml", MODULE.replace("{extra}", ""))
    write(other, "dropdowns/x.yaml", DROPDOWNS.replace("thing_size_dom", "other_dom"))
    combined = [Layer("plugins", read_folder(base, []) + read_folder(other, []))]
    with pytest.raises(MetadataError, match="module 'things' already defined in"):
        build_registry(combined, TYPES)


def test_layers_merge_in_order(base, tmp_path):
    pack = tmp_path / "pack"
    write(pack, "modules/things.yaml", """\
        name: things
        label: Stuff
        fields:
          size: {label: Size, required: true}
          colour: {type: text, max_size: 30}
        layouts:
          list: {columns: [name, colour]}
        """)
    write(pack, "dropdowns/sizes.yaml", DROPDOWNS + "  - {value: m, label: Medium}\n")
    site_layer = tmp_path / "site"
    write(site_layer, "modules/things.yaml", """\
        name: things
        fields:
          colour: {max_size: 60}
          size: null
        """)
    registry = build(base, pack, site_layer)
    things = registry.module("things")
    assert things.label == "Stuff"  # pack over base
    assert things.fields["colour"].spec["max_size"] == 60  # site over pack
    assert "size" not in things.fields  # removed by the site layer
    assert things.layouts["list"]["columns"] == ["name", "colour"]  # lists replace
    assert registry.option_values("thing_size_dom") == {"s", "l", "m"}
    assert things.sources == [str(base / "modules/things.yaml"), str(pack / "modules/things.yaml"),
                              str(site_layer / "modules/things.yaml")]


def test_an_overlay_that_breaks_the_merged_module_is_refused(base, tmp_path):
    pack = tmp_path / "pack"
    write(pack, "modules/things.yaml", "name: things\nfields: {extra: {label: No type}}\n")
    message = refusal(base, pack)
    assert "$.fields.extra: 'type' is a required property" in message


def test_site_layers_plugins_packs_and_database_customizations(make_site, admin):
    site = make_site()
    pack = site.folder / "packs" / "sizes"
    write(pack, "modules/widgets.yaml", "name: widgets\nfields: {weight: {type: decimal}}\n")
    register(site, {"name": "sizes", "kind": "module", "version": "1.0", "title": "Sizes"})
    customizations = site.tables.tables["crbm_customizations"]
    with site.engine.begin() as conn:
        conn.execute(customizations.insert().values(
            kind="module", name="widgets", modified_at=sa.func.now(),
            body=json.dumps({"name": "widgets", "label": "Gizmos",
                             "fields": {"weight": {"label": "Weight (kg)"}}})))
    site.reload()
    widgets = site.registry.module("widgets")
    assert widgets.label == "Gizmos"
    assert widgets.fields["weight"].type.name == "decimal"
    assert widgets.fields["weight"].spec["label"] == "Weight (kg)"
    assert widgets.sources[-1] == "site customization: module widgets"


def test_boot_stops_on_invalid_metadata_and_keeps_nothing_half_loaded(make_site):
    site = make_site()
    before = site.registry
    write(site.folder / "packs" / "broken", "modules/widgets.yaml",
          "name: widgets\nfields: {weight: {type: nonsense}}\n")
    register(site, {"name": "broken", "kind": "module", "version": "1.0", "title": "Broken"})
    with pytest.raises(MetadataError, match=r"packs/broken/modules/widgets.yaml: \$.fields.weight.type"):
        site.reload()
    assert site.registry is before  # the running site keeps its last good registry
    with pytest.raises(MetadataError):
        Site(site.folder)
