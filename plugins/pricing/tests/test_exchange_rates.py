"""The scheduler task ``pricing.exchange_rates``: the currencies' rates from the European
Central Bank's daily reference rates, fetched from a real local HTTP server serving a saved
copy of the ECB's file (ecb/eurofxref-daily.xml, in the published ``gesmes:Envelope`` /
``Cube time=`` / ``Cube currency= rate=`` shape, with the 29 currencies the ECB quotes)."""
from __future__ import annotations

import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from core.kernel.records import SYSTEM_USER
from plugins.pricing import exchange_rates
from plugins.pricing.exchange_rates import ExchangeRateError

DAILY = (Path(__file__).parent / "ecb" / "eurofxref-daily.xml").read_bytes()
HEAD = b"""<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01"
 xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref"><Cube>"""
TAIL = b"</Cube></gesmes:Envelope>"


class FeedServer:
    """The ECB's web server, as far as the task sees it: paths answer saved bodies,
    ``/status/<n>`` an HTTP error, ``/stall`` nothing until ``release`` is set."""

    def __init__(self):
        self.bodies: dict[str, bytes] = {"/daily.xml": DAILY}
        self.release = threading.Event()
        self.hits: list[str] = []
        feeds = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                feeds.hits.append(self.path)
                if self.path == "/stall":
                    feeds.release.wait(30)  # the client gives up long before
                    return
                if self.path.startswith("/status/"):
                    status, body = int(self.path.rsplit("/", 1)[1]), b"no"
                elif self.path in feeds.bodies:
                    status, body = 200, feeds.bodies[self.path]
                else:
                    status, body = 404, b"not found"
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def feeds():
    server = FeedServer()
    yield server
    server.close()


def use_feed(site, url: str, enabled: bool = True) -> None:
    site.set_setting(exchange_rates.SETTING, {"enabled": enabled, "url": url})


@pytest.fixture
def currencies(site, admin):
    """The site's currencies, base USD (the default currency of a new site): two the feed
    lacks (ARS; BGN, gone since Bulgaria took the euro), an inactive one, a deleted one."""
    made = {}
    for name, code, rate, active in (("US Dollar", "USD", "1", True), ("Euro", "EUR", "0.92", True),
                                     ("Yen", "JPY", "151.5", True), ("Pound", "GBP", "0.79", True),
                                     ("Franc", "CHF", "0.88", True), ("Peso", "ARS", "870", True),
                                     ("Lev", "BGN", "1.8", True), ("Krona", "SEK", "10.5", False),
                                     ("Rand", "ZAR", "18.2", True)):
        made[code] = site.records.create("currencies", {
            "name": name, "iso_code": code, "exchange_rate": rate, "active": active}, admin)
    site.records.delete("currencies", made["ZAR"]["id"], admin)
    return made


def rates(site) -> dict[str, tuple[Decimal, int]]:
    """iso code -> (rate, version) of every currency row, deleted ones too."""
    table = site.tables.tables["currencies"]
    with site.engine.connect() as conn:
        return {row.iso_code: (row.exchange_rate, row.version) for row in conn.execute(
            sa.select(table.c.iso_code, table.c.exchange_rate, table.c.version))}


def logged(site) -> list[tuple]:
    log = site.tables.tables["crbm_change_log"]
    with site.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(
            sa.select(log.c.record_id, log.c.old_value, log.c.new_value, log.c.changed_by)
            .where(log.c.module == "currencies", log.c.field == "exchange_rate")
            .order_by(log.c.id))]


def test_the_task_is_offered_and_enabled_with_its_setting(site):
    tasks = [t for found in site.hook.crbm_scheduled_tasks(site=site) for t in found or []]
    task = next(t for t in tasks if t.name == "pricing.exchange_rates")
    assert (task.label, task.schedule, task.enabled) == \
        ("Update currency exchange rates", "0 17 * * 1-5", False)
    assert task.run(site, None) == \
        "Exchange rate updates are off (Admin → Order management)."
    use_feed(site, exchange_rates.DEFAULT_URL)
    assert exchange_rates.task(site).enabled is True


