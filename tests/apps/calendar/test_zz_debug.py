import datetime as dt, json
import pytest
from tests.browser import log_in
from tests.apps.calendar.test_browser_agenda import setup
pytestmark = pytest.mark.browser

def test_debug(page, server, site, admin, viewport):
    if viewport != "desktop": return
    setup(site, admin)
    log_in(page)
    page.goto("/calendar/agenda?date=2027-06-29")
    page.wait_for_timeout(1500)
    print("EVENTS", page.evaluate("JSON.stringify(document.getElementById('agenda').calendar.getEvents().map(e=>[e.title,e.display,e.classNames,e.start]))"))
    print("HTML", page.locator("#agenda").inner_html()[:6000])
