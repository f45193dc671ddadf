"""Admin → Plugins: the list with versions, states and requirements; Disable/Enable are
administrator-only, CSRF-checked posts, refused with the site's reason."""
import re

from starlette.testclient import TestClient

from core.kernel.users import create_user
from core.web.app import create_app

PASSWORD = "correct horse battery"


def signed_in(site, username: str) -> TestClient:
    client = TestClient(create_app(site))
    login = client.get("/login")
    csrf = re.search(r'name="_csrf" value="([^"]+)"', login.text).group(1)
    response = client.post("/login", data={"_csrf": csrf, "username": username,
                                           "password": PASSWORD})
    client.csrf = re.search(r'name="_csrf" value="([^"]+)"', response.text).group(1)
    return client


def test_admins_list_disable_and_enable_plugins(site):
    create_user(site, "admin", PASSWORD, is_admin=True)
    client = signed_in(site, "admin")
    page = client.get("/admin/plugins")
    assert page.status_code == 200
    row = re.search(r'<tr data-plugin="quotes">(.*?)</tr>', page.text, re.DOTALL).group(1)
    assert "0.1.0" in row and "Enabled" in row and "accounts &gt;=0.1" in row
    assert "/admin/plugins" in client.get("/admin").text
    # refused while required: the reason names the plugins that need it
    refused = client.post("/admin/plugins/products/disable", data={"_csrf": client.csrf})
    assert "is required by invoices, purchases, quotes, sales_orders" in refused.text
    assert "products" in {p.name for p in site.plugins}
    done = client.post("/admin/plugins/purchases/disable", data={"_csrf": client.csrf})
    assert "Plugin purchases disabled" in done.text
    assert "bills" not in site.registry.modules
    assert client.get("/m/bills").status_code == 404
    row = re.search(r'<tr data-plugin="purchases">(.*?)</tr>', done.text, re.DOTALL).group(1)
    assert "Disabled" in row and "/admin/plugins/purchases/enable" in row
    client.post("/admin/plugins/purchases/enable", data={"_csrf": client.csrf})
    assert client.get("/m/bills").status_code == 200


def test_only_administrators_with_the_form_token_may_change_plugins(site):
    create_user(site, "dana", PASSWORD)
    create_user(site, "admin", PASSWORD, is_admin=True)
    dana = signed_in(site, "dana")
    assert dana.get("/admin/plugins").status_code == 403
    assert dana.post("/admin/plugins/purchases/disable",
                     data={"_csrf": dana.csrf}).status_code == 403
    admin = signed_in(site, "admin")
    assert admin.post("/admin/plugins/purchases/disable", data={}).status_code == 403
    assert "purchases" in {p.name for p in site.plugins}
