"""The workflow editor in Chromium, on a desktop and on a phone: a workflow with a nested
group and a date filter built by clicking, actions added through the dialog and reordered,
saved and seen again after a reload; conditions moved by drag (right: into the group above)
on a desktop; tested against a record. Screenshots (test-artifacts/screenshots/):
workflow-editor-<viewport>, workflow-test-<viewport>."""
from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from playwright.sync_api import expect

from plugins.workflows.tests import editor_support
from plugins.workflows.tests.editor_support import make_workflow
from tests import browser as helpers
from tests.browser import log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)


@pytest.fixture(scope="session")
def crbm_extra_plugins():
    return editor_support.extra_plugins()


def rows(page):
    return page.locator("[data-conditions] [data-node]")


def control(row, label: str):
    return row.locator(".wf-control", has=row.page.locator(".wf-control-label", has_text=label)) \
        .locator("select, input").first


def conditions_json(page) -> dict:
    return json.loads(page.locator('textarea[name="conditions"]').input_value())


def actions_json(page) -> list:
    return json.loads(page.locator('textarea[name="actions"]').input_value())


def build(page):
    """Kind changed to Toy; Any of (Released on within the next 2 weeks, Quantity ≥ 10)."""
    page.get_by_role("button", name="+ Add condition").last.click()
    first = rows(page).nth(0)
    control(first, "Field").select_option(label="Kind")
    control(first, "When").select_option(label="Value changed to")
    control(first, "Filter").select_option(label="Equals")
    control(first, "Value").select_option(label="Toy")

    page.get_by_role("button", name="+ Add group").last.click()
    group = rows(page).nth(1)
    group.locator("select").first.select_option(label="Any of")
    inner = rows(page).nth(2)
    control(inner, "Field").select_option(label="Released on")
    control(inner, "Filter").select_option(label="Within range…")
    control(inner, "Amount").fill("2")
    control(inner, "Unit").select_option(label="weeks")
    control(inner, "Direction").select_option(label="Next")

    # a condition added at the end goes into the group with "Indent"
    page.get_by_role("button", name="+ Add condition").last.click()
    last = rows(page).nth(3)
    control(last, "Field").select_option(label="Quantity")
    control(last, "Filter").select_option(label="At least")
    control(last, "Value").fill("10")
    rows(page).nth(3).get_by_role("button", name="Indent (into the group above)").click()


EXPECTED = {"group": "all_of", "conditions": [
    {"field": "kind", "when": "changed_to", "operator": "is", "value": "toy"},
    {"group": "any_of", "conditions": [
        {"field": "released_on", "when": "current", "operator": "within", "amount": 2,
         "unit": "weeks", "direction": "next", "anchor": {"kind": "today"}},
        {"field": "quantity", "when": "current", "operator": "gte", "value": "10"}]}]}


def add_actions(page):
    page.get_by_role("button", name="+ Add action").click()
    dialog = page.locator("#wf-action-dialog")
    dialog.locator("[data-action-type]").select_option(label="Call a webhook")
    dialog.locator('[data-param="url"] input').fill("https://example.com/hook")
    dialog.get_by_label("After a delay").check()
    dialog.get_by_label("Amount").fill("5")
    dialog.get_by_label("Unit").select_option(label="days")
    dialog.get_by_label("Unique (replaces a pending one of this workflow and record)").check()
    dialog.get_by_role("button", name="Apply").click()
    expect(dialog).to_be_hidden()

    page.get_by_role("button", name="+ Add action").click()
    dialog.locator("[data-action-type]").select_option(label="Set field values")
    dialog.locator('[data-pair="field"]').select_option(label="Summary")
    dialog.locator('[data-pair="value"]').fill("toy!")
    dialog.get_by_role("button", name="Apply").click()
    # set fields first: "Move up" on the second card
    page.locator(".wf-action").nth(1).get_by_role("button", name="Move up").click()


