"""Converting with an opportunity, against the opportunities plugin's contract (name,
account, amount, close date, stage). On a site without the shipped opportunities plugin,
a stand-in of that contract (stub_opportunities) plays its part."""
import pytest

from core.kernel.errors import ValidationError
from core.kernel.plugins import SHIPPED_PLUGINS
from core.kernel.site import Site, create_site
from core.kernel.users import create_user
from core.testing import ADMIN_PASSWORD, signed_in
from plugins.leads import convert
from plugins.leads.tests.test_convert import made, new_lead


@pytest.fixture
def opp_site(database_url, tmp_path):
    from plugins.leads.tests.stub_opportunities import plugin as stub

    shipped = (SHIPPED_PLUGINS / "opportunities" / "plugin.py").is_file()
    site = Site(create_site(tmp_path / "site", database_url),
                extra_plugins=[] if shipped else [stub])
    site.sync_schema()
    yield site
    site.close()


def test_an_opportunity_is_made_in_the_same_transaction(opp_site):
    site = opp_site
    admin = create_user(site, "admin", ADMIN_PASSWORD, is_admin=True)
    assert "opportunities" in site.registry.module("leads").relationships
    lead = new_lead(site, admin)
    stage = site.registry.choices(site.registry.module("opportunities")
                                  .fields["sales_stage"])[0][0]
    with pytest.raises(ValidationError) as caught:  # a bad amount: nothing at all is made
        convert.convert(site, admin, lead["id"], opportunity={
            "name": "Rockets", "amount": "lots", "date_closed": "2031-03-31",
            "sales_stage": stage})
    assert "opportunity.amount" in caught.value.errors
    assert made(site, admin) == (0, 0) and site.records.count("opportunities", admin) == 0
    assert site.records.get("leads", lead["id"], admin)["status"] == "new"

    with signed_in(site, "admin") as web:
        form = web.get(f"/leads/{lead['id']}/convert").text
        assert "Create an opportunity" in form and f'<option value="{stage}"' in form
        done = web.post(f"/leads/{lead['id']}/convert", data={
            "_csrf": web.csrf, "account_mode": "new", "account_name": "Acme Rockets",
            "create_opportunity": "1", "opportunity_name": "Acme Rockets - 40 seats",
            "amount": "12500", "date_closed": "2031-03-31", "sales_stage": stage},
            follow_redirects=False)
        assert done.status_code == 303, done.text
    lead = site.records.get("leads", lead["id"], admin)
    [opportunity] = site.records.related("leads", lead["id"], "opportunities", admin)
    opportunity = site.records.get("opportunities", opportunity["id"], admin)
    assert opportunity["lead_id"] == lead["id"]
    assert (opportunity["name"], str(opportunity["date_closed"]), opportunity["sales_stage"],
            opportunity["account_id"], opportunity["lead_source"]) == (
        "Acme Rockets - 40 seats", "2031-03-31", stage, lead["converted_account_id"],
        "trade_show")
    assert float(opportunity["amount"]) == 12500
    assert made(site, admin) == (1, 1)
