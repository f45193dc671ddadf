"""The REST API (core/api): a Studio-made module end to end with no API code for it, the
access rules of the UI, bad input, line items, actions and bulk — as a client sees them."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
import sqlalchemy as sa

from core.apps.admin import access_admin as aa
from core.kernel.records import SYSTEM_USER, Query
from core.kernel.users import create_user
from tests.api_util import bearer, client

PROBLEM = "application/problem+json"


def problem(response, status: int) -> dict:
    """The response is a problem object with this status; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"] and "Traceback" not in response.text
    return body


def fields_of(body: dict) -> set[str]:
    return {e["field"] for e in body.get("errors", [])}


@pytest.fixture
def vehicles(site, admin):
    """A module made in the Studio: every JSON kind, a related field, a many-to-many."""
    studio = site.studio
    studio.create_module(admin, "vehicles", "Vehicles", "Vehicle", "Fleet",
                         features={"assignable": True})
    for name, spec in {
        "plate": {"type": "text", "max_size": 12},
        "year": {"type": "integer", "min": 1900, "max": 2100},
        "price": {"type": "currency"},
        "electric": {"type": "checkbox"},
        "bought_on": {"type": "date"},
        "serviced_at": {"type": "datetime"},
        "kind": {"type": "dropdown", "options": "account_type_dom"},
        "tags": {"type": "multiselect", "options": "account_type_dom"},
        "owner_id": {"type": "related", "module": "accounts"},
    }.items():
        studio.save_field(admin, "vehicles", name, spec, new=True)
    studio.add_relationship(admin, "vehicles", "many_to_many", "contacts")
    return site


