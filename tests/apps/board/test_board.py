"""Kanban boards (core/apps/board), on a test module ``deals`` that declares one
(tests/apps/board/deals): the declaration is checked with the registry, columns follow the
dropdown, totals count every record a user may list (one GROUP BY with their access
predicate), and a move goes through the record service — refused moves change nothing."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from core.apps.admin import access_admin as aa
from core.apps.board import board
from core.kernel import users
from core.kernel.records import Query
from core.kernel.registry import MetadataError
from core.kernel.site import Site, create_site
from core.kernel.users import create_user
from core.testing import ADMIN_PASSWORD, csrf_of
from core.web.app import create_app
from tests.apps.board.deals import plugin as deals_plugin
from tests.pack_util import install_folder

pytestmark = pytest.mark.usefixtures("quick_hashes")
READ_ONLY = {"view": "all", "list": "all", "edit": "none", "delete": "none",
             "export": "none", "report": "all"}
TEAM = {a: "team" for a in ("view", "list", "edit", "delete", "export", "report")}


def make_pipeline(site):
    """The deals module's site given teams North and South, a Team-level user of North
    (tess) and a read-only user (rita), and deals in both teams."""
    admin = create_user(site, "admin", ADMIN_PASSWORD, is_admin=True)
    north, south = aa.create_team(site, "North"), aa.create_team(site, "South")
    tess = create_user(site, "tess", ADMIN_PASSWORD, display_name="Tess Turner")
    rita = create_user(site, "rita", ADMIN_PASSWORD)
    aa.set_team_members(site, north, add=[tess.id])
    team = aa.create_role(site, "Team level")
    aa.set_role_rules(site, team, {m: ("enabled", TEAM) for m in ("deals", "accounts")})
    aa.set_role_teams(site, team, add=[north])
    reader = aa.create_role(site, "Read only")
    aa.set_role_rules(site, reader, {m: ("enabled", READ_ONLY) for m in ("deals", "accounts")})
    aa.set_role_users(site, reader, add=[rita.id])
    acme = site.records.create("accounts", {"name": "Acme"}, admin, teams=[north, south])
    ids = {}
    for name, stage, amount, probability, teams in (
            ("Northern lights", "prospecting", "1000", "10", [north]),
            ("North star", "proposal", "2500.50", "40", [north]),
            ("Southern cross", "prospecting", "4000", "20", [south]),
            ("South pole", "negotiation", "800", "75", [south]),
            ("Lost cause", "lost", "99", "0", [north])):
        ids[name] = site.records.create("deals", {
            "name": name, "stage": stage, "amount": amount, "probability": probability,
            "account_id": acme["id"], "close_date": dt.date(2027, 3, 31),
            "assigned_user_id": tess.id if north in teams else admin.id}, admin,
            teams=teams)["id"]
    return site, {"admin": admin, "tess": tess, "rita": rita, "ids": ids,
                  "teams": {"North": north, "South": south}}


@pytest.fixture
def pipeline(make_site):
    return make_pipeline(make_site(extra_plugins=[deals_plugin]))


def client_of(site, username: str) -> TestClient:
    client = TestClient(create_app(site))
    login = client.get("/login")
    assert client.post("/login", data={"_csrf": csrf_of(login.text), "username": username,
                                       "password": ADMIN_PASSWORD}).status_code == 200
    client.csrf = csrf_of(client.get("/").text)
    return client


def columns_of(html: str) -> dict[str, dict]:
    """Each column's title, count, totals and card names as the board shows them."""
    out = {}
    for match in re.finditer(r'<section class="board-column" data-column="(?P<v>[^"]*)"'
                             r'(?P<body>.*?)</section>', html, re.DOTALL):
        body = match["body"]
        out[match["v"]] = {
            "title": re.search(r"<h2[^>]*>(.*?)</h2>", body).group(1),
            "count": re.search(r"data-count[^>]*>(.*?)</span>", body).group(1),
            "face": (re.search(r"data-face>(.*?)</dd>", body) or [None, None])[1],
            "weighted": (re.search(r"data-weighted>(.*?)</dd>", body) or [None, None])[1],
            "cards": re.findall(r'class="board-card-title" href="[^"]+">(.*?)</a>', body)}
    return out


