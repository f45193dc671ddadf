"""The generic screens, through real HTTP requests, for a module that exists only in test
YAML (tests/plugins/kitchen_sink): no template or code of its own."""
import csv
import html
import io
import re

import pytest
from PIL import Image
from starlette.routing import Route
from starlette.testclient import TestClient

from core.kernel.records import SYSTEM_USER, Query
from core.web.app import create_app

PASSWORD = "correct horse battery"
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def csrf_of(page_html: str) -> str:
    return re.search(r'name="_csrf" value="([^"]+)"', page_html).group(1)


@pytest.fixture
def client(site, admin):
    with TestClient(create_app(site)) as client:
        login = client.get("/login")
        response = client.post("/login", data={"_csrf": csrf_of(login.text), "username": "admin",
                                               "password": PASSWORD})
        assert response.status_code == 200
        client.csrf = csrf_of(response.text)
        yield client


@pytest.fixture
def widget(site, admin):
    return site.records.create("widgets", {"name": "Sprocket", "color": "teal"}, admin)


def form_values(widget_id: str, admin_id: str) -> dict:
    """A value for every editable field of gadgets, as a browser would send them."""
    return {
        "name": "Hammer", "summary": "Short", "notes": "Two\nlines", "quantity": "12",
        "weight": "1.5", "discount": "12.5", "fragile": ["0", "1"], "contact_email": "a@b.example",
        "phone": "+1 555 010 2030", "gadget_number": "", "kind": "toy", "toy_age": "teen",
        "status": "active", "tags": ["red", "blue"], "released_on": "2026-03-01",
        "last_seen_at": "2026-03-01T10:30", "homepage": "https://example.com/h",
        "body": "<p>Hi <b>there</b></p>", "widget_id": widget_id, "parent_id": widget_id,
        "parent_type": "widgets", "price": "19.99", "price_currency": "USD",
        "owner_id": admin_id, "address_street": "1 Main St", "address_city": "Oslo",
        "address_state": "", "address_postal_code": "0150", "address_country": "Norway",
        "assigned_user_id": admin_id,
    }


@pytest.fixture
def full_layout(site):
    """Put every gadget field on the edit and detail layouts (the YAML shows only a few)."""
    module = site.registry.module("gadgets")
    names = [f.name for f in module.fields.values() if not f.system and not f.group] + \
        ["assigned_user_id"]
    for view in ("edit", "detail"):
        module.definition["layouts"][view] = module.default_sections()
        module.definition["layouts"][view][0]["rows"].append(["assigned_user_id", None])
    return names