def test_a_studio_module_has_full_crud_lists_filters_sort_pages_and_cursors(vehicles, admin):
    site = vehicles
    auth = bearer(site, admin)
    acme = site.records.create("accounts", {"name": "Acme"}, admin)["id"]
    with client(site) as api:
        assert "vehicles" in {m["name"] for m in api.get("/api/v1", headers=auth).json()["data"]}
        made = api.post("/api/v1/vehicles", headers=auth, json={
            "name": "Van", "plate": "AB-123", "year": 2019, "price": "19999.99",
            "price_currency": "EUR", "electric": True, "bought_on": "2024-03-01",
            "serviced_at": "2024-03-01T12:30:00+02:00", "kind": "customer",
            "tags": ["partner", "press"], "owner_id": acme})
        assert made.status_code == 201, made.text
        van = made.json()
        assert made.headers["location"] == f"/api/v1/vehicles/{van['id']}"
        assert made.headers["etag"] == '"1"'
        assert (van["year"], van["price"], van["price_currency"], van["electric"]) == \
            (2019, "19999.99", "EUR", True)
        assert (van["bought_on"], van["serviced_at"]) == ("2024-03-01", "2024-03-01T10:30:00Z")
        assert van["tags"] == ["partner", "press"] and "deleted" not in van
        # read back, with the related record's name
        got = api.get(f"/api/v1/vehicles/{van['id']}?labels=1", headers=auth)
        assert got.json()["_labels"]["owner_id"] == "Acme" and got.headers["etag"] == '"1"'
        # 25 more, through bulk; two bad items stand alone
        items = [{"name": f"Car {i:02}", "year": 2000 + i, "price": i * 1000,
                  "electric": i % 2 == 0} for i in range(25)]
        items.insert(3, {"name": "Bad", "year": "old"})
        items.insert(7, {"plate": "no name"})
        bulk = api.post("/api/v1/vehicles/bulk", headers=auth, json={"create": items})
        assert bulk.status_code == 207
        results = bulk.json()["data"]
        assert [r["status"] for r in results].count(201) == 25
        assert (results[3]["status"], fields_of(results[3])) == (422, {"year"})
        assert (results[7]["status"], fields_of(results[7])) == (422, {"name"})
        assert bulk.json()["meta"] == {"succeeded": 25, "failed": 2}
        # lists: filters with operators, sort, fields, pages, cursors
        def names(query: str) -> list[str]:
            reply = api.get(f"/api/v1/vehicles?{query}", headers=auth)
            assert reply.status_code == 200, reply.text
            return [r["name"] for r in reply.json()["data"]]
        assert names("filter[year][gte]=2020&sort=-year&limit=50&fields=name,year") == \
            [f"Car {i:02}" for i in range(24, 19, -1)]
        assert names("filter[year][in]=2001,2003&sort=name") == ["Car 01", "Car 03"]
        assert names("filter[electric]=true&filter[year][lt]=2005&sort=year") == \
            ["Car 00", "Car 02", "Car 04"]
        assert names("filter[name][starts]=car 1&filter[year][ne]=2011&sort=name") == \
            [f"Car {i}" for i in range(10, 20) if i != 11]
        assert names("filter[plate][not_empty]=1") == ["Van"]
        assert names("filter[tags][contains]=press") == ["Van"]
        assert names("filter[kind]=customer&filter[bought_on][lte]=2024-03-01") == ["Van"]
        assert names("filter[price][gt]=23000.5&sort=price") == ["Car 24"]
        assert names("q=Va") == ["Van"]
        listed = api.get("/api/v1/vehicles?fields=name&limit=10&page=2&sort=name", headers=auth)
        body = listed.json()
        assert [r["name"] for r in body["data"]] == [f"Car {i:02}" for i in range(10, 20)]
        assert set(body["data"][0]) == {"id", "name"}
        assert body["meta"] == {"limit": 10, "total": 26, "total_capped": False, "page": 2}
        assert body["links"]["next"].endswith("page=3")
        seen, cursor = [], None
        while True:  # records added during the walk do not shift it
            reply = api.get("/api/v1/vehicles", headers=auth, params={
                "sort": "-electric,year", "limit": 7, "fields": "name",
                **({"cursor": cursor} if cursor else {})})
            page = reply.json()
            seen += [r["name"] for r in page["data"]]
            cursor = page["meta"].get("next_cursor")
            if len(seen) == 7:
                site.records.create("vehicles", {"name": "Aardvark", "electric": True,
                                                 "year": 1999}, admin)
            if cursor is None:
                break
        assert len(seen) == 26 and len(set(seen)) == 26 and "Aardvark" not in seen
        assert seen[:3] == ["Car 00", "Car 02", "Car 04"]  # electric first, then by year
        bad = problem(api.get(f"/api/v1/vehicles?cursor={cursor or 'x'}&sort=name",
                              headers=auth), 400)
        assert fields_of(bad) == {"cursor"}
        # update: partial, If-Match, 412 when stale, 422 naming fields
        url = f"/api/v1/vehicles/{van['id']}"
        changed = api.patch(url, headers={**auth, "If-Match": '"1"'}, json={"year": 2020})
        assert changed.status_code == 200 and changed.json()["year"] == 2020
        assert changed.json()["plate"] == "AB-123" and changed.headers["etag"] == '"2"'
        problem(api.patch(url, headers={**auth, "If-Match": '"1"'}, json={"year": 2021}), 412)
        wrong = problem(api.patch(url, headers=auth, json={
            "year": 1800, "kind": "spaceship", "version": 2, "created_at": "2020-01-01"}), 422)
        assert fields_of(wrong) == {"year", "kind", "created_at"}
        assert api.get(url, headers=auth).json()["year"] == 2020
        # related records: many-to-many link, list, unlink; one-to-many from the account
        nora = site.records.create("contacts", {"first_name": "Nora", "last_name": "N"},
                                   admin)["id"]
        rel = next(n for n, r in site.registry.module("vehicles").relationships.items()
                   if r["module"] == "contacts")
        assert api.post(f"{url}/{rel}", headers=auth, json={"id": nora}).status_code == 204
        linked = api.get(f"{url}/{rel}?fields=last_name", headers=auth).json()["data"]
        assert [c["id"] for c in linked] == [nora]
        assert api.delete(f"{url}/{rel}/{nora}", headers=auth).status_code == 204
        assert api.get(f"{url}/{rel}", headers=auth).json()["data"] == []
        fleet = next(n for n, r in site.registry.module("accounts").relationships.items()
                     if r["module"] == "vehicles")
        car = results[0]["id"]
        assert api.post(f"/api/v1/accounts/{acme}/{fleet}", headers=auth,
                        json={"id": car}).status_code == 204
        owned = api.get(f"/api/v1/accounts/{acme}/{fleet}?sort=name&fields=name",
                        headers=auth).json()["data"]
        assert [v["name"] for v in owned] == ["Car 00", "Van"]
        assert api.delete(f"/api/v1/accounts/{acme}/{fleet}/{car}",
                          headers=auth).status_code == 204
        problem(api.get(f"{url}/nothing", headers=auth), 404)
        # bulk update: per item, a stale version and an unknown id fail alone
        updates = api.post("/api/v1/vehicles/bulk", headers=auth, json={"update": [
            {"id": car, "year": 1999}, {"id": van["id"], "version": 1, "year": 2001},
            {"id": "no-such-id", "year": 2001}]}).json()["data"]
        assert [u["status"] for u in updates] == [200, 412, 404]
        # delete
        assert api.delete(url, headers=auth).status_code == 204
        problem(api.get(url, headers=auth), 404)
        problem(api.delete(url, headers=auth), 404)


