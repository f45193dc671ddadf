"""The home dashboard in Chromium, on a phone and a desktop: the dashboard shows its charts
(ECharts, SVG) with their tables, dashlets are rearranged (dragged with the mouse on a
desktop; on a phone with the dashlet menu's Move down, the tap and keyboard alternative)
and the order is saved, and a click on a chart's bar opens the list of exactly the
records behind it. Screenshots: dashboard-phone, dashboard-desktop."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from dateutil.relativedelta import relativedelta
from playwright.sync_api import expect

from core.apps.calendar.settings import calendar_settings
from core.kernel.users import create_user
from plugins.dashboards import store
from tests import browser as helpers
from tests.apps.board.test_browser_board import touch_drag
from tests.browser import PASSWORD, log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)


def demo(site, admin) -> dict:
    """A small sales team's data: deals in every open stage, tasks, cases, leads, a call."""
    rob = create_user(site, "rob", PASSWORD)
    today = calendar_settings(site).today()
    first = today.replace(day=1)
    accounts = site.records.create_many("accounts", [
        {"name": n} for n in ("Acme Corp", "Globex", "Initech", "Umbrella", "Stark Industries")],
        admin)
    deals = [
        ("Acme renewal", 0, "48000", "prospecting", 0, "web_site", admin),
        ("Globex rollout", 1, "125000", "qualification", 1, "partner", admin),
        ("Initech upgrade", 2, "32000", "needs_analysis", 0, "cold_call", admin),
        ("Umbrella pilot", 3, "18500", "value_proposition", 2, "trade_show", admin),
        ("Stark expansion", 4, "210000", "proposal_price_quote", 3, "partner", admin),
        ("Acme services", 0, "27000", "negotiation_review", 1, "web_site", admin),
        ("Globex support", 1, "15000", "prospecting", 4, "email", rob),
        ("Initech licences", 2, "64000", "perception_analysis", 5, "web_site", rob),
        ("Umbrella won", 3, "40000", "closed_won", 0, "web_site", admin),
        ("Stark lost", 4, "90000", "closed_lost", 0, "cold_call", admin),
    ]
    ids = site.records.create_many("opportunities", [
        {"name": name, "account_id": accounts[a], "amount": amount, "sales_stage": stage,
         "date_closed": first + relativedelta(months=m) + dt.timedelta(days=3),
         "lead_source": source, "assigned_user_id": owner.id}
        for name, a, amount, stage, m, source, owner in deals], admin)
    site.records.create_many("tasks", [
        {"name": n, "status": "not_started", "priority": p,
         "date_due": today + dt.timedelta(days=d)}
        for n, p, d in (("Send the Stark proposal", "high", 0), ("Call Globex back", "medium", 1),
                        ("Prepare the QBR deck", "low", 4), ("Renew Acme NDA", "medium", -2))],
        admin)
    site.records.create_many("cases", [
        {"name": n, "account_id": accounts[a], "status": s, "priority": p}
        for n, a, s, p in (("Login fails after update", 0, "new", "p1"),
                           ("Invoice shows wrong VAT", 1, "assigned", "p2"),
                           ("Export times out", 2, "pending", "p3"))], admin)
    site.records.create_many("leads", [
        {"last_name": f"Lead {i}", "status": s}
        for i, s in enumerate(["new"] * 6 + ["assigned"] * 4 + ["in_process"] * 3 +
                              ["recycled"] * 1 + ["dead"] * 2)], admin)
    start = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(14, 30), dt.UTC)
    site.records.create("calls", {"name": "Discovery call with Initech", "status": "planned",
                                  "date_start": start, "direction": "outbound"}, admin)
    this_month = {ids[i] for i, d in enumerate(deals) if d[4] == 0 and
                  d[3] not in ("closed_won", "closed_lost")}
    return {"first": first, "this_month": this_month}


def test_the_home_dashboard(page, site, admin, viewport, server):
    data = demo(site, admin)
    log_in(page)
    page.goto("/")
    expect(page.get_by_role("heading", name="Welcome, admin")).to_be_visible()
    stage = page.locator("[data-type='opportunities.pipeline_by_stage']")
    expect(stage.get_by_role("heading", name="My pipeline by stage")).to_be_visible()
    expect(stage.locator(".dash-chart svg")).to_be_visible()  # ECharts drew it, in SVG
    expect(stage.locator("table.dash-table")).to_contain_text("$125,000")
    expect(page.locator("[data-type='activities.my_open_tasks']")).to_contain_text(
        "Send the Stark proposal")
    expect(page.locator("[data-type='cases.my_open']")).to_contain_text("Login fails")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, "dashboard", viewport)

    # rearrange: the second dashlet goes before the first
    grid = page.locator("[data-dash]")
    ids = grid.locator("[data-dashlet]").evaluate_all("els => els.map(e => e.dataset.dashlet)")
    moving = grid.locator(f"[data-dashlet='{ids[1]}']")
    if viewport == "phone":  # a finger on the dashlet's grip (elsewhere it scrolls)
        touch_drag(page, moving.locator(".dashlet-grip"),
                   grid.locator(f"[data-dashlet='{ids[0]}'] .dashlet-head h2"))
    else:
        moving.locator(".dashlet-head h2").drag_to(
            grid.locator(f"[data-dashlet='{ids[0]}'] .dashlet-head h2"))
    expect(page.locator("[data-dash-status]")).to_have_text("Order saved.")
    expect(grid.locator("[data-dashlet]").first).to_have_attribute("data-dashlet", ids[1])
    saved = store.dashboards(site, admin)[0]
    assert saved.stored and [d["id"] for d in saved.dashlets][:2] == [ids[1], ids[0]]
    # the tap and keyboard alternative: the dashlet menu's Move down, saved the same way
    first = grid.locator(f"[data-dashlet='{ids[1]}']")
    first.locator(".dashlet-menu summary").click()
    page.evaluate("document.querySelector('[data-dash-status]').hidden = true")
    page.screenshot(path=str(helpers.SCREENSHOTS / f"dashboard-menu-{viewport}.png"))
    first.get_by_role("button", name="Move down").click()
    expect(page.locator("[data-dash-status]")).to_be_visible()
    expect(grid.locator("[data-dashlet]").first).to_have_attribute("data-dashlet", ids[0])
    assert [d["id"] for d in store.dashboards(site, admin)[0].dashlets][:2] == [ids[0], ids[1]]

    page.locator(".dash-add summary").click()  # the chooser of dashlets
    expect(page.get_by_role("button", name="Add “Leads by status”")).to_be_visible()
    page.screenshot(path=str(helpers.SCREENSHOTS / f"dashboard-add-{viewport}.png"))
    page.locator(".dash-add summary").click()

    # a bar of "Pipeline by month": this month's open deals, exactly
    box = page.locator("[data-type='opportunities.pipeline_by_month'] .dash-chart")
    box.scroll_into_view_if_needed()
    x, y = box.evaluate("""el => {
        const chart = echarts.getInstanceByDom(el);
        const value = chart.getOption().series[0].data[0].value;
        return chart.convertToPixel({seriesIndex: 0}, [0, value / 2]);
    }""")
    box.click(position={"x": x, "y": y})
    month = data["first"].strftime("%Y-%m")
    expect(page).to_have_url(re.compile(
        rf"/dashboards/drill/opportunities\.pipeline_by_month/{month}$"))
    rows = page.locator("table.drill tbody tr")
    expect(rows).to_have_count(len(data["this_month"]))
    assert set(rows.evaluate_all("els => els.map(e => e.dataset.id)")) == data["this_month"]
    screenshot(page, "dashboard-drill", viewport)