def test_building_saving_and_testing_a_workflow(page, site, admin, viewport):
    workflow = make_workflow(site, admin, name="Toy follow-up")
    gadget = site.records.create("gadgets", {
        "name": "Yo-yo", "kind": "toy", "quantity": 3,
        "released_on": dt.date.today() + dt.timedelta(days=4)}, admin)
    log_in(page)
    page.goto(f"/m/workflows/{workflow['id']}")
    page.get_by_role("link", name="Edit conditions and actions").click()
    expect(page.locator("h1")).to_contain_text("Toy follow-up")

    build(page)
    assert conditions_json(page) == EXPECTED
    add_actions(page)
    assert [a["type"] for a in actions_json(page)] == ["set_fields", "webhook"]
    # a dialog closed with Escape adds nothing (even after an earlier "Apply")
    page.get_by_role("button", name="+ Add action").click()
    page.locator("#wf-action-dialog [data-action-type]").select_option(label="Call a webhook")
    page.keyboard.press("Escape")
    expect(page.locator("#wf-action-dialog")).to_be_hidden()
    expect(page.locator(".wf-action")).to_have_count(2)
    expect(page.locator(".wf-action").nth(1).locator(".badge")).to_have_text(
        "after 5 days · unique")
    screenshot(page, "workflow-editor", viewport)

    page.get_by_role("button", name="Save").first.click()
    expect(page.get_by_text("The conditions and actions were saved.")).to_be_visible()
    page.reload()
    expect(rows(page)).to_have_count(4)
    expect(rows(page).nth(1).locator("select").first).to_have_value("any_of")
    expect(control(rows(page).nth(2), "Filter")).to_have_value("within")
    saved = site.records.get("workflows", workflow["id"], admin)
    assert json.loads(saved["conditions"]) == EXPECTED
    assert json.loads(saved["actions"]) == [
        {"type": "set_fields", "values": {"summary": "toy!"}, "delay": None, "unique": False},
        {"type": "webhook", "url": "https://example.com/hook",
         "delay": {"amount": 5, "unit": "days"}, "unique": True}]

    # the buttons move a condition out of its group and back up (a phone has no drag)
    quantity = rows(page).nth(3)
    quantity.get_by_role("button", name="Outdent (out of its group)").click()
    assert conditions_json(page)["conditions"][2]["field"] == "quantity"
    rows(page).nth(3).get_by_role("button", name="Move up").click()
    rows(page).nth(1).get_by_role("button", name="Move up").click()
    assert [c.get("field", c.get("group")) for c in conditions_json(page)["conditions"]] == \
        ["quantity", "kind", "any_of"]

    # test against a record, as a new one: "changed to Toy" holds, the quantity does not
    # focus lists the first records (typing would also work; a choice made before the typed
    # search answers is then reopened by it: crbm.js's pickers, not this page)
    page.locator("#wf-test-record").focus()
    page.get_by_role("option", name="Yo-yo").click()
    expect(page.get_by_role("option", name="Yo-yo")).to_be_hidden()
    page.get_by_label("As a new record (no previous values)").check()
    page.get_by_role("button", name="Run the test").click()
    expect(page.locator(".wf-verdict-line")).to_contain_text(
        "the conditions do not hold: nothing would run.")
    failed = page.locator(".wf-explain-node.failed > .wf-explain-text")
    expect(failed).to_have_text(["All of", "Quantity · Check current value · At least · 10"])
    expect(page.locator(".wf-explain-node.held > .wf-explain-text")).to_have_count(3)
    expect(page.locator("ol.wf-planned li")).to_have_count(2)
    screenshot(page, "workflow-test", viewport)
    # the test ran nothing and saved nothing
    assert json.loads(site.records.get("workflows", workflow["id"], admin)["conditions"]) == \
        EXPECTED
    assert site.records.get("gadgets", gadget["id"], admin)["summary"] in (None, "")


