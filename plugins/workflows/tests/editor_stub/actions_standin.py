"""Test-only stand-in of ``plugins.workflows.actions`` (brief 18b's Param / ActionType and
``action_types(site)``), used by the editor's tests only while the engine's module is not
on this branch."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Param:
    name: str
    label: str
    kind: str
    required: bool = True
    choices: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ActionType:
    name: str
    label: str
    params: tuple[Param, ...]
    run: Callable
    check: Callable | None = None
    can_delay: bool = True


def _no_run(ctx, params):
    return None


def _check_set_fields(site, module, params):
    fields = module.fields
    return [f"no field {name!r}" for name in (params.get("values") or {}) if name not in fields]


def action_types(site) -> dict[str, ActionType]:
    types = [
        ActionType("send_email", "Send an email", (
            Param("template_id", "Email template", "template"),
            Param("to", "Recipients", "recipients")), _no_run),
        ActionType("set_fields", "Set field values", (
            Param("values", "Values", "field_values"),), _no_run, _check_set_fields,
            can_delay=False),
        ActionType("assign", "Assign", (
            Param("user_id", "User", "user", required=False),
            Param("team_id", "Team", "team", required=False),
            Param("round_robin", "Round robin", "choice", required=False,
                  choices=(("", "No"), ("yes", "Yes")))), _no_run),
        ActionType("webhook", "Call a webhook", (
            Param("url", "Address", "url"),
            Param("secret", "Secret", "text", required=False)), _no_run),
        ActionType("notify", "Create a notification", (
            Param("to", "Recipients", "recipients"),
            Param("message", "Message", "textarea")), _no_run),
    ]
    return {t.name: t for t in types}
