"""What other plugins add to the compose page (the emails plugin's own hook
``crbm_email_compose``, plugins/emails/hookspecs.py): defaults for To and Subject when
writing from a record, and more fields of the emails module to fill in ("New case status").

Contract: ``extras(site, user, module, record_id)`` merges every implementation's answer
(first To and Subject given win; fields in plugin order, each name once, only fields the
emails module has). The compose page shows each field as a select of its options (the
default chosen); the post keeps a value only when it is one of the field's options — any
other is dropped, never stored."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ComposeField:
    name: str  # a field of the emails module
    label: str  # English, N_-marked: translated when drawn
    options: tuple[tuple[str, str], ...]  # (value, label)
    default: str = ""


@dataclass(frozen=True)
class ComposeExtras:
    to: str | None = None
    subject: str | None = None
    fields: tuple[ComposeField, ...] = field(default_factory=tuple)


def extras(site, user, module: str | None, record_id: str | None) -> ComposeExtras:
    hook = getattr(site.hook, "crbm_email_compose", None)
    if hook is None or not module or not record_id:
        return ComposeExtras()
    to = subject = None
    fields: dict[str, ComposeField] = {}
    emails = site.registry.module("emails")
    for found in hook(site=site, module=module, record_id=record_id, user=user):
        if not found:
            continue
        to = to or found.to
        subject = subject or found.subject
        for f in found.fields:
            if f.name in emails.fields:
                fields.setdefault(f.name, f)
    return ComposeExtras(to, subject, tuple(fields.values()))


def posted(extra: ComposeExtras, form) -> dict:
    """The extra fields' values from a posted compose form (only their options)."""
    out = {}
    for f in extra.fields:
        value = str(form.get(f.name) or "")
        if value in {v for v, _ in f.options}:
            out[f.name] = value
    return out