def test_every_view_of_a_yaml_only_module_renders(client, site, admin, widget):
    gadget = site.records.create("gadgets", {"name": "Lamp", "widget_id": widget["id"]}, admin)
    for url in ("/", "/m/gadgets", "/m/gadgets/new", "/m/gadgets/new?_layout=quick",
                f"/m/gadgets/{gadget['id']}", f"/m/gadgets/{gadget['id']}/edit",
                "/m/widgets", f"/m/widgets/{widget['id']}"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "<h1>" in response.text
    assert client.get("/m/gadgets/pick?q=la").json() == [{"id": gadget["id"], "label": "Lamp"}]


def test_all_field_types_round_trip_through_the_forms(client, site, admin, widget, full_layout):
    values = form_values(widget["id"], admin.id)
    response = client.post("/m/gadgets/new", data={"_csrf": client.csrf, **values})
    assert response.status_code == 200, response.text[:2000]
    [gadget] = site.records.list("gadgets", admin, Query(limit=None))
    assert gadget["quantity"] == 12 and gadget["fragile"] is True
    assert gadget["tags"] == ["red", "blue"] and gadget["toy_age"] == "teen"
    assert gadget["last_seen_at"].isoformat() == "2026-03-01T10:30:00+00:00"  # user tz is UTC
    assert gadget["parent_type"] == "widgets" and gadget["price_currency"] == "USD"
    assert gadget["address_city"] == "Oslo" and gadget["body"] == "<p>Hi <b>there</b></p>"
    assert gadget["gadget_number"]  # numbered by the sequence
    detail = client.get(f"/m/gadgets/{gadget['id']}").text
    for shown in ("Hammer", "Toy", "Teen", "Active", "Red, Blue", "$19.99", "Sprocket", "Oslo",
                  "12.5%", "Yes", "a@b.example", "Mar 1, 2026"):
        assert shown in detail, shown
    # the edit form shows what was saved, and saving it unchanged changes nothing
    edit = client.get(f"/m/gadgets/{gadget['id']}/edit").text
    inputs = dict(re.findall(r'<input id="f_(\w+)" name="\w+"[^>]*? value="([^"]*)"', edit))
    assert inputs["quantity"] == "12" and inputs["last_seen_at"] == "2026-03-01T10:30"
    assert inputs["released_on"] == "2026-03-01" and inputs["homepage"] == "https://example.com/h"
    base = html.unescape(re.search(r'name="_base" value="([^"]+)"', edit).group(1))
    saved = client.post(f"/m/gadgets/{gadget['id']}/edit",
                        data={"_csrf": client.csrf, "_base": base, **values,
                              "gadget_number": gadget["gadget_number"]})
    assert saved.status_code == 200
    after = site.records.get("gadgets", gadget["id"], admin)
    assert after["version"] == 1  # nothing changed, nothing written
    assert [e["field"] for e in site.records.change_log("gadgets", gadget["id"])] == ["(created)"]


def test_stored_xss_renders_inert_everywhere(client, site, admin, widget, full_layout):
    values = {"name": XSS[:40], "summary": XSS[:20], "notes": XSS, "body": XSS,
              "address_city": XSS[:100], "homepage": "https://example.com/?q=" + XSS[:60]}
    gadget = site.records.create("gadgets", values, admin)
    site.records.update("widgets", widget["id"], {"color": XSS}, admin)
    site.records.update("gadgets", gadget["id"], {"widget_id": widget["id"]}, admin)
    for url in ("/m/gadgets", f"/m/gadgets/{gadget['id']}", f"/m/gadgets/{gadget['id']}/edit", "/"):
        page = client.get(url).text
        assert "<script>alert" not in page, url
        assert "onerror=alert" not in page.replace("onerror=alert(1)&gt;", ""), url
        assert "<img src=x" not in page, url


def test_state_changing_routes_refuse_requests_without_csrf(client, site):
    posts = [r for r in create_app(site).routes
             if isinstance(r, Route) and "POST" in (r.methods or ())]
    assert len(posts) >= 7
    # Not cookie-authenticated, so not forgeable cross-site: the REST API (a session only
    # when an admin enables it, and then with X-CSRF-Token: tests/api/test_api_auth.py) and
    # the OAuth token and revocation endpoints (the client authenticates itself). A signed-in
    # browser's cookie gets nothing done there either.
    cookie_free = [r for r in posts
                   if r.path.startswith("/api/") or r.path in ("/oauth/token", "/oauth/revoke")]
    assert {"/api/v1/{module}", "/oauth/token"} <= {r.path for r in cookie_free}
    site.set_setting("api_allow_http", True)  # so the cookie is what is judged, not http
    for route in cookie_free:
        url = re.sub(r"{(\w+)}", lambda m: {"module": "gadgets"}.get(m.group(1), "x"), route.path)
        response = client.post(url, data={"name": "sneaky"})
        assert response.status_code in (400, 401, 403), url
        assert response.headers["content-type"].endswith("json"), url
    assert site.records.count("gadgets", SYSTEM_USER) == 0
    # web forms' public endpoint (plugins/web_forms) is posted cross-site by visitors and
    # acts as the form's own user, whoever's cookie comes along: no such form, nothing done
    public = [r for r in posts if r.path.startswith("/forms/")]
    for route in public:
        assert client.post(route.path.replace("{form_id}", "x"),
                           data={"name": "sneaky"}).status_code == 404
    for route in (r for r in posts if r not in cookie_free and r not in public):
        url = re.sub(r"{(\w+)}", lambda m: {"module": "gadgets"}.get(m.group(1), "x"), route.path)
        response = client.post(url, data={"name": "sneaky"})
        assert response.status_code == 403, url
        assert "did not come from this site" in response.text
        forged = client.post(url, data={"name": "sneaky", "_csrf": "forged"})
        assert forged.status_code == 403, url


def test_unknown_module_and_record_get_a_friendly_404(client):
    for url in ("/m/planets", "/m/gadgets/00000000-0000-0000-0000-000000000000",
                "/m/gadgets/not-a-uuid/edit", "/no/such/page"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "Traceback" not in response.text
    assert "There is no such module." in client.get("/m/planets").text


@pytest.mark.parametrize("field,value,message", [
    ("kind", "spaceship", "is not an option"),
    ("summary", "x" * 21, "at most 20 allowed"),
    ("released_on", "31.02.2026", "is not a date"),
    ("last_seen_at", "tomorrow-ish", "is not a date and time"),
    ("quantity", "many", "not a whole number"),
])
def test_bad_input_gets_a_field_error_and_nothing_is_saved(client, site, admin, field, value,
                                                           message, full_layout):
    response = client.post("/m/gadgets/new", data={"_csrf": client.csrf, "name": "Kept name",
                                                   "summary": "kept", field: value})
    assert response.status_code == 422
    block = re.search(rf'data-field="{field}".*?</div>', response.text, re.DOTALL).group(0)
    assert 'class="error-text"' in block and message in html.unescape(block)
    assert 'value="Kept name"' in response.text  # input kept
    assert site.records.count("gadgets", admin) == 0


def test_only_fields_on_the_form_are_written(client, site, admin):
    """The edit layout shows name, kind, toy_age: a crafted post cannot set anything else."""
    response = client.post("/m/gadgets/new", data={"_csrf": client.csrf, "name": "Plain",
                                                   "quantity": "999", "assigned_user_id": "x"})
    assert response.status_code == 200
    [gadget] = site.records.list("gadgets", admin, Query(limit=None))
    # not "x": the form has no such field, so the record is its creator's, as every new one
    assert gadget["quantity"] is None and gadget["assigned_user_id"] == admin.id


def test_list_counts_past_the_cap_only_on_request(client, site, admin):
    site.records.create_many("widgets", [{"name": f"W{i:04d}"} for i in range(1005)], admin)
    page = client.get("/m/widgets").text
    assert "1–20" in page and "1,000+" in page and "count exactly" in page
    exact = client.get("/m/widgets?count=exact").text
    assert "1,005" in exact and "1,000+" not in exact
    # past the cap the page count is unknown: Next follows full pages
    assert 'rel="next"' in client.get("/m/widgets?page=50").text
    last = client.get("/m/widgets?page=51").text
    assert "1,001–1,005" in last  # positions formatted as the count is
    assert 'rel="next"' not in last


def test_list_search_filter_sort_and_pages(client, site, admin):
    site.records.create_many("gadgets", [
        {"name": f"Gadget {i:02d}", "kind": ("tool", "toy")[i % 2]} for i in range(45)], admin)
    names = lambda text: re.findall(r'<a href="/m/gadgets/[^"]+">(Gadget \d\d)</a>', text)
    assert names(client.get("/m/gadgets?sort=name").text)[:2] == ["Gadget 00", "Gadget 01"]
    assert names(client.get("/m/gadgets?sort=-name").text)[0] == "Gadget 44"
    assert names(client.get("/m/gadgets?sort=name&page=3").text) == ["Gadget 40", "Gadget 41",
                                                                      "Gadget 42", "Gadget 43",
                                                                      "Gadget 44"]
    assert len(names(client.get("/m/gadgets?size=10").text)) == 10
    assert names(client.get("/m/gadgets?q=gadget 3&sort=name").text) == [f"Gadget 3{i}" for i in range(10)]
    assert len(names(client.get("/m/gadgets?f_kind=toy&size=50").text)) == 22


def test_mass_update_export_and_delete_of_a_selection(client, site, admin):
    site.records.create_many("gadgets", [{"name": f"G{i:02d}"} for i in range(40)], admin)
    ids = [g["id"] for g in site.records.list("gadgets", admin, Query(sort="name", limit=30))]
    response = client.post("/m/gadgets/action", data={"_csrf": client.csrf, "action": "update",
                                                      "ids": ids, "mass_kind": "toy"})
    assert "Updated 30 of 30 selected records." in response.text
    assert site.records.count("gadgets", admin, Query(filters={"kind": "toy"})) == 30
    export = client.post("/m/gadgets/action", data={"_csrf": client.csrf, "action": "export",
                                                    "ids": ids[:3]})
    rows = list(csv.reader(io.StringIO(export.text)))
    assert export.headers["content-type"].startswith("text/csv")
    assert rows[0] == ["Name", "Kind", "Status", "Quantity", "Widget"]
    assert [r[0] for r in rows[1:]] == ["G00", "G01", "G02"] and rows[1][1] == "Toy"
    everything = client.post("/m/gadgets/action", data={"_csrf": client.csrf, "action": "export",
                                                        "all": "1", "q": "G1"})
    assert len(list(csv.reader(io.StringIO(everything.text)))) == 11  # header + G10..G19
    client.post("/m/gadgets/action", data={"_csrf": client.csrf, "action": "delete",
                                           "ids": ids[:5]})
    assert site.records.count("gadgets", admin) == 35


def test_mass_update_with_an_invalid_value_changes_nothing(client, site, admin):
    site.records.create_many("gadgets", [{"name": f"G{i}"} for i in range(3)], admin)
    ids = [g["id"] for g in site.records.list("gadgets", admin)]
    response = client.post("/m/gadgets/action", data={"_csrf": client.csrf, "action": "update",
                                                      "ids": ids, "mass_kind": "nonsense"})
    assert "Nothing was changed: kind: 'nonsense' is not an option" in html.unescape(response.text)
    assert site.records.count("gadgets", admin, Query(filters={"kind": "tool"})) == 3


def test_an_edit_based_on_a_stale_form_is_refused_and_names_the_change(client, site, admin):
    gadget = site.records.create("gadgets", {"name": "Lamp", "kind": "tool"}, admin)
    form = client.get(f"/m/gadgets/{gadget['id']}/edit").text
    base = html.unescape(re.search(r'name="_base" value="([^"]+)"', form).group(1))
    site.records.update("gadgets", gadget["id"], {"kind": "other"}, admin)  # someone else
    response = client.post(f"/m/gadgets/{gadget['id']}/edit",
                           data={"_csrf": client.csrf, "_base": base, "name": "Desk lamp",
                                 "kind": "tool"})
    assert response.status_code == 409
    assert "Someone else saved this record" in response.text and "They changed: Kind" in response.text
    assert site.records.get("gadgets", gadget["id"], admin)["name"] == "Lamp"


def test_subpanels_create_in_context_select_and_remove(client, site, admin, widget):
    gadget = site.records.create("gadgets", {"name": "Lamp"}, admin)
    detail = client.get(f"/m/gadgets/{gadget['id']}").text
    assert f"_link=gadgets:{gadget['id']}:widgets" in html.unescape(detail)
    client.post(f"/m/gadgets/{gadget['id']}/link/widgets",
                data={"_csrf": client.csrf, "other_id": widget["id"]})
    detail = client.get(f"/m/gadgets/{gadget['id']}").text
    assert re.search(r'id="sub-widgets".*?data-count="1"', detail, re.DOTALL)
    assert "Sprocket" not in detail  # the rows come when the subpanel is opened
    rows = client.get(f"/m/gadgets/{gadget['id']}/subpanel/widgets?fragment=1").text
    assert "Sprocket" in rows and f"/unlink/widgets/{widget['id']}" in rows
    client.post(f"/m/gadgets/{gadget['id']}/unlink/widgets/{widget['id']}",
                data={"_csrf": client.csrf})
    assert site.records.related("gadgets", gadget["id"], "widgets", admin) == []
    created = client.post("/m/widgets/new", data={
        "_csrf": client.csrf, "name": "Cog", "_link": f"gadgets:{gadget['id']}:widgets",
        "return": f"/m/gadgets/{gadget['id']}"})
    assert created.url.path == f"/m/gadgets/{gadget['id']}"
    assert [w["name"] for w in site.records.related("gadgets", gadget["id"], "widgets", admin)] \
        == ["Cog"]


def test_uploaded_image_is_stored_and_served_only_through_its_record(client, site, admin,
                                                                     full_layout):
    png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(png, "PNG")  # image fields take only real images
    png = png.getvalue()
    response = client.post("/m/gadgets/new", data={"_csrf": client.csrf, "name": "Pic"},
                           files={"photo": ("../../etc/passwd.png", png, "image/png")})
    assert response.status_code == 200
    [gadget] = site.records.list("gadgets", admin)
    assert gadget["photo"].endswith("/passwd.png") and ".." not in gadget["photo"]
    served = client.get(f"/m/gadgets/{gadget['id']}/file/photo")
    assert served.status_code == 200 and served.content == png
    assert client.get(f"/m/gadgets/{gadget['id']}/file/name").status_code == 404


def test_pages_carry_security_headers_and_a_signed_session_cookie(client):
    response = client.get("/m/gadgets")
    assert response.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    cookie = client.cookies.get("crbm_session")
    assert cookie and "." in cookie  # itsdangerous-signed
    client.cookies.set("crbm_session", cookie[:-4] + "AAAA")  # tampered: not signed in
    assert client.get("/m/gadgets").url.path == "/login"


def test_site_overrides_one_template_or_stylesheet(site, admin):
    # theme packs (templates, /theme/<pack>/ files): tests/web/test_themes.py
    (site.folder / "templates").mkdir()
    (site.folder / "templates" / "error.html").write_text(
        '{% extends "base.html" %}{% block content %}<p id="custom">{{ _("Lost?") }}</p>{% endblock %}')
    (site.folder / "static").mkdir()
    (site.folder / "static" / "crbm.css").write_text(":root { --color-bg: #000; }")
    with TestClient(create_app(site)) as client:
        assert '<p id="custom">Lost?</p>' in client.get("/nowhere").text  # site override
        assert client.get("/static/crbm.css").text == ":root { --color-bg: #000; }"  # site
        assert "dependentFields" in client.get("/static/crbm.js").text  # the rest: core
        assert client.get("/static/../site.yaml").status_code == 404


def test_routing_by_first_segment_answers_as_every_route_would(client, widget):
    """core.web.app.SegmentRouter tries only the routes a path's first segment can match:
    pages, the API, a wrong method (405), a trailing slash and an unknown path answer as
    Starlette's loop over every route answers, and a route added later is found."""
    assert client.get(f"/m/widgets/{widget['id']}").status_code == 200
    assert client.get("/health").json()["status"] == "ok"
    assert client.delete("/health").status_code == 405  # the path exists, not the method
    assert client.get("/nonesuch/page").status_code == 404
    slash = client.get("/health/", follow_redirects=False)
    assert (slash.status_code, slash.headers["location"]) == (307, "http://testserver/health")

    async def late(request):
        from starlette.responses import PlainTextResponse
        return PlainTextResponse("late")

    client.app.router.routes.insert(0, Route("/late", late))
    assert client.get("/late").text == "late"


def test_a_link_given_by_id_in_the_url_shows_its_record_s_name(client, site, admin):
    """``/m/contacts/new?account_id=<id>`` (a link made elsewhere, without the name): the
    picker shows "Acme Corporation", not the id; an id that names nothing stays as given."""
    acme = site.records.create("accounts", {"name": "Acme Corporation"}, admin)
    page = client.get(f"/m/contacts/new?account_id={acme['id']}")
    assert page.status_code == 200
    assert 'value="Acme Corporation"' in page.text
    missing = "00000000-0000-4000-8000-000000000000"
    page = client.get(f"/m/contacts/new?account_id={missing}")
    assert page.status_code == 200 and f'value="{missing}"' in page.text