ALL = {a: "all" for a in ("view", "list", "edit", "delete", "export", "report")}
TEAM = {a: "team" for a in ("view", "list", "edit", "delete", "export", "report")}
VIEW_ONLY = {"view": "all", "list": "all", "edit": "none", "delete": "none"}
OWNER = {"view": "owner", "list": "owner", "edit": "owner", "delete": "none"}


def test_every_access_rule_of_the_ui_holds_through_the_api(site, admin):
    """tess: team level in North; owen: owner level, contacts disabled; vera: may view
    every account but change none. A hidden record is 404 and absent from every list,
    count, related list and label; denies hide a record from one user."""
    north, south = aa.create_team(site, "North"), aa.create_team(site, "South")
    users = {n: create_user(site, n, "correct horse battery") for n in ("tess", "owen", "vera")}
    aa.set_team_members(site, north, add=[users["tess"].id])
    for name, rules, who in (
            ("Team", {"accounts": ("enabled", TEAM), "contacts": ("enabled", TEAM)}, "tess"),
            ("Own", {"accounts": ("enabled", OWNER), "contacts": ("disabled", {})}, "owen"),
            ("Viewer", {"accounts": ("enabled", VIEW_ONLY), "contacts": ("enabled", ALL)},
             "vera")):
        role = aa.create_role(site, name)
        aa.set_role_rules(site, role, rules)
        aa.set_role_users(site, role, add=[users[who].id])

    def account(name, owner, teams):
        return site.records.create("accounts", {"name": name, "assigned_user_id": owner.id},
                                   admin, teams=teams)["id"]
    ids = {"Northwind": account("Northwind", admin, [north]),
           "Southgate": account("Southgate", admin, [south]),
           "Owenco": account("Owenco", users["owen"], []),
           "Denied": account("Denied", admin, [north])}
    aa.add_deny(site, "accounts", ids["Denied"], user_id=users["tess"].id, by=admin.id)
    nora = site.records.create("contacts", {"first_name": "Nora", "last_name": "North",
                                            "account_id": ids["Southgate"]}, admin,
                               teams=[north])["id"]
    visible = {"tess": {"Northwind"}, "owen": {"Owenco"},
               "vera": {"Northwind", "Southgate", "Owenco", "Denied"}}
    with client(site) as api:
        for who, sees in visible.items():
            auth = bearer(site, users[who])
            listed = api.get("/api/v1/accounts?fields=name&limit=200&count=1",
                             headers=auth).json()
            assert {r["name"] for r in listed["data"]} == sees, who
            assert listed["meta"]["total"] == len(sees)
            for name, record_id in ids.items():
                url = f"/api/v1/accounts/{record_id}"
                if name not in sees:
                    body = problem(api.get(url, headers=auth), 404)
                    assert name not in json.dumps(body)
                    problem(api.patch(url, headers=auth, json={"name": "Taken"}), 404)
                    problem(api.delete(url, headers=auth), 404)
                    problem(api.get(f"{url}/contacts", headers=auth), 404)
                    continue
                assert api.get(url, headers=auth).json()["name"] == name
                if who == "vera":  # sees it, may not change it: 403, nothing written
                    problem(api.patch(url, headers=auth, json={"name": "Taken"}), 403)
                    problem(api.delete(url, headers=auth), 403)
            one = api.get(f"/api/v1/accounts?filter[id]={ids['Southgate']}", headers=auth)
            assert len(one.json()["data"]) == ("Southgate" in sees)
            # contacts: disabled for owen; Nora's account label only for who sees it
            contacts = api.get("/api/v1/contacts?labels=1", headers=auth)
            if who == "owen":
                problem(contacts, 403)
                problem(api.get(f"/api/v1/contacts/{nora}", headers=auth), 403)
                problem(api.post("/api/v1/contacts", headers=auth, json={"last_name": "X"}), 403)
                problem(api.get(f"/api/v1/accounts/{ids['Owenco']}/contacts", headers=auth), 403)
                assert "contacts" not in {m["name"] for m in
                                          api.get("/api/v1", headers=auth).json()["data"]}
                continue
            [row] = contacts.json()["data"]
            assert row["account_id"] == ids["Southgate"]
            assert row.get("_labels", {}).get("account_id") == \
                ("Southgate" if "Southgate" in sees else None)
            assert "Southgate" in contacts.text or "Southgate" not in sees
            related = api.get(f"/api/v1/accounts/{ids['Northwind']}/contacts", headers=auth)
            assert related.status_code == (200 if "Northwind" in sees else 404)
        # vera may not create accounts (no edit right) but may create contacts
        vera = bearer(site, users["vera"])
        problem(api.post("/api/v1/accounts", headers=vera, json={"name": "New"}), 403)
        problem(api.post("/api/v1/accounts/bulk", headers=vera,
                         json={"create": [{"name": "New"}]}), 403)
        assert api.post("/api/v1/contacts", headers=vera,
                        json={"last_name": "Vee"}).status_code == 201
        # teams given through the API are the UI's
        tess = bearer(site, users["tess"])
        made = api.post("/api/v1/accounts", headers=tess, json={"name": "Tessco",
                                                                "teams": [south]})
        assert made.status_code == 201
        assert set(site.records.teams_of("accounts", [made.json()["id"]])[made.json()["id"]]) \
            >= {south}
    names = {r["name"] for r in site.records.list("accounts", SYSTEM_USER,
                                                   Query(fields=["name"], limit=None))}
    assert "Taken" not in names and "New" not in names


