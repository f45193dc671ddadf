"""Status transitions declared in metadata (issue 16, item 9): a module's status field
changes only through its declared actions, on every path; the actions perform them."""
from __future__ import annotations

import textwrap
import types

import pytest

from core.kernel.errors import NotFoundError, ValidationError
from core.kernel.registry import MetadataError
from core.kernel.site import Site, create_site
from core.kernel.users import create_user

TICKETS = textwrap.dedent("""\
    name: tickets
    label: Tickets
    label_singular: Ticket
    features: {audited: true, transitions: {field: status, actions: [
      {name: start, label: Start, from: [open], to: in_progress},
      {name: close, label: Close, from: [open, in_progress], to: closed},
      {name: reopen, label: Reopen, from: [closed], to: open, right: delete}]}}
    fields:
      name: {type: name, label: Subject, required: true}
      status: {type: status, options: ticket_status_dom, default: open, mass_update: true,
               audited: true}
    """)
STATUSES = textwrap.dedent("""\
    ticket_status_dom:
      - {value: open, label: Open}
      - {value: in_progress, label: In progress}
      - {value: closed, label: Closed}
    """)


def plugin_with(folder, module_yaml: str):
    (folder / "modules").mkdir(parents=True, exist_ok=True)
    (folder / "dropdowns").mkdir(exist_ok=True)
    (folder / "modules" / "tickets.yaml").write_text(module_yaml)
    (folder / "dropdowns" / "tickets.yaml").write_text(STATUSES)
    plugin = types.ModuleType(f"tickets_{folder.name}")
    plugin.__file__ = str(folder / "plugin.py")  # its folder holds its modules/
    return plugin


@pytest.fixture
def desk(tmp_path, make_site):
    site = make_site(extra_plugins=[plugin_with(tmp_path / "tickets", TICKETS)])
    return site, create_user(site, "admin", "correct horse battery", is_admin=True)


def test_the_status_moves_only_through_its_actions_on_every_path(desk):
    site, admin = desk
    ticket = site.records.create("tickets", {"name": "Printer"}, admin)
    closed = site.records.create("tickets", {"name": "Old", "status": "closed"}, admin)
    assert closed["status"] == "closed"  # a new record starts anywhere
    with pytest.raises(ValidationError) as caught:  # a form edit or an API PATCH
        site.records.update("tickets", ticket["id"], {"status": "closed"}, admin)
    assert caught.value.errors == {"status": "Status goes from Open to Closed only through "
                                             "\u201cClose\u201d"}
    with pytest.raises(ValidationError) as caught:
        site.records.update("tickets", closed["id"], {"status": "in_progress"}, admin)
    assert caught.value.errors == {"status": "Status cannot go from Closed to In progress"}
    with pytest.raises(ValidationError) as caught:  # mass update and imports: the batch
        site.records.update_many("tickets", [ticket["id"], closed["id"]],
                                 {"status": "in_progress"}, admin)
    assert sorted(caught.value.errors.values()) == [  # rows in id order
        "Status cannot go from Closed to In progress",
        "Status goes from Open to In progress only through \u201cStart\u201d"]
    # other fields stay editable, and the actions make the moves
    site.records.update("tickets", ticket["id"], {"name": "Printer jam"}, admin)
    started = site.records.transition("tickets", ticket["id"], "start", admin)
    assert (started["status"], started["version"]) == ("in_progress", 3)
    done = site.records.transition("tickets", ticket["id"], "close", admin,
                                   values={"name": "Printer fixed"})
    assert (done["status"], done["name"]) == ("closed", "Printer fixed")
    log = [(e["field"], e["old_value"], e["new_value"])
           for e in site.records.change_log("tickets", ticket["id"])]
    assert ("status", "in_progress", "closed") in log
    with pytest.raises(ValidationError) as caught:
        site.records.transition("tickets", ticket["id"], "close", admin)
    assert caught.value.errors == {"status": "\u201cClose\u201d is not possible while "
                                             "Status is Closed"}
    with pytest.raises(NotFoundError):
        site.records.transition("tickets", ticket["id"], "archive", admin)


def test_the_transitions_are_checked_against_the_field_and_its_options(tmp_path,
                                                                          database_url):
    broken = TICKETS.replace("to: closed}", "to: shut}")
    with pytest.raises(MetadataError) as caught:
        Site(create_site(tmp_path / "site", database_url),
             extra_plugins=[plugin_with(tmp_path / "tickets", broken)])
    assert "$.features.transitions.actions[1].to: 'shut' is not an option of 'status'" \
        in str(caught.value)
    wrong_field = TICKETS.replace("field: status", "field: name")
    with pytest.raises(MetadataError) as caught:
        Site(create_site(tmp_path / "other", database_url),
             extra_plugins=[plugin_with(tmp_path / "other_tickets", wrong_field)])
    assert "$.features.transitions.field: must name a dropdown or status field of this " \
        "module" in str(caught.value)


def test_the_detail_page_offers_the_next_steps_as_buttons(desk):
    import re

    from starlette.testclient import TestClient

    from core.web.app import create_app

    site, admin = desk
    ticket = site.records.create("tickets", {"name": "Printer"}, admin)
    with TestClient(create_app(site)) as client:
        login = client.get("/login")
        csrf = re.search(r'name="_csrf" value="([^"]+)"', login.text).group(1)
        client.post("/login", data={"_csrf": csrf, "username": "admin",
                                    "password": "correct horse battery"})
        page = client.get(f"/m/tickets/{ticket['id']}").text
        start = f"/m/tickets/{ticket['id']}/transition/start"
        assert start in page and "/transition/close" in page
        assert "/transition/reopen" not in page  # not from Open
        csrf = re.search(r'name="_csrf" value="([^"]+)"', page).group(1)
        response = client.post(start, data={"_csrf": csrf})
        assert response.status_code == 200 and response.url.path == f"/m/tickets/{ticket['id']}"
        assert site.records.get("tickets", ticket["id"], admin)["status"] == "in_progress"
        response = client.post(start, data={"_csrf": csrf})  # not from In progress: said
        assert "is not possible while Status is In progress" in response.text


def test_the_api_refuses_a_patch_of_the_status_and_runs_the_actions(desk):
    from tests.api_util import bearer, client

    site, admin = desk
    ticket = site.records.create("tickets", {"name": "Printer"}, admin)
    headers = bearer(site, admin)
    with client(site) as api:
        response = api.patch(f"/api/v1/tickets/{ticket['id']}", json={"status": "closed"},
                             headers=headers)
        assert response.status_code == 422
        assert "only through \u201cClose\u201d" in response.text
        response = api.post(f"/api/v1/tickets/{ticket['id']}/actions/close", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "closed"
        response = api.post(f"/api/v1/tickets/{ticket['id']}/actions/close", headers=headers)
        assert response.status_code == 422
        spec = api.get("/api/v1/openapi.json", headers=headers).json()
        assert "/api/v1/tickets/{id}/actions/reopen" in spec["paths"]
