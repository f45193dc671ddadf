"""The import wizard over HTTP as a user clicks through it: upload, the mapping screen with
its samples and saved mappings, the job, the summary with skipped rows as CSV, Manage
Imported Data's reject; and ``crbm import`` on the command line."""
from __future__ import annotations

import csv
import io
import re

from click.testing import CliRunner

from core import jobs
from core.kernel.records import Query

CSV = ("account name,Billing Address: City,Type,Employees,Unused\n"
       "Acme,Paris,Customer,12,x\nGlobex,Lyon,Nope,3,y\nInitech,Nice,partner,7,z\n")


def _upload(web, module="accounts", content=CSV, name="accounts.csv", **fields):
    return web.post(f"/import/{module}/start", data={"_csrf": web.csrf, "source": "custom",
                                                     "locale": "fr_FR", **fields},
                    files={"file": (name, content.encode(), "text/csv")},
                    follow_redirects=False)


def test_upload_map_import_then_reject(site, web, admin):
    from core.apps.imports import mapping
    mapping.sources.cache_clear()
    response = _upload(web)
    assert response.status_code == 303
    map_url = response.headers["location"]
    page = web.get(map_url)
    assert page.status_code == 200
    html = page.text
    # labels map automatically, whatever their case; two sample values per column; the
    # unknown column is left out
    assert re.search(r'name="column_0">.*?<option value="name" selected', html, re.DOTALL)
    assert re.search(r'name="column_1">.*?value="billing_address_city" selected', html, re.DOTALL)
    assert "Paris" in html and "Lyon" in html and "Nice" not in html
    assert " selected" not in html.split('name="column_4"')[1].split("</select>")[0]
    form = {"_csrf": web.csrf, "step": "import", "source": "custom", "locale": "fr_FR",
            "column_0": "name", "column_1": "billing_address_city", "column_2": "account_type",
            "column_3": "employees", "column_4": "", "duplicates": "import",
            "save_as": "Fichier client"}
    response = web.post(map_url, data=form, follow_redirects=False)
    assert response.status_code == 303
    session_url = response.headers["location"]
    assert "Importing" in web.get(session_url).text  # queued: the progress bar
    jobs.run_due_jobs(site)
    summary = web.get(session_url).text
    assert 'data-count="created">2<' in summary and 'data-count="skipped">1<' in summary
    assert "&#39;Nope&#39; is not one of the list&#39;s values" in summary
    skipped = list(csv.reader(io.StringIO(web.get(f"{session_url}/skipped.csv").text)))
    assert skipped[0] == ["Line", "account name", "Billing Address: City", "Type",
                          "Employees", "Unused", "Error"]
    assert skipped[1][:3] == ["3", "Globex", "Lyon"] and "Nope" in skipped[1][-1]
    names = sorted(r["name"] for r in site.records.list("accounts", admin, Query(limit=None)))
    assert names == ["Acme", "Initech"]

    # the saved mapping is offered next time, and maps a file with columns reordered
    again = _upload(web, content="Type,account name\ncustomer,Hooli\n")
    html = web.get(again.headers["location"] + "&mapping=Fichier+client").text
    assert re.search(r'name="column_1">.*?<option value="name" selected', html, re.DOTALL)

    session_id = session_url.rsplit("/", 1)[1]
    manage = web.get(f"/imports/{session_id}").text
    assert "Acme" in manage and "Initech" in manage
    response = web.post(f"/imports/{session_id}/reject", data={"_csrf": web.csrf},
                        follow_redirects=False)
    assert response.status_code == 303
    assert site.records.list("accounts", admin, Query(limit=None)) == []
    assert "Rejected" in web.get("/imports").text


def test_bad_uploads_are_refused_on_the_page(site, web):
    response = _upload(web, content="")
    assert response.status_code == 422 and "The file is empty." in response.text
    response = _upload(web, content="Account name\n")
    assert response.status_code == 422 and "header but no rows" in response.text
    site.set_setting("imports_max_mb", 1)
    response = web.post("/import/accounts/start", content=b"x" * 10,
                        headers={"content-length": str(600 * 2**20),
                                 "content-type": "multipart/form-data; boundary=zz"},
                        follow_redirects=False)
    assert response.status_code == 303 and "too_big=600" in response.headers["location"]
    page = web.get(response.headers["location"])
    assert page.status_code == 413 and "files up to 1 MB" in page.text


def test_the_modules_come_in_dependency_order(web):
    html = web.get("/import").text
    order = re.findall(r'data-module="([a-z_]+)"', html)
    assert order.index("accounts") < order.index("contacts") < order.index("calls")
    assert order.index("accounts") < order.index("opportunities")
    assert order.index("product_categories") < order.index("products")


def test_the_command_line_imports_with_a_progress_bar_and_exit_codes(site, admin, tmp_path):
    from cli import main
    path = tmp_path / "contacts.csv"
    path.write_text("First name,Last name,Account,Email\n"
                    "Ann,Lee,Umbrella,ann@u.example\nNo,,Umbrella,no@u.example\n")
    runner = CliRunner()
    dry = runner.invoke(main, ["--site", str(site.folder), "import", "contacts", str(path),
                               "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "1 would be created" in dry.output and "line 3:" in dry.output
    assert site.records.list("contacts", admin, Query(limit=None)) == []
    done = runner.invoke(main, ["--site", str(site.folder), "import", "contacts", str(path)])
    assert done.exit_code == 0, done.output
    assert "1 were created" in done.output and "Import session" in done.output
    assert [c["name"] for c in site.records.list("contacts", admin, Query(limit=None))] == \
        ["Ann Lee"]
    refused = runner.invoke(main, ["--site", str(site.folder), "import", "nosuchmodule",
                                   str(path)])
    assert refused.exit_code == 1 and "no module named" in refused.output