def test_bad_input_is_a_4xx_problem_and_writes_nothing(site, admin):
    auth = bearer(site, admin)
    accounts = site.tables.tables["accounts"]

    def count() -> int:
        with site.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(accounts)).scalar()
    site.records.create("accounts", {"name": "Keep"}, admin)
    before = count()
    json_headers = {**auth, "Content-Type": "application/json"}
    with client(site) as api:
        problem(api.get("/api/v1/accounts"), 401)
        problem(api.get("/api/v1/accounts", headers={"Authorization": "Bearer nonsense"}), 401)
        problem(api.get("/api/v1/nosuchmodule", headers=auth), 404)
        problem(api.post("/api/v1/accounts", headers=json_headers, content=b'{"name": "A",'), 400)
        problem(api.post("/api/v1/accounts", headers=json_headers,
                         content=b'{"name": "A", "name": "B"}'), 400)
        problem(api.post("/api/v1/accounts", headers=json_headers,
                         content=b'{"name": "A", "employees": NaN}'), 400)
        problem(api.post("/api/v1/accounts", headers=json_headers,
                         content=b'{"name": "A\\u0000"}'), 400)
        problem(api.post("/api/v1/accounts", headers=json_headers, content=b"\xff\xfe"), 400)
        problem(api.post("/api/v1/accounts", headers=json_headers, content=b""), 400)
        problem(api.post("/api/v1/accounts", headers={**auth, "Content-Type": "text/plain"},
                         content=b'{"name": "A"}'), 415)
        problem(api.post("/api/v1/accounts", headers=json_headers,
                         content=b'{"name": "' + b"x" * 1_100_000 + b'"}'), 413)
        problem(api.post("/api/v1/accounts", headers=json_headers, content=b"[1, 2]"), 422)
        deep = b"[" * 100_000 + b"]" * 100_000
        assert api.post("/api/v1/accounts", headers=json_headers,
                        content=deep).status_code in (400, 413)
        wrong = problem(api.post("/api/v1/accounts", headers=auth, json={
            "name": {"x": 1}, "employees": "12", "annual_revenue": "1e5", "email1": 5,
            "industry": "mining-on-mars", "no_such_field": 1, "id": "x",
            "created_at": "2020-01-01"}), 422)
        assert fields_of(wrong) == {"name", "employees", "annual_revenue", "email1",
                                    "industry", "no_such_field", "id", "created_at"}
        derived = problem(api.post("/api/v1/accounts", headers=auth, json={
            "name": "X", "balance_receivable": "5"}), 422)  # a plugin's figure
        assert fields_of(derived) == {"balance_receivable"}
        assert {e["message"] for e in wrong["errors"] if e["field"] == "id"} == {"is read-only"}
        problem(api.post("/api/v1/accounts", headers=auth, json={
            "name": "Huge", "employees": 2**64, "annual_revenue": "1" * 40}), 422)
        problem(api.post("/api/v1/accounts", headers=auth, json={"email1": "not an email",
                                                                 "name": "X"}), 422)
        for query in ("filter[name]=' OR 1=1 --", "filter[name;drop]=x",
                      "sort=name;drop table accounts", "filter[name][like]=x",
                      "filter[employees]=1 OR 1=1", "filter[employees][in]=1,2);--",
                      "fields=name,password", "limit=0", "limit=1000", "page=-1",
                      "filter[created_at][gt]=yesterday", "filter[deleted]=true",
                      "labels=maybe", "limit=1&limit=2", "cursor=%%%", "sneaky=1",
                      "filter[employees]=99999999999999999999999",
                      "filter[annual_revenue][gt]=1e400"):
            reply = api.get(f"/api/v1/accounts?{query}", headers=auth)
            if query == "filter[name]=' OR 1=1 --":  # a value like any other: no match
                assert reply.status_code == 200 and reply.json()["data"] == [], query
                continue
            problem(reply, 400)
        problem(api.patch("/api/v1/accounts/x", headers={**auth, "If-Match": "yesterday"},
                          json={}), 400)
        problem(api.put("/api/v1/accounts", headers=auth, json={}), 405)
    assert count() == before


