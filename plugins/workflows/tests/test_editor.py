"""The workflow editor's server side (plugins/workflows/web.py): the page an administrator
edits a workflow's conditions and actions on, its save — checked whole, nothing saved on
a problem, each problem placed where it is — and "test this workflow against a record"."""
from __future__ import annotations

import datetime as dt
import html
import json
import re

import pytest

from core.kernel import users
from core.testing import signed_in
from plugins.workflows.tests import editor_support
from plugins.workflows.tests.editor_support import ACTIONS, NESTED, make_workflow


@pytest.fixture(scope="session")
def crbm_extra_plugins():
    return editor_support.extra_plugins()


def page_data(page_html: str) -> dict:
    """The editor's data block, as its script reads it."""
    found = re.search(r'<script type="application/json" id="wf-data">(.*?)</script>',
                      page_html, re.DOTALL)
    return json.loads(html.unescape(found.group(1)))


def stored(site, admin, workflow) -> tuple:
    record = site.records.get("workflows", workflow["id"], admin)
    return record["conditions"], record["actions"], record["version"]


def save(web, workflow, conditions, actions, **extra):
    body = {"_csrf": web.csrf,
            "conditions": conditions if isinstance(conditions, str) else json.dumps(conditions),
            "actions": actions if isinstance(actions, str) else json.dumps(actions)}
    body.update(extra)
    return web.post(f"/admin/workflows/{workflow['id']}/rules", data=body,
                    follow_redirects=False)


def test_the_detail_page_leads_to_the_editor_which_knows_the_trigger_module(site, admin, web):
    workflow = make_workflow(site, admin)
    detail = web.get(f"/m/workflows/{workflow['id']}").text
    assert f'href="/admin/workflows/{workflow["id"]}/rules"' in detail
    assert "Edit conditions and actions" in detail
    page = web.get(f"/admin/workflows/{workflow['id']}/rules")
    assert page.status_code == 200
    assert '<script src="/static/workflow_editor.js" defer></script>' in page.text
    data = page_data(page.text)
    fields = {f["name"]: f for f in data["fields"]}
    assert fields["kind"]["family"] == "choice"
    assert ["toy", "Toy"] in fields["kind"]["options"]
    assert fields["released_on"]["family"] == "date"
    assert fields["owner_id"]["pick"] == "/users/pick"
    assert fields["widget_id"]["pick"] == "/m/widgets/pick"
    assert "widget_color" not in fields  # shown from another record: not testable
    assert [op for op, _, _ in data["operators"]["date"]][:4] == ["any", "empty", "not_empty",
                                                                  "month"]
    assert {t["name"] for t in data["actionTypes"]} >= {"set_fields", "webhook"}
    assert data["conditions"] == {"group": "all_of", "conditions": []}
    # the static files are served from the plugin
    assert web.get("/static/workflow_editor.js").status_code == 200
    assert web.get("/static/workflow_editor.css").status_code == 200


def test_a_nested_group_and_a_date_filter_are_saved_and_shown_again(site, admin, web):
    workflow = make_workflow(site, admin)
    response = save(web, workflow, NESTED, ACTIONS)
    assert response.status_code == 303, response.text
    conditions, actions, _ = stored(site, admin, workflow)
    assert json.loads(conditions) == NESTED
    assert json.loads(actions) == ACTIONS
    page = web.get(response.headers["location"])
    assert "The conditions and actions were saved." in page.text
    data = page_data(page.text)
    assert data["conditions"] == NESTED and data["actions"] == ACTIONS


@pytest.mark.parametrize(("conditions", "path", "words"), [
    ({"group": "all_of", "conditions": [
        {"field": "kind", "when": "current", "operator": "is", "value": "toy"},
        {"group": "any_of", "conditions": [
            {"field": "colour", "when": "current", "operator": "is", "value": "red"}]}]},
     [1, 0], "Group 2 › condition 1: field 'colour' no longer exists in Gadgets"),
    ({"group": "all_of", "conditions": [
        {"field": "quantity", "when": "current", "operator": "contains", "value": "1"}]},
     [0], "'contains' is not an operator for Quantity (a number)"),
    ({"group": "all_of", "conditions": [
        {"field": "released_on", "when": "current", "operator": "within", "amount": 2,
         "unit": "fortnights"}]},
     [0], "unknown unit 'fortnights'"),
])
def test_a_bad_condition_is_refused_beside_where_it_is_and_nothing_is_saved(
        site, admin, web, conditions, path, words):
    workflow = make_workflow(site, admin)
    before = stored(site, admin, workflow)
    response = save(web, workflow, conditions, ACTIONS)
    assert response.status_code == 400
    assert "Nothing was saved" in response.text
    problems = page_data(response.text)["problems"]
    assert any(p["scope"] == "conditions" and p["path"] == path and words in p["text"]
               for p in problems), problems
    assert stored(site, admin, workflow) == before
    # what was posted comes back, to be corrected rather than typed again
    assert page_data(response.text)["conditions"] == conditions