def test_a_board_declaration_is_checked_with_the_registry(tmp_path):
    """Every problem of a declaration at once, with its JSON path; nothing boots."""
    folder_of_deals = Path(deals_plugin.__file__).parent
    text = (folder_of_deals / "modules" / "deals.yaml").read_text()
    bad = text.replace("field: stage", "field: next_step") \
        .replace("amount: amount\n", "amount: name\n") \
        .replace("card: [account_id, close_date]", "card: [account_id, nowhere]") \
        .replace("hidden: [lost]", "hidden: [gone]").replace("sort: -amount", "sort: -nope")
    folder = tmp_path / "bad_deals"
    (folder / "modules").mkdir(parents=True)
    (folder / "dropdowns").mkdir()
    (folder / "modules" / "deals.yaml").write_text(bad)
    (folder / "dropdowns" / "deals.yaml").write_text(
        (folder_of_deals / "dropdowns" / "deals.yaml").read_text())
    import types
    plugin = types.ModuleType("bad_deals")
    plugin.__file__ = str(folder / "plugin.py")
    with pytest.raises(MetadataError) as caught:
        Site(create_site(tmp_path / "site"), extra_plugins=[plugin])
    said = str(caught.value)
    for problem in ("$.features.board.field: 'next_step' is not a dropdown field",
                    "$.features.board.amount: 'name' is not a number or currency field",
                    "$.features.board.card[1]: no field 'nowhere' in this module",
                    "$.features.board.sort: no field 'nope' to sort by"):
        assert problem in said
    # an unknown key is refused by the schema
    (folder / "modules" / "deals.yaml").write_text(text.replace("sort: -amount", "colour: red"))
    with pytest.raises(MetadataError) as caught:
        Site(create_site(tmp_path / "other"), extra_plugins=[plugin])
    assert "$.features.board" in str(caught.value) and "colour" in str(caught.value)
    (folder / "modules" / "deals.yaml").write_text(text.replace("hidden: [lost]",
                                                                "hidden: [gone]"))
    with pytest.raises(MetadataError) as caught:
        Site(create_site(tmp_path / "third"), extra_plugins=[plugin])
    assert "$.features.board.hidden[0]: 'gone' is not an option of 'stage'" in str(caught.value)


def test_the_board_shows_columns_cards_and_totals(pipeline):
    site, _ = pipeline
    with client_of(site, "admin") as web:
        listing = web.get("/m/deals")
        assert 'href="/m/deals/board"' in listing.text  # the List | Board switch
        page = web.get("/m/deals/board")
        assert page.status_code == 200
        columns = columns_of(page.text)
        # the dropdown's options in order, "Closed lost" hidden
        assert [c["title"] for c in columns.values()] == [
            "Prospecting", "Proposal", "Negotiation", "Closed won"]
        assert columns["prospecting"] == {
            "title": "Prospecting", "count": "2", "face": "$5,000.00", "weighted": "$900.00",
            "cards": ["Southern cross", "Northern lights"]}  # by amount, largest first
        assert (columns["proposal"]["face"], columns["proposal"]["weighted"]) == \
            ("$2,500.50", "$1,000.20")
        assert columns["won"] == {"title": "Closed won", "count": "0", "face": "$0.00",
                                  "weighted": "$0.00", "cards": []}
        card = page.text[page.text.index("Northern lights"):]
        assert "Acme" in card[:1500] and "Mar 31, 2027" in card[:1500]  # account, close date
        assert ">TT</span>" in card[:1500]  # the assignee's initials
        # the list's quick search and filters apply to the board, totals included
        searched = columns_of(web.get("/m/deals/board?q=north").text)
        assert searched["prospecting"]["cards"] == ["Northern lights"]
        assert (searched["prospecting"]["count"], searched["prospecting"]["face"]) == \
            ("1", "$1,000.00")
        assert searched["negotiation"]["count"] == "0"


def test_a_column_shows_fifty_cards_and_more_on_request(pipeline):
    site, who = pipeline
    admin = who["admin"]
    site.records.create_many("deals", [{"name": f"Bulk {i:02}", "stage": "won",
                                        "amount": str(100 + i)} for i in range(55)], admin)
    with client_of(site, "admin") as web:
        page = web.get("/m/deals/board")
        won = columns_of(page.text)["won"]
        assert won["count"] == "55" and len(won["cards"]) == board.PAGE
        assert won["cards"][:2] == ["Bulk 54", "Bulk 53"]
        assert won["face"] == f"${sum(100 + i for i in range(55)):,}.00"
        more = re.search(r'data-fragment="([^"]+)"', page.text).group(1).replace("&amp;", "&")
        rest = web.get(more)
        assert re.findall(r'class="board-card-title" href="[^"]+">(.*?)</a>', rest.text) == \
            [f"Bulk {i:02}" for i in range(4, -1, -1)]
        assert "data-more" not in rest.text


def count_statements(engine):
    seen = []

    def note(conn, cursor, statement, *args):
        seen.append(statement)
    sa.event.listen(engine, "before_cursor_execute", note)
    return seen, lambda: sa.event.remove(engine, "before_cursor_execute", note)