def test_line_items_actions_and_conversion_through_the_api(site, admin):
    auth = bearer(site, admin)
    account = site.records.create("accounts", {"name": "Shop"}, admin)["id"]
    with client(site) as api:
        quote = api.post("/api/v1/quotes", headers=auth, json={
            "name": "Fit-out", "account_id": account, "line_items": [
                {"name": "Hardware", "shipping": "10", "lines": [
                    {"name": "Desk", "quantity": 2, "unit_price": "199.99"},
                    {"name": "Chair", "quantity": "4", "unit_price": 50,
                     "discount_kind": "percent", "discount_value": 10}]}]})
        assert quote.status_code == 201, quote.text
        q = quote.json()
        # 399.98 + 200.00 - 20.00 + shipping 10 = 589.98
        assert (q["subtotal"], q["discount_total"], q["amount"]) == ("599.98", "20", "589.98")
        url = f"/api/v1/quotes/{q['id']}"
        items = api.get(f"{url}/line_items", headers=auth).json()
        assert items["totals"]["total"] == "589.98" and items["currency"] == q["amount_currency"]
        assert [li["net_price"] for li in items["groups"][0]["lines"]] == ["399.98", "180"]
        groups = [{"name": "Hardware", "lines": [{"name": "Desk", "quantity": "1",
                                                  "unit_price": "100"}]}]
        put = api.put(f"{url}/line_items", headers={**auth, "If-Match": quote.headers["etag"]},
                      json={"groups": groups})
        assert put.status_code == 200 and put.json()["totals"]["total"] == "100"
        problem(api.put(f"{url}/line_items", headers={**auth, "If-Match": '"1"'},
                        json={"groups": groups}), 412)
        bad = problem(api.put(f"{url}/line_items", headers=auth, json={"groups": [
            {"lines": [{"name": "X", "quantity": "lots", "colour": "red"}]}]}), 422)
        assert fields_of(bad) == {"groups.0.lines.0.quantity", "groups.0.lines.0.colour"}
        bad = problem(api.put(f"{url}/line_items", headers=auth, json={"groups": [
            {"lines": [{"name": "X", "quantity": "-1"}]}]}), 422)
        assert fields_of(bad) == {"line_items.1.1.quantity"}
        assert api.get(url, headers=auth).json()["amount"] == "100"
        problem(api.get(f"/api/v1/accounts/{account}/line_items", headers=auth), 404)
        # actions: unknown, bad body, then convert (and the quote is Closed Accepted)
        problem(api.post(f"{url}/actions/teleport", headers=auth, json={}), 404)
        problem(api.post(f"{url}/actions/convert_to_sales_order", headers=auth,
                         json={"extra": 1}), 422)
        order = api.post(f"{url}/actions/convert_to_sales_order", headers=auth)
        assert order.status_code == 200, order.text
        assert order.json()["quote_id"] == q["id"] and order.json()["amount"] == "100"
        assert api.get(url, headers=auth).json()["stage"] == "closed_accepted"
        # partial invoicing of the order through its action
        order_url = f"/api/v1/sales_orders/{order.json()['id']}"
        [line] = api.get(f"{order_url}/line_items", headers=auth).json()["groups"][0]["lines"]
        problem(api.post(f"{order_url}/actions/create_invoice", headers=auth,
                         json={"quantities": {line["id"]: "5"}}), 422)
        invoice = api.post(f"{order_url}/actions/create_invoice", headers=auth,
                           json={"quantities": {line["id"]: "1"}})
        assert invoice.status_code == 200 and invoice.json()["amount"] == "100"
        problem(api.post(f"{order_url}/actions/create_invoice", headers=auth), 409)
        lost = api.post("/api/v1/quotes", headers=auth, json={
            "name": "Lost", "account_id": account, "stage": "closed_lost"}).json()
        problem(api.post(f"/api/v1/quotes/{lost['id']}/actions/convert_to_invoice",
                         headers=auth), 409)
        paid = api.post(f"/api/v1/invoices/{invoice.json()['id']}/actions/record_payment",
                        headers=auth, json={"amount": "40"})
        assert paid.status_code == 200 and Decimal(paid.json()["amount"]) == 40
    assert site.records.get("invoices", invoice.json()["id"], admin)["amount_due"] == 60