def test_rates_are_set_against_the_base_currency_once_per_feed_date(site, currencies, feeds):
    use_feed(site, feeds.base + "/daily.xml")
    before = rates(site)
    result = exchange_rates.run(site, None)
    assert result == "Updated 4 rates (2026-12-04); not in the feed: ARS, BGN"
    after = rates(site)
    # the ECB quotes per euro (USD 1.1642, JPY 180.63...); the base here is USD
    assert {code: after[code][0] for code in ("USD", "EUR", "JPY", "GBP", "CHF")} == {
        "USD": Decimal(1), "EUR": Decimal("0.858959"), "JPY": Decimal("155.153754"),
        "GBP": Decimal("0.749742"), "CHF": Decimal("0.805360")}
    # what the feed lacks, the inactive and the deleted ones are left as they were
    for code in ("ARS", "BGN", "SEK", "ZAR"):
        assert after[code] == before[code]
    # USD was already 1: not written; the others moved one version each, logged as the system
    assert after["USD"][1] == before["USD"][1] and after["EUR"][1] == before["EUR"][1] + 1
    log = logged(site)
    assert len(log) == 4 and {row[3] for row in log} == {SYSTEM_USER.id}
    assert (currencies["EUR"]["id"], "0.920000", "0.858959") in \
        [(r[0], str(Decimal(r[1]).quantize(Decimal("0.000001"))), r[2]) for r in log]

    # the same feed again changes nothing
    assert exchange_rates.run(site, None) == \
        "The rates are up to date (2026-12-04); not in the feed: ARS, BGN"
    assert rates(site) == after and len(logged(site)) == 4


def test_cross_rates_follow_the_default_currency(site, currencies, feeds):
    use_feed(site, feeds.base + "/daily.xml")
    site.set_setting("currency", {"default": "GBP"})
    exchange_rates.run(site, None)
    got = rates(site)
    assert (got["GBP"][0], got["USD"][0], got["EUR"][0], got["JPY"][0]) == \
        (Decimal(1), Decimal("1.333792"), Decimal("1.145672"), Decimal("206.942774"))
    site.set_setting("currency", {"default": "EUR"})  # the ECB's own base
    exchange_rates.run(site, None)
    got = rates(site)
    assert (got["EUR"][0], got["USD"][0], got["JPY"][0]) == \
        (Decimal(1), Decimal("1.164200"), Decimal("180.630000"))


def test_a_base_currency_the_feed_lacks_changes_nothing(site, currencies, feeds):
    use_feed(site, feeds.base + "/daily.xml")
    site.set_setting("currency", {"default": "ARS"})
    before = rates(site)
    with pytest.raises(ExchangeRateError) as caught:
        exchange_rates.run(site, None)
    assert str(caught.value) == ("The exchange rate feed of 2026-12-04 has no rate for the "
                                 "base currency ARS; no rate was changed.")
    assert rates(site) == before


BAD_FEEDS = {
    "/html": (b"<html><body>Service unavailable<br></body>",
              "is not usable: it is not well-formed XML (mismatched tag: line 1, column 37)"),
    "/empty": (b"", ("is not usable: it is not well-formed XML (no element found: line 1, "
                    "column 0)")),
    "/nodate": (HEAD + b"<Cube><Cube currency='USD' rate='1.1642'/></Cube>" + TAIL,
                "is not usable: it has no date (no Cube element with a time attribute)"),
    "/baddate": (HEAD + b"<Cube time='2026-13-04'><Cube currency='USD' rate='1.1'/></Cube>"
                 + TAIL, "is not usable: its date '2026-13-04' is not a date (YYYY-MM-DD)"),
    "/badrate": (DAILY.replace(b"rate='180.63'", b"rate='N/A'"),
                 "is not usable: the rate of JPY, 'N/A', is not a positive number"),
    "/zerorate": (DAILY.replace(b"rate='0.87285'", b"rate='0'"),
                  "is not usable: the rate of GBP, '0', is not a positive number"),
    "/norates": (HEAD + b"<Cube time='2026-12-04'></Cube>" + TAIL,
                 "is not usable: it has no rates for 2026-12-04"),
    "/entities": (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><r>&a;</r>',
                  "is not usable: it declares entities or a DTD, which are not accepted"),
}


