"""A plugin's own field type works everywhere a kernel type does, with no kernel code
naming it: the test plugin tests/plugins/rating adds a star ``rating`` type (0 to 5) and a
``reviews`` module using it; here it is edited, shown, filtered, read and written through
the REST API, published in OpenAPI, exported and imported as CSV."""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from core.kernel.errors import ValidationError
from core.kernel.records import Query
from core.kernel.users import create_user
from core.testing import signed_in
from core.web import csv_export
from tests.api_util import bearer
from tests.api_util import client as api_client
from tests.plugins.rating import plugin as rating

PASSWORD = "correct horse battery"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def rated(make_site):
    site = make_site(extra_plugins=[rating])
    return site, create_user(site, "admin", PASSWORD, is_admin=True)


@pytest.fixture
def web(rated):
    site, _ = rated
    with signed_in(site, "admin", PASSWORD) as client:
        yield client


def shown(page: str) -> list[str]:
    """The ratings a list page shows, in order."""
    return re.findall(r'aria-label="(\d) of 5 stars">', page)


def reviews(site, admin, **filters):
    return {r["name"]: r["stars"] for r in site.records.list(
        "reviews", admin, Query(filters=list(filters.values()) or {}, sort="name"))}


def test_no_kernel_code_names_the_plugin_type():
    word = re.compile(r"\brating\b", re.IGNORECASE)
    found = [str(p.relative_to(ROOT)) for p in (ROOT / "core").rglob("*")
             if p.suffix in (".py", ".html", ".js", ".css") and word.search(p.read_text())]
    assert found == []


def test_the_type_stores_a_small_integer_and_reads_numbers_and_stars(rated):
    site, _ = rated
    assert str(site.tables.tables["reviews"].c.stars.type) == "SMALLINT"
    f = site.registry.module("reviews").fields["stars"]
    assert [f.type.normalize(v, f.spec) for v in (3, "3", " 5 ", "★★★", "★★☆☆☆", "", None)] \
        == [3, 3, 5, 3, 2, None, None]
    for bad in (7, -1, "seven", True, "★★★★★★"):
        with pytest.raises(ValueError, match="is not a rating: give 0 to 5 stars"):
            f.type.normalize(bad, f.spec)


def test_the_edit_form_saves_a_rating_and_refuses_seven(rated, web):
    site, admin = rated
    form = web.get("/m/reviews/new").text
    # five radio stars and "no rating", in a group the field's label names
    assert 'role="radiogroup" aria-labelledby="f_stars-label"' in form
    assert '<span class="label" id="f_stars-label">Stars</span>' in form
    for n in range(1, 6):
        assert f'id="f_stars-{n}" name="stars" value="{n}"' in form
        assert f'<span class="visually-hidden">{n} of 5 stars</span>' in form
    assert '<link rel="stylesheet" href="/static/rating.css">' in form
    assert web.get("/static/rating.css").status_code == 200  # the plugin's static file
    saved = web.post("/m/reviews/new", data={"_csrf": web.csrf, "name": "Good", "stars": "4"})
    assert saved.status_code == 200 and "Good" in saved.text
    assert reviews(site, admin) == {"Good": 4}
    refused = web.post("/m/reviews/new", data={"_csrf": web.csrf, "name": "Bad", "stars": "7"})
    assert refused.status_code == 422
    assert "&#39;7&#39; is not a rating: give 0 to 5 stars" in refused.text
    assert reviews(site, admin) == {"Good": 4}  # nothing saved
    # editing shows the stored value checked
    good = next(iter(site.records.list("reviews", admin, Query())))
    edit = web.get(f"/m/reviews/{good['id']}/edit").text
    assert 'id="f_stars-4" name="stars" value="4" checked' in edit


