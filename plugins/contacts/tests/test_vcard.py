"""vCard as a user meets it: a contact exported as vCard 3.0 and 4.0 and read back by vobject,
the contacts ticked on the list exported in one file, a .vcf imported (linked to its account
by name), re-imported as an update, and bad files — a card with no name, a file that is
not a vCard, an oversize one, a broken line — refused with their line, nothing stored."""
import re

import pytest
import vobject

from core.kernel.records import Query
from core.kernel.users import create_user
from core.testing import signed_in
from plugins.contacts import vcard

PASSWORD = "correct horse battery"


@pytest.fixture
def wile(site, admin):
    acme = site.records.create("accounts", {"name": "Acme Corporation"}, admin)
    return site.records.create("contacts", {
        "salutation": "Mr.", "first_name": "Wile E.", "last_name": "Coyote",
        "account_id": acme["id"], "title": "Chief Engineer", "department": "R&D",
        "email1": "wile@acme.test", "email2": "wile.home@example.com",
        "phone_work": "+1 520 555 0100", "phone_mobile": "+1 520 555 0199",
        "primary_address_street": "1 Desert Road", "primary_address_city": "Tucson",
        "primary_address_state": "AZ", "primary_address_postal_code": "85701",
        "primary_address_country": "USA", "birthdate": "1949-09-17",
        "description": "Orders rockets; pays late, always pays."}, admin)


@pytest.fixture
def fresh_site(tmp_path, synced_sqlite, crbm_extra_plugins):
    """Another site with a database of its own (a SQLite file, whatever the test database)."""
    import shutil

    from core.kernel.site import Site, create_site

    folder = create_site(tmp_path / "fresh", f"sqlite:///{tmp_path / 'fresh.db'}")
    shutil.copyfile(synced_sqlite[0], tmp_path / "fresh.db")
    site = Site(folder, extra_plugins=list(crbm_extra_plugins))
    yield site
    site.close()


FIELDS = ("salutation", "first_name", "last_name", "title", "department", "email1", "email2",
          "phone_work", "phone_mobile", "primary_address_street", "primary_address_city",
          "primary_address_state", "primary_address_postal_code", "primary_address_country",
          "birthdate", "description")


@pytest.mark.parametrize("version", ["3.0", "4.0"])
def test_a_contact_exports_as_vcard_and_reads_back(web, wile, version):
    detail = web.get(f"/m/contacts/{wile['id']}").text
    assert f"/vcard/contacts/{wile['id']}.vcf" in detail
    response = web.get(f"/vcard/contacts/{wile['id']}.vcf?version={version}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/vcard")
    card = vobject.readOne(response.text)
    assert card.version.value == version
    assert card.fn.value == "Wile E. Coyote"
    assert (card.n.value.family, card.n.value.given, card.n.value.prefix) == \
        ("Coyote", "Wile E.", "Mr.")
    assert card.org.value == ["Acme Corporation", "R&D"]
    assert card.title.value == "Chief Engineer"
    assert [e.value for e in card.contents["email"]] == ["wile@acme.test",
                                                          "wile.home@example.com"]
    assert card.adr.value.city == "Tucson" and card.adr.value.code == "85701"
    assert card.bday.value == "1949-09-17"
    assert card.uid.value == f"urn:uuid:{wile['id']}"
    tels = {str(t.value) for t in card.contents["tel"]}
    if version == "4.0":
        assert "tel:+1-520-555-0199" in tels
        assert card.tel.params["VALUE"] == ["uri"]
    else:
        assert "+1 520 555 0199" in tels
    assert web.get(f"/vcard/contacts/{wile['id']}.vcf?version=2.1").status_code == 400


@pytest.mark.parametrize("version", ["3.0", "4.0"])
def test_the_ticked_contacts_export_in_one_file_and_import_into_another_site(
        site, admin, web, wile, fresh_site, version):
    other = site.records.create("contacts", {"first_name": "Road", "last_name": "Runner"},
                                admin)
    listing = web.get("/m/contacts").text
    assert "/vcard/contacts?version=4.0" in listing and "/vcard/import" in listing
    response = web.post(f"/vcard/contacts?version={version}", data={
        "_csrf": web.csrf, "ids": [wile["id"], other["id"]]})
    assert response.status_code == 200
    cards = list(vobject.readComponents(response.text))
    assert sorted(c.fn.value for c in cards) == ["Road Runner", "Wile E. Coyote"]
    # into a fresh site that has the account: the same people, linked to it by name
    boss = create_user(fresh_site, "boss", PASSWORD, is_admin=True)
    acme = fresh_site.records.create("accounts", {"name": "Acme Corporation"}, boss)
    assert vcard.import_vcf(fresh_site, boss, response.content).created == 2
    [copy] = fresh_site.records.list("contacts", boss, Query(filters=[
        ("last_name", "eq", "Coyote")], limit=None))
    assert {f: str(copy[f]) for f in FIELDS} == {f: str(wile[f]) for f in FIELDS}
    assert copy["account_id"] == acme["id"]
    # "all": every contact the list's search matches
    everyone = web.post(f"/vcard/contacts?version={version}", data={
        "_csrf": web.csrf, "all": "1", "q": "Runner"})
    assert [c.fn.value for c in vobject.readComponents(everyone.text)] == ["Road Runner"]
    # back into the same site: the UIDs are ours, so both are updated, none created
    result = vcard.import_vcf(site, admin, response.content)
    assert (result.created, result.updated) == (0, 2)
    assert site.records.count("contacts", admin) == 2