def test_a_team_level_user_sees_and_counts_only_their_teams_cards(pipeline):
    site, who = pipeline
    module = site.registry.module("deals")
    spec = board.BoardSpec.of(module)
    tess = who["tess"]
    seen, stop = count_statements(site.engine)
    try:
        columns = board.totals(site, module, spec, tess, Query(),
                               board.columns(site, module, spec))
    finally:
        stop()
    # one statement for every column (besides the access epoch a non-web user's check reads)
    reads = [s for s in seen if "deals" in s]
    assert len(reads) == 1 and "GROUP BY" in reads[0]
    counts = {c.value: (c.count, c.face, c.weighted) for c in columns}
    from decimal import Decimal
    assert counts["prospecting"] == (1, {"USD": Decimal(1000)}, {"USD": Decimal(100)})
    assert counts["proposal"][0] == 1 and counts["negotiation"] == (0, None, None)
    with client_of(site, "tess") as web:
        shown = columns_of(web.get("/m/deals/board").text)
        assert shown["prospecting"]["cards"] == ["Northern lights"]
        assert (shown["prospecting"]["count"], shown["prospecting"]["face"]) == \
            ("1", "$1,000.00")
        assert shown["negotiation"]["cards"] == [] and shown["negotiation"]["count"] == "0"
        # a South deal cannot be moved by her, and she is not told it exists
        south = who["ids"]["South pole"]
        refused = web.post("/m/deals/board/move", data={"id": south, "to": "won"},
                           headers={"Accept": "application/json",
                                    "X-CSRF-Token": web.csrf})
        assert refused.status_code == 404
        assert refused.json() == {"ok": False,
                                  "error": "There is no such Deal, or you may not see it."}
    assert site.records.get("deals", south, who["admin"])["stage"] == "negotiation"


def move(web, record_id, to, version=None, back=""):
    data = {"id": record_id, "to": to, "back": back}
    if version is not None:
        data["version"] = str(version)
    return web.post("/m/deals/board/move", data=data,
                    headers={"Accept": "application/json", "X-CSRF-Token": web.csrf})


def test_a_move_goes_through_the_record_service_and_refusals_change_nothing(pipeline):
    site, who = pipeline
    admin, ids = who["admin"], who["ids"]
    deal = ids["Northern lights"]
    with client_of(site, "admin") as web:
        done = move(web, deal, "proposal", version=1)
        assert done.status_code == 200
        body = done.json()
        assert body["ok"] and body["version"] == 2
        assert body["columns"]["proposal"] == {"count": "2", "n": 2, "face": "$3,500.50",
                                               "weighted": "$1,100.20"}
        assert body["columns"]["prospecting"]["count"] == "1"
        log = site.records.change_log("deals", deal)
        assert ("stage", "prospecting", "proposal") in \
            [(e["field"], e["old_value"], e["new_value"]) for e in log]
        # a stale card (the board showed version 1)
        stale = move(web, deal, "negotiation", version=1)
        assert stale.status_code == 409
        assert stale.json()["error"] == ("Someone else changed this Deal since the board was "
                                         "shown. Reload the board and try again.")
        # a value that is no column (hidden, or unknown)
        for value in ("lost", "nowhere"):
            refused = move(web, deal, value, version=2)
            assert refused.status_code == 422
            assert refused.json()["error"] == f"'{value}' is not a column of this board."
        # a record the service refuses: its required name was emptied behind its back
        table = site.records.table(site.registry.module("deals"))
        with site.engine.begin() as conn:
            conn.execute(table.update().where(table.c.id == ids["South pole"])
                         .values(name=None))
        invalid = move(web, ids["South pole"], "won")
        assert invalid.status_code == 422
        assert invalid.json()["error"] == "Not moved: Deal name: is required"
        # without JavaScript: the card's form, back to the board with a message
        form = web.post("/m/deals/board/move", data={"_csrf": web.csrf, "id": deal,
                                                     "to": "won", "version": "2",
                                                     "back": "q=north"})
        assert form.status_code == 200 and form.url.path == "/m/deals/board"
        assert form.url.query == b"q=north" and "Moved." in form.text
    with client_of(site, "rita") as web:  # read-only: sees the board, may not move
        page = web.get("/m/deals/board")
        assert "Northern lights" in page.text and "data-move-form" not in page.text
        refused = move(web, deal, "negotiation")
        assert refused.status_code == 403
        assert refused.json() == {"ok": False, "error": "You may not change this Deal."}
        no_csrf = web.post("/m/deals/board/move", data={"id": deal, "to": "proposal"},
                           headers={"Accept": "application/json"})
        assert no_csrf.status_code == 403
    record = site.records.get("deals", deal, admin)
    assert (record["stage"], record["version"]) == ("won", 3)
    assert site.records.get("deals", ids["South pole"], admin)["stage"] == "negotiation"


def test_a_french_reader_gets_the_board_in_french(pipeline):
    site, who = pipeline
    install_folder(site, "lang_fr")
    users.save_preferences(site, who["tess"].id, {"language": "fr"})
    with client_of(site, "tess") as web:
        page = web.get("/m/deals/board")
        for words in ("Vue tableau", "Vue liste", "Valeur nominale", "Pondéré", "Déplacer vers…"):
            assert words in page.text
        face = columns_of(page.text)["prospecting"]["face"].replace("\u202f", " ") \
            .replace("\xa0", " ")
        assert face == "1 000,00 $US"
        refused = move(web, who["ids"]["South pole"], "won")
        assert refused.json()["error"] == \
            "Cet enregistrement (Deal) n’existe pas, ou vous ne pouvez pas le voir."