@pytest.mark.parametrize("viewport", ["desktop"])
def test_dragging_moves_a_condition_and_indents_it(page, site, admin, viewport):
    workflow = make_workflow(site, admin, conditions={"group": "all_of", "conditions": [
        {"field": "kind", "when": "current", "operator": "is", "value": "toy"},
        {"group": "none_of", "conditions": [
            {"field": "quantity", "when": "current", "operator": "lt", "value": "1"}]},
        {"field": "name", "when": "current", "operator": "contains", "value": "yo"}]})
    log_in(page)
    page.goto(f"/admin/workflows/{workflow['id']}/rules")
    expect(rows(page)).to_have_count(4)
    # "name" dropped on its own place 48 px to the right: into the group above it
    name_row = rows(page).nth(3)
    handle = name_row.locator(".wf-handle")
    box = handle.bounding_box()
    row_box = name_row.bounding_box()
    handle.drag_to(name_row, source_position={"x": 4, "y": 4},
                   target_position={"x": box["x"] - row_box["x"] + 4 + 48, "y": 6})
    group = conditions_json(page)["conditions"][1]
    assert [c["field"] for c in group["conditions"]] == ["quantity", "name"]
    # "kind" dragged below the group's header: first in the group
    rows(page).nth(0).locator(".wf-handle").drag_to(
        rows(page).nth(1), source_position={"x": 4, "y": 4},
        target_position={"x": 30, "y": rows(page).nth(1).bounding_box()["height"] - 4})
    tree = conditions_json(page)
    assert [c.get("group") for c in tree["conditions"]] == ["none_of"]
    assert [c["field"] for c in tree["conditions"][0]["conditions"]] == \
        ["kind", "quantity", "name"]
    page.get_by_role("button", name="Save").first.click()
    expect(page.get_by_text("The conditions and actions were saved.")).to_be_visible()
    assert json.loads(site.records.get("workflows", workflow["id"], admin)["conditions"]) == tree


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_the_editor_in_the_dark_theme_and_its_action_dialog(page, site, admin, viewport):
    """What the other tests do not show: the page in the shipped dark theme (Nocturne, on a
    desktop: its phone menu hides "Log out", which the sign-in helper waits for) with a
    passing test, and the action dialog open for an edit."""
    from tests.pack_util import install_folder

    if viewport == "desktop":
        install_folder(site, "theme_nocturne")
        site.set_setting("theme", "theme_nocturne")
    # the gadget first: the (active) workflow would otherwise run on its creation
    gadget = site.records.create("gadgets", {"name": "Kite", "kind": "toy", "quantity": 20},
                                 admin)
    workflow = make_workflow(site, admin, conditions=EXPECTED, actions=[
        {"type": "set_fields", "values": {"summary": "toy!"}, "delay": None, "unique": False}])
    log_in(page)
    page.goto(f"/admin/workflows/{workflow['id']}/rules")
    page.locator("#wf-test-record").focus()
    page.get_by_role("option", name="Kite").click()
    page.locator('[name="prev_field"]').select_option(label="Kind")
    page.locator('[name="prev_value"]').fill("tool")
    page.get_by_role("button", name="Run the test").click()
    expect(page.locator(".wf-verdict-line")).to_contain_text("the actions would run")
    screenshot(page, "workflow-test-passing" if viewport == "phone" else "workflow-test-nocturne",
               viewport)
    page.locator(".wf-action").first.get_by_role("button", name="Edit").click()
    dialog = page.locator("#wf-action-dialog")
    expect(dialog.locator('[data-pair="value"]')).to_have_value("toy!")
    screenshot(page, "workflow-action-dialog", viewport)
    dialog.get_by_role("button", name="Cancel").click()
    assert site.records.get("gadgets", gadget["id"], admin)["summary"] in (None, "")


@pytest.mark.parametrize("viewport", ["phone"])
def test_a_refused_save_marks_the_condition_it_names(page, site, admin, viewport):
    workflow = make_workflow(site, admin, conditions=EXPECTED)
    log_in(page)
    page.goto(f"/admin/workflows/{workflow['id']}/rules")
    quantity = rows(page).nth(3)
    control(quantity, "Value").fill("")  # "at least" nothing
    page.get_by_role("button", name="Save").first.click()
    expect(page.locator("#wf-problems")).to_contain_text("Nothing was saved")
    marked = rows(page).nth(3)
    expect(marked).to_have_class(re.compile(r"\binvalid\b"))
    problem = page.locator(".wf-problem")
    expect(problem).to_have_count(1)
    expect(problem).to_contain_text("Group 2 › condition 2: the value for Quantity: a value is needed")
    screenshot(page, "workflow-refused", viewport)
    # the edit is still there to correct; corrected, it saves
    control(rows(page).nth(3), "Value").fill("12")
    page.get_by_role("button", name="Save").first.click()
    expect(page.get_by_text("The conditions and actions were saved.")).to_be_visible()
    saved = json.loads(site.records.get("workflows", workflow["id"], admin)["conditions"])
    assert saved["conditions"][1]["conditions"][1]["value"] == "12"