def test_bad_json_is_refused_with_the_reason(site, admin, web):
    workflow = make_workflow(site, admin)
    before = stored(site, admin, workflow)
    response = save(web, workflow, '{"group": "all_of", "conditions": [', "[]")
    assert response.status_code == 400
    problems = page_data(response.text)["problems"]
    assert problems[0]["scope"] == "conditions" and problems[0]["path"] == []
    assert "Conditions: not valid JSON" in problems[0]["text"]
    # the text as typed is kept in the JSON box
    assert re.search(r'<textarea name="conditions"[^>]*>\{&#34;group&#34;: &#34;all_of&#34;, '
                     r'&#34;conditions&#34;: \[</textarea>', response.text)
    assert stored(site, admin, workflow) == before


def test_bad_actions_are_refused_on_the_action_they_name(site, admin, web):
    workflow = make_workflow(site, admin)
    before = stored(site, admin, workflow)
    actions = [ACTIONS[0], {"type": "launch_rocket"},
               {"type": "webhook", "delay": {"amount": 0, "unit": "fortnights"}}]
    response = save(web, workflow, NESTED, actions)
    assert response.status_code == 400
    problems = {tuple(p["path"]): p["text"] for p in page_data(response.text)["problems"]
                if p["scope"] == "actions"}
    assert set(problems) == {(1,), (2,)}
    assert "Action 2: unknown action type 'launch_rocket'" in problems[(1,)]
    assert problems[(2,)].startswith("Action 3: ")
    assert stored(site, admin, workflow) == before


def test_a_set_fields_action_on_a_missing_field_is_refused_by_its_check(site, admin, web):
    workflow = make_workflow(site, admin)
    response = save(web, workflow, NESTED, [{"type": "set_fields", "values": {"colour": "red"}}])
    assert response.status_code == 400
    problem = page_data(response.text)["problems"][0]
    assert problem["scope"] == "actions" and problem["path"] == [0]
    assert "colour" in problem["text"]


def test_a_save_without_the_csrf_token_is_refused(site, admin, web):
    workflow = make_workflow(site, admin)
    before = stored(site, admin, workflow)
    response = web.post(f"/admin/workflows/{workflow['id']}/rules",
                        data={"conditions": json.dumps(NESTED), "actions": "[]"})
    assert response.status_code == 403
    assert "The form has expired" in response.text
    assert stored(site, admin, workflow) == before


def test_a_stale_page_does_not_overwrite_a_newer_save(site, admin, web):
    workflow = make_workflow(site, admin)
    save(web, workflow, NESTED, ACTIONS, version=str(workflow["version"]))
    response = save(web, workflow, {"group": "all_of", "conditions": []}, [],
                    version=str(workflow["version"]))
    assert response.status_code == 400
    assert "Someone else changed this workflow" in response.text
    assert json.loads(stored(site, admin, workflow)[0]) == NESTED


def test_only_administrators_edit_workflows(site, admin, quick_hashes):
    workflow = make_workflow(site, admin)
    users.create_user(site, "sam", "correct horse battery")
    with signed_in(site, "sam", "correct horse battery") as client:
        assert client.get(f"/admin/workflows/{workflow['id']}/rules").status_code == 403
        response = client.post(f"/admin/workflows/{workflow['id']}/rules",
                               data={"_csrf": client.csrf, "conditions": "{}", "actions": "[]"})
        assert response.status_code == 403
    assert stored(site, admin, workflow)[0] in ("", None)


def test_an_unknown_workflow_is_a_404(web):
    assert web.get("/admin/workflows/nope/rules").status_code == 404


# -- test this workflow against a record -----------------------------------------------------

def run_test(web, workflow, conditions, actions, **form):
    body = {"_csrf": web.csrf, "conditions": json.dumps(conditions),
            "actions": json.dumps(actions)}
    body.update(form)
    return web.post(f"/admin/workflows/{workflow['id']}/rules/test", data=body)


def verdicts(page_html: str) -> list[tuple[str, str]]:
    """(held | failed, text) of each node of the explained tree, in order."""
    return [(kind, html.unescape(re.sub(r"\s+", " ", text)).strip()) for kind, text in re.findall(
        r'<li class="wf-explain-node (held|failed)">.*?<span class="wf-explain-text[^"]*">(.*?)</span>',
        page_html, re.DOTALL)]


