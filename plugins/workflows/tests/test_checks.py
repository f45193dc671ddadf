"""Saving a workflow checks it against its module as it is now: each problem refused with
what and where, nothing saved."""
from __future__ import annotations

import json

import pytest

from core.kernel.errors import ValidationError
from core.kernel.records import SYSTEM_USER, Query
from core.kernel.users import create_user, set_active
from plugins.workflows import actions
from plugins.workflows.tests.conftest import make_workflow


def refused(site, user, module, acts, condition=None, **values) -> dict:
    before = site.records.count("workflows", SYSTEM_USER, Query())
    with pytest.raises(ValidationError) as caught:
        make_workflow(site, user, module, acts, condition, **values)
    assert site.records.count("workflows", SYSTEM_USER, Query()) == before  # nothing saved
    return {k: str(v) for k, v in caught.value.errors.items()}


def test_bad_conditions_and_modules_are_refused(wsite, admin):
    gone = {"group": "all_of", "conditions": [
        {"field": "rating", "when": "current", "operator": "is", "value": "hot"}]}
    errors = refused(wsite, admin, "wf_leads", [], gone)
    assert "rating" in errors["conditions"] and "Condition 1" in errors["conditions"]
    changed = {"group": "all_of", "conditions": [
        {"field": "temperature", "when": "changed_to", "operator": "is", "value": "hot"}]}
    errors = refused(wsite, admin, "wf_leads", [], changed, trigger="scheduled")
    assert "conditions" in errors  # a scan sees only current values
    errors = refused(wsite, admin, "workflow_runs", [])
    assert "trigger_module" in errors


def test_bad_actions_are_refused_naming_the_action(wsite, admin):
    ann = create_user(wsite, "ann", "Sales-pass-word-1", email="ann@example.com")
    set_active(wsite, "ann", False)
    cases = [
        ([{"type": "set_fields", "values": {"rating": 5}}], "field 'rating' does not exist"),
        ([{"type": "assign", "user_id": ann.id}], "user ann is inactive"),
        ([{"type": "send_email", "template_id": "nope", "to": [{"kind": "owner"}]}],
         "There is no email template"),
        ([{"type": "send_email", "template_id": "x", "to": [
            {"kind": "user", "user_id": ann.id}]}], "inactive"),
        ([{"type": "webhook", "url": "ftp://example.com/hook"}], "is not an http(s) address"),
        ([{"type": "wf_probe.mark", "label": "never"}], "must not be 'never'"),
        ([{"type": "teleport"}], "unknown action 'teleport'"),
        ([{"type": "set_fields", "values": {"status": "x"}, "delay": {"amount": 2,
                                                                     "unit": "fortnights"}}],
         "a delay needs an amount and a unit"),
        ([{"type": "create_record", "module": "wf_leads", "link_field": "name",
           "values": {"name": "{{ nope }}"}}], "is not a link"),
    ]
    for acts, expected in cases:
        errors = refused(wsite, admin, "wf_leads", acts)
        assert expected in errors["actions"], (acts, errors)
        assert errors["actions"].startswith("Action 1"), errors


def test_a_broken_template_is_refused(wsite, admin):
    template = wsite.records.create("email_templates", {
        "name": "Any", "language": "en", "subject": "Hi", "body_html": "<p>{{ name }}</p>"},
        admin)
    table = wsite.records.table(wsite.registry.module("email_templates"))
    with wsite.engine.begin() as conn:  # broken behind the form's back (an old import)
        conn.execute(table.update().values(body_html="<p>{{ temperature_gone }}</p>"))
    errors = refused(wsite, admin, "wf_leads", [
        {"type": "send_email", "template_id": template["id"], "to": [{"kind": "owner"}]}])
    assert "temperature_gone" in errors["actions"]


def test_a_workflow_may_not_start_itself_or_a_cycle(wsite, admin):
    first = make_workflow(wsite, admin, "wf_leads", [], name="First")
    second = make_workflow(wsite, admin, "wf_leads",
                           [{"type": "start_workflow", "workflow_id": first["id"]}],
                           name="Second")
    with pytest.raises(ValidationError) as caught:
        wsite.records.update("workflows", first["id"], {"actions": json.dumps(
            [{"type": "start_workflow", "workflow_id": first["id"]}])}, admin)
    assert "cannot start itself" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        wsite.records.update("workflows", first["id"], {"actions": json.dumps(
            [{"type": "start_workflow", "workflow_id": second["id"]}])}, admin)
    assert "would start this one again" in str(caught.value)


def test_the_registry_gives_the_editor_every_action(wsite):
    types = actions.action_types(wsite)
    assert {"send_email", "set_fields", "create_record", "assign", "webhook",
            "start_workflow", "wf_probe.mark"} <= set(types)
    assert [p.kind for p in types["send_email"].params] == ["template", "recipients"]


def test_the_demo_workflows_are_valid_and_inactive(wsite, admin):
    import cli
    from plugins.workflows import demo
    cli.load_demo(wsite, admin, 3, seed=1)  # the templates' demo first: workflows require it
    rows = wsite.records.list("workflows", SYSTEM_USER, Query(limit=None))
    assert len(rows) == 3 and not any(r["active"] for r in rows)
    demo.load(wsite, admin, lambda *a: None)  # once
    assert wsite.records.count("workflows", SYSTEM_USER, Query()) == 3


def test_a_french_administrator_reads_the_refusal_in_french(wsite, admin):
    from pathlib import Path

    from core.kernel import i18n
    packs = Path(__file__).resolve().parents[3] / "personality_packs" / "lang_fr" / "locale"
    token = i18n.activate(i18n.translations("fr", [packs]))
    try:
        errors = refused(wsite, admin, "wf_leads", [
            {"type": "webhook", "url": "ftp://example.com/hook"}])
    finally:
        i18n.deactivate(token)
    said = errors["actions"].replace("\u00a0", " ").replace("\u202f", " ")
    assert said == ("Action 1 (Appeler un webhook) : « ftp://example.com/hook » "
                                 "n'est pas une adresse http(s)")