@pytest.mark.parametrize("path", sorted(BAD_FEEDS))
def test_a_bad_feed_fails_the_run_naming_the_problem_and_changes_nothing(
        site, currencies, feeds, path):
    body, problem = BAD_FEEDS[path]
    feeds.bodies[path] = body
    use_feed(site, feeds.base + path)
    before = rates(site)
    with pytest.raises(ExchangeRateError) as caught:
        exchange_rates.run(site, None)
    assert str(caught.value) == f"The exchange rate feed {feeds.base}{path} {problem}"
    assert rates(site) == before and logged(site) == []


def test_http_errors_and_timeouts_fail_the_run_and_change_nothing(site, currencies, feeds,
                                                                  monkeypatch):
    before = rates(site)
    use_feed(site, feeds.base + "/status/503")
    with pytest.raises(ExchangeRateError, match=r"answered HTTP 503 Service Unavailable\.$"):
        exchange_rates.run(site, None)
    use_feed(site, feeds.base + "/gone.xml")
    with pytest.raises(ExchangeRateError, match=r"/gone.xml answered HTTP 404 Not Found\.$"):
        exchange_rates.run(site, None)
    # a server that accepts the connection and never answers
    monkeypatch.setattr(exchange_rates, "TIMEOUT", httpx.Timeout(0.2))
    use_feed(site, feeds.base + "/stall")
    with pytest.raises(ExchangeRateError) as caught:
        exchange_rates.run(site, None)
    assert str(caught.value) == (f"The exchange rate feed {feeds.base}/stall did not answer "
                                 "in time (0.2 seconds).")
    feeds.release.set()
    # nothing listening at all
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_port
    closed.server_close()
    use_feed(site, f"http://127.0.0.1:{port}/daily.xml")
    with pytest.raises(ExchangeRateError, match=r"could not be read: .*refused"):
        exchange_rates.run(site, None)
    assert rates(site) == before and logged(site) == []


def test_the_newest_day_of_a_history_file_is_used(site, currencies, feeds):
    feeds.bodies["/hist.xml"] = HEAD + (
        b"<Cube time='2026-12-04'><Cube currency='USD' rate='1.25'/></Cube>"
        b"<Cube time='2026-12-03'><Cube currency='USD' rate='2'/></Cube>") + TAIL
    use_feed(site, feeds.base + "/hist.xml")
    assert exchange_rates.run(site, None) == \
        "Updated 1 rates (2026-12-04); not in the feed: ARS, BGN, CHF, GBP, JPY"
    assert rates(site)["EUR"][0] == Decimal("0.800000")


def test_the_order_management_page_edits_the_setting(site, web, feeds, currencies):
    page = web.get("/admin/orders")
    assert "Update exchange rates from the European Central Bank" in page.text
    assert f'value="{exchange_rates.DEFAULT_URL}"' in page.text
    bad = web.post("/admin/orders", data={"_csrf": web.csrf, "exchange_rates_enabled": "1",
                                          "exchange_rates_url": "ftp://example.com/x.xml"})
    assert bad.status_code == 400
    assert "&#39;ftp://example.com/x.xml&#39; is not a web address" in bad.text
    assert exchange_rates.rate_settings(site).enabled is False  # nothing was saved
    url = feeds.base + "/daily.xml"
    saved = web.post("/admin/orders", data={"_csrf": web.csrf, "exchange_rates_enabled": "1",
                                            "exchange_rates_url": url}, follow_redirects=False)
    assert saved.status_code == 303
    assert exchange_rates.rate_settings(site) == exchange_rates.RateSettings(True, url)
    assert exchange_rates.run(site, None).startswith("Updated 4 rates (2026-12-04)")