def test_every_invalid_field_is_reported_at_once(site, admin):
    """docs/api.md: "every invalid field at once" — what the schema refuses and what the
    record service refuses, together, on create and on update; nothing written."""
    with client(site) as api:
        auth = bearer(site, admin)
        # a wrong JSON type (the schema), a bad email and a bad phone (the record service)
        wrong = problem(api.post("/api/v1/accounts", headers=auth, json={
            "name": "X", "employees": "many", "email1": "not an email",
            "phone_office": "call me!"}), 422)
        assert fields_of(wrong) == {"employees", "email1", "phone_office"}
        assert wrong["detail"] == "3 fields are invalid"
        messages = {e["field"]: e["message"] for e in wrong["errors"]}
        assert messages["employees"] == "must be an integer or null"
        assert "is not an email address" in messages["email1"]
        assert "is not a phone number" in messages["phone_office"]
        # a missing required field beside them, and a dropdown value that is no option
        wrong = problem(api.post("/api/v1/accounts", headers=auth, json={
            "employees": "many", "email1": "not an email", "account_type": "Alien"}), 422)
        assert fields_of(wrong) >= {"name", "employees", "email1", "account_type"}
        assert site.records.count("accounts", admin) == 0
        # the same on update
        account = site.records.create("accounts", {"name": "Acme"}, admin)
        wrong = problem(api.patch(f"/api/v1/accounts/{account['id']}", headers=auth, json={
            "name": None, "employees": "many", "email1": "not an email"}), 422)
        assert fields_of(wrong) == {"name", "employees", "email1"}
        assert site.records.get("accounts", account["id"], admin)["name"] == "Acme"


