"""The dashboards' standard dashlets of the core's features (plugins/dashboards/standard.py):
a smart list (its first rows with its columns, its KPIs, the link to its tab on the list
page; only the records its reader may list; a list deleted or no longer shared said so) and
a quick-create form (posted to the module's create page and back to the dashboard; a
refused form kept with its errors), added through the dashboard's chooser."""
from __future__ import annotations

import datetime as dt
import html
import re

import pytest

from core.apps.admin import access_admin as aa
from core.apps.smart_lists import lists
from core.kernel.i18n import Preferences, formatter
from core.kernel.records import SYSTEM_USER
from core.kernel.users import create_user
from core.testing import signed_in
from plugins.dashboards import store
from plugins.dashboards.dashlets import Registry

pytestmark = pytest.mark.usefixtures("quick_hashes")
PASSWORD = "a long enough password 1"
SMART, QUICK = "dashboards.smart_list", "dashboards.quick_create"
DEALS = (("Acme renewal", "prospecting", "1000"), ("Globex pilot", "prospecting", "2500"),
         ("Initech upgrade", "qualification", "400"), ("Umbrella won", "closed_won", "9000"))


def render(site, user, name, value):
    return Registry.of(site).types[name].render(site, user, {"value": value},
                                                formatter(Preferences()))


def post(web, url, **data):
    return web.post(url, data={"_csrf": web.csrf, **data}, follow_redirects=False)


def dashlet(page: str, type_name: str) -> str:
    """The HTML of the page's (first) dashlet of ``type_name``."""
    found = re.search(rf'<section class="dashlet[^"]*"[^>]*data-type="{re.escape(type_name)}"'
                      r'.*?</section>', page, re.DOTALL)
    assert found, f"no {type_name} dashlet on the page"
    return html.unescape(found.group(0))


@pytest.fixture
def deals(site, admin):
    """The four DEALS on one account, and "Prospects": the prospecting ones, their name and
    amount as columns, a count and the sum of their amounts, shared with everyone."""
    acme = site.records.create("accounts", {"name": "Acme"}, admin)
    site.records.create_many("opportunities", [
        {"name": name, "account_id": acme["id"], "amount": amount, "sales_stage": stage,
         "date_closed": dt.date(2027, 3, 31)} for name, stage, amount in DEALS], admin)
    smart = lists.create(site, admin, site.registry.module("opportunities"), "Prospects",
                         {"f_sales_stage": "prospecting", "sort": "name"}, ["name", "amount"],
                         [{"fn": "count"}, {"fn": "sum", "field": "amount"}],
                         share_mode="everyone")
    return {"smart": smart, "value": f"opportunities:{smart.id}", "acme": acme}


def test_a_smart_list_shows_its_rows_columns_kpis_and_opens_its_tab(site, admin, web, deals):
    kind = Registry.of(site).types[SMART]
    assert (deals["value"], "Opportunities: Prospects") in kind.choices(site, admin)
    drawn = render(site, admin, SMART, deals["value"])
    assert drawn.title == "Smart list: Prospects"
    assert drawn.table.headers == ("Opportunity name", "Opportunity amount")
    assert [[c.text for c in row] for row in drawn.table.rows] == [
        ["Acme renewal", "$1,000.00"], ["Globex pilot", "$2,500.00"]]
    assert drawn.table.rows[0][0].url.startswith("/m/opportunities/")
    assert drawn.figures == (("Number of records", "2"), ("Sum of Opportunity amount", "$3,500.00"))
    assert drawn.more == ("Open the list", f"/m/opportunities?list={deals['smart'].id}")

    # added through the chooser, drawn on the home page, its link opens the list's tab
    assert post(web, "/dashboards/new/add", type=SMART, option=deals["value"]).status_code == 303
    shown = dashlet(web.get("/").text, SMART)
    assert "Smart list: Prospects" in shown and "Globex pilot" in shown
    assert "Initech upgrade" not in shown and "$3,500.00" in shown
    link = re.search(r'<a href="([^"]+)">Open the list →</a>', shown).group(1)
    listed = web.get(link)
    assert listed.status_code == 200
    assert re.search(r'aria-current="page"[^>]*>Prospects<', listed.text)


def test_a_smart_list_shows_only_what_its_reader_may_list(site, admin, deals):
    aa.save_settings(site, {"inherit_created_by": False})
    east = aa.create_team(site, "East")
    tess = create_user(site, "tess", PASSWORD)
    aa.set_team_members(site, east, add=[tess.id])
    role = aa.create_role(site, "Team sales")
    rights = {a: "team" for a in ("view", "list", "edit", "delete", "export", "report")}
    aa.set_role_rules(site, role, {"opportunities": ("enabled", rights)})
    aa.set_user_roles(site, tess.id, [role])
    site.records.create("opportunities", {
        "name": "East prospect", "account_id": deals["acme"]["id"], "amount": "700",
        "sales_stage": "prospecting", "date_closed": dt.date(2027, 3, 31)}, SYSTEM_USER,
        teams=[east])
    drawn = render(site, tess, SMART, deals["value"])
    assert [row[0].text for row in drawn.table.rows] == ["East prospect"]
    assert drawn.figures == (("Number of records", "1"), ("Sum of Opportunity amount", "$700.00"))
    with signed_in(site, "tess", PASSWORD) as web:
        post(web, "/dashboards/new/add", type=SMART, option=deals["value"])
        shown = dashlet(web.get("/").text, SMART)
        assert "East prospect" in shown and "Acme renewal" not in shown


