"""Between HTML forms and records: which fields a layout shows, and reading them back.

Only fields the form actually shows are read, so a crafted request cannot set a field the
layout hides. Composite fields (an address, a currency amount, a parent link) appear in
layouts under their group name and are read as their sub-fields.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile

from core.kernel.fields import FieldError
from core.kernel.registry import FieldDef, ModuleDef
from core.web import uploads

MAX_UPLOAD = uploads.MAX_UPLOAD


def sections(module: ModuleDef, view: str) -> list[dict]:
    return module.sections(view)


def quick_sections(module: ModuleDef) -> list[dict]:
    names = module.quick_create_fields()
    return [{"label": "", "rows": [names[i:i + 2] for i in range(0, len(names), 2)]}]


def form_fields(module: ModuleDef, layout: list[dict]) -> list[FieldDef]:
    """Editable fields on a layout, in order, composites expanded. A document number is
    the sequence's to give unless the module lets writers choose (``manual``)."""
    sequence = module.features.get("sequence") or {}
    numbered = None if sequence.get("manual") else sequence.get("field")
    out, seen = [], {numbered}
    for section in layout:
        for row in section["rows"]:
            for name in row:
                if name is None:
                    continue
                for f in module.expand(name):
                    editable_system = f.name == "assigned_user_id"
                    if f.name not in seen and (not f.system or editable_system) \
                            and f.type.writable(f.spec):
                        seen.add(f.name)
                        out.append(f)
    return out


def read_form(form, fields: list[FieldDef], fmt, files_dir: Path) -> tuple[dict, dict]:
    """(values for the record service, errors found while reading) from a submitted form."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in fields:
        if f.type.widget == "file":  # an upload: stored here, the field keeps its key
            upload = form.get(f.name)
            if isinstance(upload, UploadFile) and upload.filename:
                try:
                    values[f.name] = store_upload(upload, files_dir,
                                                  image=f.type.accept == "image/*",
                                                  label=f.label)
                except FieldError as exc:
                    errors[f.name] = exc.message
            continue
        try:
            values[f.name] = f.type.read_form(form, f, fmt)  # core/kernel/fields.py: FieldType
        except KeyError:
            continue  # not sent
        except FieldError as exc:
            errors[f.name] = exc.message
    return values, errors


def store_upload(upload: UploadFile, files_dir: Path, *, image: bool = False,
                 label: str = "") -> str:
    """Save an uploaded file under a random key; the key is what the field stores. An image
    field's upload must be a real raster image (core/web/uploads.py: FieldError otherwise)."""
    data = uploads.read_upload(upload, image=image, label=label)
    return uploads.store(files_dir, upload.filename, data)


def form_state(record: dict, fields: list[FieldDef], fmt) -> dict[str, Any]:
    """What each input shows for a stored record (datetimes in the user's time zone)."""
    state = {}
    for f in fields:
        state[f.name] = f.type.form_text(record.get(f.name), fmt)
    return state


def base_snapshot(record: dict, fields: list[FieldDef]) -> str:
    """The edited values as the user first saw them, carried in the form so a conflicting
    save can name what someone else changed meanwhile."""
    return json.dumps({"version": record["version"],
                       "values": {f.name: f.type.to_text(record.get(f.name)) for f in fields}})


def read_snapshot(text: str, module: ModuleDef) -> dict | None:
    try:
        data = json.loads(text)
        base = {"version": int(data["version"])}
        for name, value in data["values"].items():
            f = module.fields[name]
            base[name] = f.type.normalize(value, f.spec) if value != "" else \
                f.type.blank_value()
        return base
    except (ValueError, KeyError, TypeError, FieldError):
        return None
