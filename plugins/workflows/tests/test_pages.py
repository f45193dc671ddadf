"""The workflows module in the web UI: linked from Admin, its list and a workflow's page
with the run history under it; refused to a user who is not an administrator."""
from __future__ import annotations

from core.kernel.users import create_user
from core.testing import signed_in
from plugins.workflows.tests.conftest import make_workflow


def test_admin_reaches_workflows_and_their_run_history(site, admin, web):
    workflow = make_workflow(site, admin, "contacts",
                             [{"type": "set_fields", "values": {"title": "VIP"}}],
                             name="Mark VIPs", applies_to="new")
    site.records.create("contacts", {"last_name": "Curie"}, admin)
    assert 'href="/m/workflows"' in web.get("/admin").text
    listing = web.get("/m/workflows")
    assert listing.status_code == 200 and "Mark VIPs" in listing.text
    detail = web.get(f"/m/workflows/{workflow['id']}")
    assert detail.status_code == 200
    assert "Run history" in detail.text
    runs = web.get(f"/m/workflows/{workflow['id']}/subpanel/runs?fragment=1")
    assert runs.status_code == 200 and "Mark VIPs · 1: done" in runs.text


def test_a_user_who_is_not_an_administrator_cannot_open_them(site, admin):
    create_user(site, "clerk", "Clerk-pass-word-1")
    with signed_in(site, "clerk", "Clerk-pass-word-1") as client:
        assert client.get("/m/workflows").status_code in (403, 404)


def test_the_run_history_speaks_the_readers_language(site, admin):
    import html

    from core.kernel import i18n, users
    from plugins.workflows.tests.conftest import runs
    from tests.pack_util import install_folder

    workflow = make_workflow(site, admin, "contacts",
                             [{"type": "set_fields", "values": {"title": "VIP"}}],
                             name="Mark VIPs", applies_to="new")
    site.records.create("contacts", {"last_name": "Curie"}, admin)
    [run] = runs(site, workflow_id=workflow["id"])
    assert run["message"] == "fields set: title"  # English where a str is read (API, logs)
    install_folder(site, "lang_fr")
    users.save_preferences(site, admin.id, i18n.Preferences(language="fr").to_dict())
    with signed_in(site, admin.username) as client:
        listing = html.unescape(client.get(
            f"/m/workflows/{workflow['id']}/subpanel/runs?fragment=1").text)
        detail = html.unescape(client.get(f"/m/workflow_runs/{run['id']}").text)
    assert "champs renseignés : title" in listing
    assert "champs renseignés : title" in detail and "fields set" not in detail
    assert "Message (traduisible)" not in detail  # the JSON behind it is not shown