def test_testing_shows_which_conditions_held_and_what_would_run(site, admin, web):
    workflow = make_workflow(site, admin)
    gadget = site.records.create("gadgets", {"name": "Yo-yo", "kind": "toy", "quantity": 3,
                                             "released_on": dt.date.today() + dt.timedelta(days=3)},
                                 admin)
    # as a new record: "kind changed to toy" holds (nothing before)
    response = run_test(web, workflow, NESTED, ACTIONS, record_id=gadget["id"], as_new="1")
    assert response.status_code == 200, response.text
    assert verdicts(response.text) == [
        ("held", "All of"),
        ("held", "Kind · Value changed to · Equals · Toy"),
        ("held", "Any of"),
        ("failed", "Quantity · Check current value · At least · 10"),
        ("held", "Released on · Check current value · Within range · Next 2 weeks (Today)")]
    assert "the conditions hold: the actions would run." in response.text
    planned = re.findall(r"<li><strong>(.*?)</strong> <span class=\"badge\">(.*?)</span>",
                         response.text)
    assert [label for label, _ in planned] == ["Set field values", "Call a webhook"]
    assert planned[0][1] == "at once" and planned[1][1] == "after 5 days · unique"
    # nothing ran, nothing was saved
    assert site.records.get("gadgets", gadget["id"], admin)["summary"] in (None, "")
    assert stored(site, admin, workflow)[0] in ("", None)


def test_previous_values_decide_the_changed_to_conditions(site, admin, web):
    workflow = make_workflow(site, admin)
    gadget = site.records.create("gadgets", {"name": "Kite", "kind": "toy", "quantity": 12},
                                 admin)
    # saved without changing its kind: "changed to toy" fails
    same = run_test(web, workflow, NESTED, ACTIONS, record_id=gadget["id"])
    assert verdicts(same.text)[1] == ("failed", "Kind · Value changed to · Equals · Toy")
    assert "the conditions do not hold: nothing would run." in same.text
    # it was a tool before this save
    changed = run_test(web, workflow, NESTED, ACTIONS, record_id=gadget["id"],
                       prev_field="kind", prev_value="tool")
    assert verdicts(changed.text)[:2] == [("held", "All of"),
                                          ("held", "Kind · Value changed to · Equals · Toy")]
    assert "the actions would run" in changed.text


def test_a_workflow_for_existing_records_does_not_run_for_a_new_one(site, admin, web):
    workflow = make_workflow(site, admin, applies_to="existing")
    gadget = site.records.create("gadgets", {"name": "Ball", "kind": "toy", "quantity": 50},
                                 admin)
    response = run_test(web, workflow, NESTED, ACTIONS, record_id=gadget["id"], as_new="1")
    assert "this workflow does not apply to a new record" in response.text
    assert "Actions (not run for this record)" in response.text


def test_testing_with_bad_rules_or_no_record_says_what_is_wrong(site, admin, web):
    workflow = make_workflow(site, admin)
    bad = run_test(web, workflow, {"group": "all_of", "conditions": [{"field": "nope"}]}, [],
                   record_id="")
    assert bad.status_code == 400
    assert "field 'nope' no longer exists in Gadgets" in html.unescape(bad.text)
    none = run_test(web, workflow, NESTED, ACTIONS, record_id="")
    assert none.status_code == 400 and "Choose a record to test with." in none.text
    gadget = site.records.create("gadgets", {"name": "Top", "kind": "toy"}, admin)
    wrong = run_test(web, workflow, NESTED, ACTIONS, record_id=gadget["id"],
                     prev_field="quantity", prev_value="many")
    assert wrong.status_code == 400 and "Quantity:" in wrong.text


def test_the_editor_speaks_french_to_a_french_administrator(site, admin, web):
    from tests.pack_util import install_folder

    install_folder(site, "lang_fr")
    users.save_preferences(site, admin.id, {"language": "fr"})
    workflow = make_workflow(site, admin)
    page = web.get(f"/admin/workflows/{workflow['id']}/rules").text
    assert "Tester ce workflow sur un enregistrement" in page
    data = page_data(page)
    assert data["text"]["addCondition"] == "Ajouter une condition"
    assert ["all_of", "Toutes les conditions"] in data["groups"]
    assert data["when"][0] == ["changed_to", "La valeur devient"]
    bad = save(web, workflow, {"group": "all_of", "conditions": [{"field": "colour"}]}, [])
    assert "Rien n’a été enregistré" in bad.text