def test_a_smart_list_deleted_or_no_longer_shared_says_so(site, admin, web, deals):
    rob = create_user(site, "rob", PASSWORD)
    assert (deals["value"], "Opportunities: Prospects") in \
        Registry.of(site).types[SMART].choices(site, rob)
    module = site.registry.module("opportunities")
    lists.update(site, admin, module, deals["smart"], shares=("", (), ()))  # shared no more
    unshared = render(site, rob, SMART, deals["value"])
    assert unshared.error == ("This smart list was deleted, or it is no longer shared with "
                              "you.") and unshared.table is None
    assert deals["value"] not in dict(Registry.of(site).types[SMART].choices(site, rob))

    post(web, "/dashboards/new/add", type=SMART, option=deals["value"])
    lists.delete(site, admin, deals["smart"])
    home = web.get("/")
    assert home.status_code == 200
    assert "This smart list was deleted, or it is no longer shared with you." in \
        dashlet(home.text, SMART)
    assert render(site, admin, SMART, "nowhere:nothing").error  # a value no list ever had


def quick_form(page: str) -> dict:
    """The quick-create dashlet's form: its action and its inputs' names and values."""
    shown = dashlet(page, QUICK)
    form = re.search(r'<form method="post"[^>]*action="(/m/[^"]+/new)".*?</form>', shown,
                     re.DOTALL)
    fields = dict(re.findall(r'<input (?:id="[^"]*" )?(?:type="hidden" )?name="([^"]+)"'
                             r'(?: type="hidden")? value="([^"]*)"', form.group(0)))
    return {"action": form.group(1), "fields": fields, "html": form.group(0)}


def test_quick_create_posts_to_the_create_page_and_comes_back(site, admin, web):
    kind = Registry.of(site).types[QUICK]
    assert ("accounts", "Account") in kind.choices(site, admin)
    post(web, "/dashboards/new/add", type=QUICK, option="accounts")
    tab = store.dashboards(site, admin)[0].id
    home = web.get(f"/?tab={tab}").text
    assert "Create Account" in dashlet(home, QUICK)
    form = quick_form(home)
    assert form["action"] == "/m/accounts/new"
    assert form["fields"]["_layout"] == "quick" and form["fields"]["return"] == f"/?tab={tab}"
    assert form["fields"]["_csrf"] == web.csrf
    for name in ("name", "phone_office", "email1"):  # the quick layout's inputs
        assert f'name="{name}"' in form["html"]

    created = post(web, form["action"], _layout="quick", **{"return": f"/?tab={tab}"},
                   name="Quickly Ltd", phone_office="+1 555 0100")
    assert created.status_code == 303 and created.headers["location"] == f"/?tab={tab}"
    [record] = site.records.list("accounts", admin)
    assert record["name"] == "Quickly Ltd" and record["phone_office"] == "+1 555 0100"
    back = web.get(created.headers["location"]).text
    assert "Account Quickly Ltd created." in back
    shown = dashlet(back, QUICK)  # a link to the new record, under the form
    assert f'<a href="/m/accounts/{record["id"]}">Quickly Ltd</a>' in shown


def test_a_refused_quick_create_keeps_what_was_typed(site, admin, web):
    post(web, "/dashboards/new/add", type=QUICK, option="accounts")
    tab = store.dashboards(site, admin)[0].id
    refused = post(web, "/m/accounts/new", _layout="quick", **{"return": f"/?tab={tab}"},
                   name="", phone_office="+1 555 0199", email1="not an address")
    assert refused.status_code == 422
    page = html.unescape(refused.text)
    assert "Please correct the fields marked below." in page
    assert 'value="+1 555 0199"' in page and 'value="not an address"' in page
    assert f'name="return" value="/?tab={tab}"' in page  # saving it still comes back home
    assert 'name="_layout" value="quick"' in page
    assert site.records.list("accounts", admin) == []


def test_quick_create_offers_only_modules_the_user_may_create_in(site, admin):
    viewer = create_user(site, "vera", PASSWORD)
    role = aa.create_role(site, "Readers")
    read = {"view": "all", "list": "all", "edit": "none", "delete": "none", "export": "none",
            "report": "none"}
    aa.set_role_rules(site, role, {"accounts": ("enabled", read)})
    aa.set_user_roles(site, viewer.id, [role])
    assert "accounts" not in dict(Registry.of(site).types[QUICK].choices(site, viewer))
    assert render(site, viewer, QUICK, "accounts").error == \
        "You may no longer create records of this kind."


def test_both_dashlets_draw_in_a_themes_sandbox(site, admin, web, deals, tmp_path):
    """A theme with templates runs every page sandboxed: the quick-create form's inputs and
    the smart list's figures must not trip over it."""
    from tests.pack_util import install_folder
    from tests.web.test_themes import KERNEL_TEMPLATES, set_preferences, theme_pack

    base = (KERNEL_TEMPLATES / "base.html").read_text().replace(
        "<main>", '<main data-theme-base="evil">')
    install_folder(site, theme_pack(tmp_path, {"base.html": base}))
    set_preferences(site, admin, theme="theme_evil")
    post(web, "/dashboards/new/add", type=SMART, option=deals["value"])
    post(web, f"/dashboards/{store.dashboards(site, admin)[0].id}/add", type=QUICK,
         option="opportunities")
    home = web.get("/")
    assert home.status_code == 200 and 'data-theme-base="evil"' in home.text
    assert "data-theme-failed" not in home.text
    assert "$3,500.00" in dashlet(home.text, SMART)
    assert 'name="sales_stage"' in quick_form(home.text)["html"]
