"""The errors the kernel raises to its callers (CLI, web, API, import).

Each carries enough detail to tell a user *what* is wrong and *where*, so no caller
ever needs to show a stack trace.
"""
from __future__ import annotations

from dataclasses import dataclass


def N_(message: str) -> str:
    """Mark a message for translation (Babel extracts N_ calls); it stays English here."""
    return message


class Message(str):
    """A user-facing message that can still be translated.

    It is plain English wherever a str is used (logs, CLI, tests); ``template`` and
    ``params`` let the web UI say it in the user's language."""

    template: str
    params: dict

    def __new__(cls, template: str, **params):
        message = super().__new__(cls, template % params if params else template)
        message.template, message.params = template, params
        return message


class CrbmError(Exception):
    """Base of every error meant for a user."""


@dataclass(frozen=True)
class MetadataProblem:
    source: str  # file (or "site customization: <name>") the definition came from
    path: str  # JSON path inside it, e.g. "$.fields.industry.type"
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.path}: {self.reason}"


class MetadataError(CrbmError):
    """Module definitions are invalid; the registry was not (re)built."""

    def __init__(self, problems: list[MetadataProblem]):
        self.problems = problems
        super().__init__("invalid metadata:\n" + "\n".join(f"  {p}" for p in problems))


class ValidationError(CrbmError):
    """A record failed validation. `errors` maps every bad field to its message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{f}: {m}" for f, m in self.errors.items()))


class VetoError(CrbmError):
    """A plugin's before_save/before_delete hook refused the change."""


@dataclass(frozen=True)
class InUse:
    """A record that cannot be deleted: how many live records of which modules refer to it
    (or to records that would be deleted with it), by a field whose ``on_delete`` is
    ``restrict``."""

    record_id: str
    name: str  # how the record reads: its name, number or id
    dependents: tuple[tuple[str, str, int], ...]  # (module, its label, how many)
    message: str  # "Acme cannot be deleted: other records refer to it (3 Invoices)"

    def __str__(self) -> str:
        return str(self.message)


class InUseError(VetoError):
    """A delete refused because other records depend on what it would delete."""

    def __init__(self, in_use: list[InUse]):
        self.in_use = list(in_use)
        super().__init__("; ".join(str(u) for u in self.in_use))


class ConflictError(CrbmError):
    """An update was based on a stale read: someone saved the record in between."""

    def __init__(self, record_id: str, fields: list[str]):
        self.record_id = record_id
        self.fields = fields
        changed = ", ".join(fields) if fields else "(no visible field)"
        super().__init__(f"record {record_id} was changed by someone else since you opened it; "
                         f"changed fields: {changed}. Reload and apply your edits again.")


class NotFoundError(CrbmError):
    """Unknown module, or no such (undeleted, visible) record."""