MIXED_CASE = ["Zebra", "apple", "Mango", "banana", "Apple", "ZEBRA", "mango", "Banana split",
              "cherry", "Cherry", "aardvark", "Äpple", "zebra crossing", "10 Downing"]


def test_text_sorts_regardless_of_case_and_cursors_walk_it_once(site, admin):
    """"apple" before "Zebra" on every database, ascending and descending; equal but for
    case, the id decides; and a cursor walk over such names gives every record once, in
    the list's order."""
    site.records.create_many("accounts", [{"name": n} for n in MIXED_CASE], admin)
    folded = lambda names: [n.lower() for n in names]
    for sort in ("name", "-name"):
        listed = [r["name"] for r in site.records.list("accounts", admin,
                                                       Query(sort=sort, limit=None))]
        ascii_names = [n for n in listed if n.isascii()]
        assert folded(ascii_names) == sorted(folded(ascii_names), reverse=sort == "-name")
        assert listed.index("apple") < listed.index("Zebra") if sort == "name" else \
            listed.index("apple") > listed.index("Zebra")
    with client(site) as api:
        auth = bearer(site, admin)
        # text with empty values too (NULL sorts first, as ""), both ways
        site.records.create_many("accounts", [{"name": f"Mailed {i}", "email1": e} for i, e in
                                              enumerate(["b@x.org", "A@x.org", "c@x.org"])], admin)
        for sort in ("name", "-name", "name,-created_at", "email1", "-email1"):
            order = [r["id"] for r in site.records.list("accounts", admin,
                                                        Query(sort=sort, limit=None))]
            seen, cursor = [], None
            while True:
                page = api.get("/api/v1/accounts", headers=auth, params={
                    "sort": sort, "limit": 2, "fields": "name",
                    **({"cursor": cursor} if cursor else {})}).json()
                seen += [r["id"] for r in page["data"]]
                cursor = page["meta"].get("next_cursor")
                if cursor is None:
                    break
            assert seen == order, sort  # each exactly once, in the list's order
        # the API's list and the web list show the same order
        data = api.get("/api/v1/accounts", headers=auth,
                       params={"sort": "name", "limit": 100, "fields": "name"}).json()["data"]
        assert [r["id"] for r in data] == [r["id"] for r in site.records.list(
            "accounts", admin, Query(sort="name", limit=None))]