CARD = """BEGIN:VCARD
VERSION:3.0
FN:Marvin Martian
N:Martian;Marvin;;Dr.;
ORG:Acme Corporation;Space
EMAIL;TYPE=INTERNET,WORK:marvin@mars.test
TEL;TYPE=CELL:+33 6 12 34 56 78
TEL;TYPE=WORK,VOICE:+33 1 23 45 67 89
ADR;TYPE=WORK:;;1 Crater Way;Olympus;;75001;France
UID:marvin-1@example.com
END:VCARD
"""


def upload(web, content: bytes, name="contacts.vcf"):
    return web.post("/vcard/import", data={"_csrf": web.csrf},
                    files={"file": (name, content, "text/vcard")})


def test_a_vcf_imports_through_the_page_and_updates_by_uid(site, admin, web, wile):
    assert "Import contacts (vCard)" in web.get("/vcard/import").text
    response = upload(web, CARD.encode())
    assert response.status_code == 200 and 'id="vcard-result"' in response.text
    [marvin] = site.records.list("contacts", admin, Query(filters=[
        ("vcard_uid", "eq", "marvin-1@example.com")], limit=None))
    assert (marvin["first_name"], marvin["last_name"], marvin["salutation"]) == \
        ("Marvin", "Martian", "Dr.")
    assert marvin["account_id"] == wile["account_id"] and marvin["department"] == "Space"
    assert marvin["phone_mobile"] == "+33 6 12 34 56 78"
    assert marvin["primary_address_city"] == "Olympus"
    again = upload(web, CARD.replace("1 Crater Way", "2 Crater Way").encode())
    assert again.status_code == 200
    assert site.records.count("contacts", admin) == 2
    assert site.records.get("contacts", marvin["id"], admin)["primary_address_street"] == \
        "2 Crater Way"


@pytest.mark.parametrize("content, line, reason", [
    (CARD + CARD.replace("FN:Marvin Martian\n", "").replace("N:Martian;Marvin;;Dr.;\n", "")
     .replace("marvin-1", "marvin-2"), 12, "no name (FN or N)"),
    (CARD + "BEGIN:VCARD\nVERSION:3.0\nFN:Half\nthis is not a property\nEND:VCARD\n", 15,
     "cannot be read"),
    (CARD + "BEGIN:VCARD\nVERSION:3.0\nFN:Unfinished\n", 12, "no END:VCARD"),
    ("Name,Email\nWile,wile@acme.test\n", 1, "not a vCard file"),
    (CARD.replace("VERSION:3.0", "VERSION:3.0\nBEGIN:VCALENDAR"), 1, "cannot be read"),
])
def test_bad_cards_are_refused_with_their_line_and_nothing_is_stored(
        site, admin, web, content, line, reason):
    response = upload(web, content.encode())
    assert response.status_code == 422
    error = re.search(r'id="vcard-error">(.*?)</p>', response.text, re.DOTALL).group(1)
    assert f"Line {line}:" in error and reason in error, error
    assert site.records.count("contacts", admin) == 0


def test_binary_and_oversize_files_are_refused(site, admin, web):
    assert "not text" in upload(web, b"\x89PNG\r\n\x1a\n\xff\xfe", "photo.vcf").text
    huge = CARD.replace("END:VCARD", "NOTE:" + "x" * vcard.MAX_BYTES + "\nEND:VCARD")
    response = upload(web, huge.encode())
    assert response.status_code == 422 and "too large" in response.text
    assert site.records.count("contacts", admin) == 0


def test_exports_follow_what_the_user_may_see(site, admin, wile):
    nobody = create_user(site, "nobody", PASSWORD)
    from core.apps.admin import access_admin as aa

    role = aa.create_role(site, "No contacts")
    aa.set_role_rules(site, role, {"contacts": ("disabled", {})})
    aa.set_user_roles(site, nobody.id, [role])
    with signed_in(site, "nobody", PASSWORD) as web:
        assert web.get(f"/vcard/contacts/{wile['id']}.vcf").status_code == 404
        response = web.post("/vcard/contacts?version=3.0", data={
            "_csrf": web.csrf, "ids": [wile["id"]]}, follow_redirects=False)
        assert response.status_code == 303 and "Coyote" not in response.text
        refused = upload(web, CARD.encode())
        assert refused.status_code == 422 and "may not create" in refused.text
    assert site.records.count("contacts", admin) == 1