def test_list_and_detail_show_stars_and_the_list_filters_on_them(rated, web):
    site, admin = rated
    site.records.create_many("reviews", [{"name": n, "stars": s} for n, s in
                                         (("A", 1), ("B", 3), ("C", 5), ("D", None))], admin)
    listing = web.get("/m/reviews").text
    assert '<span class="rating" role="img" aria-label="3 of 5 stars">★★★☆☆</span>' in listing
    assert shown(listing) == ["1", "3", "5"]  # D: no rating, an empty cell
    # the type's filter choices: at least, exactly, at most
    assert '<option value="&gt;=4">★★★★ or more</option>' in listing
    assert '<option value="&lt;=2">★★ or fewer</option>' in listing
    at_least_3 = web.get("/m/reviews", params={"f_stars": ">=3"}).text
    assert shown(at_least_3) == ["3", "5"]
    assert '<option value="&gt;=3" selected>' in at_least_3
    assert shown(web.get("/m/reviews", params={"f_stars": "1"}).text) == ["1"]
    assert shown(web.get("/m/reviews", params={"f_stars": "<=3"}).text) == ["1", "3"]
    c = next(r for r in site.records.list("reviews", admin, Query()) if r["name"] == "C")
    detail = web.get(f"/m/reviews/{c['id']}").text
    assert '<span class="rating" role="img" aria-label="5 of 5 stars">★★★★★</span>' in detail


def test_the_record_service_filters_with_the_type_operators_only(rated):
    site, admin = rated
    site.records.create_many("reviews", [{"name": n, "stars": s} for n, s in
                                         (("A", 1), ("B", 3), ("C", 5))], admin)
    assert reviews(site, admin, f=("stars", "gte", "★★★")) == {"B": 3, "C": 5}
    assert reviews(site, admin, f=("stars", "lte", 3)) == {"A": 1, "B": 3}
    assert reviews(site, admin, f=("stars", "eq", "5")) == {"C": 5}
    with pytest.raises(ValidationError, match="not an operator of this field"):
        reviews(site, admin, f=("stars", "starts", "3"))


def test_the_api_reads_writes_and_publishes_the_rating(rated):
    site, admin = rated
    auth = bearer(site, admin)
    with api_client(site) as api:
        made = api.post("/api/v1/reviews", headers=auth, json={"name": "API", "stars": 2})
        assert made.status_code == 201, made.text
        got = api.get(f"/api/v1/reviews/{made.json()['id']}", headers=auth).json()
        assert got["stars"] == 2
        bad = api.post("/api/v1/reviews", headers=auth, json={"name": "Seven", "stars": 7})
        assert bad.status_code == 422
        assert bad.headers["content-type"].startswith("application/problem+json")
        assert {e["field"] for e in bad.json()["errors"]} == {"stars"}
        assert reviews(site, admin) == {"API": 2}
        listed = api.get("/api/v1/reviews", headers=auth, params={"filter[stars][gte]": "2"})
        assert [r["name"] for r in listed.json()["data"]] == ["API"]
        refused = api.get("/api/v1/reviews", headers=auth, params={"filter[stars][starts]": "2"})
        assert refused.status_code == 400 and "is not an operator of 'stars'" in refused.text
        document = api.get("/api/v1/openapi.json", headers=auth).json()
    schemas = document["components"]["schemas"]
    stars = next(s["properties"]["stars"] for name, s in schemas.items()
                 if name.lower().startswith("review") and "stars" in s.get("properties", {}))
    assert (stars["type"], stars["minimum"], stars["maximum"]) == (["integer", "null"], 0, 5)


def test_csv_export_writes_the_number_and_import_reads_numbers_or_stars(rated, web):
    site, admin = rated
    site.records.create_many("reviews", [{"name": "A", "stars": 3}, {"name": "B"}], admin)
    response = web.post("/m/reviews/action", data={"_csrf": web.csrf, "action": "export"})
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows == [["Name", "Stars"], ["A", "3"], ["B", ""]]
    module = site.registry.module("reviews")
    assert csv_export.read_cells(module, ["Name", "Stars"], ["X", "3"]) == \
        ({"name": "X", "stars": 3}, {})
    assert csv_export.read_cells(module, ["name", "stars"], ["Y", "★★★"])[0]["stars"] == 3
    values, errors = csv_export.read_cells(module, ["Name", "Stars"], ["Z", "7"])
    assert "stars" not in values and "is not a rating" in str(errors["stars"])
