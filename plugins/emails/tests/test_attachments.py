"""An email's attachments (plugins/emails/attachments.py): stored with the email in one
transaction, refused whole over the size limit, served only to who may see the email."""
import pytest

from core.apps.admin import access_admin as aa
from core.kernel.errors import ValidationError
from core.kernel.users import create_user
from core.testing import signed_in
from plugins.emails import attachments
from plugins.emails.attachments import File

PASSWORD = "correct horse battery"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


def email_with(site, owner, files):
    with site.engine.begin() as conn:
        email = site.records.create("emails", {"name": "Plans", "assigned_user_id": owner.id},
                                    owner, connection=conn)
        attachments.add(site, conn, email["id"], files)
    return email


def test_files_are_listed_and_served_to_who_may_see_the_email(site, admin):
    email = email_with(site, admin, [File("../../etc/passwd", b"root:x:0:0"),
                                     File("logo.png", PNG, "image/png", "logo@x", inline=True)])
    found = attachments.listed(site, [email["id"]])[email["id"]]
    assert [(f["name"], f["size"], f["inline"]) for f in found] == [
        ("passwd", 10, False), ("logo.png", len(PNG), True)]
    assert attachments.read(site, found[0]) == b"root:x:0:0"
    with signed_in(site, "admin") as web:
        text = web.get(f"/email/{email['id']}/attachments/{found[0]['id']}")
        assert text.status_code == 200 and text.content == b"root:x:0:0"
        assert "attachment" in text.headers["content-disposition"]
        image = web.get(f"/email/{email['id']}/attachments/{found[1]['id']}")
        assert image.headers["content-type"] == "image/png"
    ann = create_user(site, "ann", PASSWORD)
    role = aa.create_role(site, "Own emails")
    aa.set_role_rules(site, role, {"emails": ("enabled", {a: "owner" for a in (
        "view", "list", "edit", "delete", "export", "report")})})
    aa.set_role_users(site, role, add=[ann.id])
    with signed_in(site, "ann", PASSWORD) as web:
        refused = web.get(f"/email/{email['id']}/attachments/{found[0]['id']}")
        assert refused.status_code == 404 and b"root:x" not in refused.content


def test_a_file_over_the_limit_stores_nothing(site, admin):
    site.config["emails"] = {"max_attachment_mb": 1}
    before = sorted((site.folder / "files").rglob("*")) if (site.folder / "files").exists() else []
    with pytest.raises(ValidationError) as refused:
        email_with(site, admin, [File("small.txt", b"ok"), File("big.bin", b"x" * (2**20 + 1))])
    assert "big.bin is larger than 1 MB" in str(refused.value.errors["attachments"])
    after = sorted((site.folder / "files").rglob("*")) if (site.folder / "files").exists() else []
    assert after == before
    assert site.records.count("emails", admin) == 0  # the email went with it
