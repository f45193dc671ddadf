"""Documents as users meet them (issue 22, "Documents"): a PDF uploaded three times is three
revisions, each downloadable, the latest's text in ``file_text``; a user who may not see a
record the document is related to gets 404 on its files; a file dropped on an account's
Documents subpanel becomes a document with the admin's defaults; and the bad inputs — a
100 MB upload over the limit, a type nobody reads, a program — stored or refused as the
plugin says, nothing kept on a refusal."""
import io

import pytest
import sqlalchemy as sa

from core.apps.admin import access_admin as aa
from core.kernel.errors import ValidationError
from core.kernel.records import SYSTEM_USER, Query
from core.kernel.users import create_user
from core.testing import signed_in
from plugins.documents.demo import pdf

PASSWORD = "correct horse battery"
PROGRAM = b"MZ\x90\x00" + b"\0" * 200


@pytest.fixture
def acme(site, admin):
    return site.records.create("accounts", {"name": "Acme Corporation"}, admin)


def stored_files(site) -> list:
    folder = site.folder / "files"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def revisions(site, admin, doc_id) -> list[dict]:
    return site.records.list("document_revisions", admin, Query(
        filters={"document_id": doc_id}, sort="revision"))


def create_with_file(web, name, data, **fields):
    return web.post("/m/library_documents/new", data={"_csrf": web.csrf, "name": "Price list",
                                               "status": "active", **fields},
                    files={"file": (name, data, "application/pdf")}, follow_redirects=False)


def document_id(response) -> str:
    assert response.status_code == 303, response.text
    return response.headers["location"].split("/")[-1].split("?")[0]


def test_three_revisions_of_a_pdf_each_downloadable_latest_text_searchable(site, admin, web):
    texts = ["Widgets cost ten euros.", "Widgets cost eleven euros.",
             "Widgets cost twelve euros and sprockets three."]
    files = [pdf(t) for t in texts]
    doc_id = document_id(create_with_file(web, "prices.pdf", files[0], change_note="First"))
    for number, data in enumerate(files[1:], start=2):
        answer = web.post(f"/m/library_documents/{doc_id}/revisions",
                          data={"_csrf": web.csrf, "change_note": f"Revision {number}"},
                          files={"file": ("prices.pdf", data, "application/pdf")},
                          follow_redirects=False)
        assert answer.status_code == 303, answer.text
    doc = site.records.get("library_documents", doc_id, admin)
    assert doc["revision"] == 3 and doc["file_name"] == "prices.pdf"
    assert doc["file_mime_type"] == "application/pdf" and doc["file_size"] == len(files[2])
    assert "twelve euros and sprockets" in doc["file_text"] and "eleven" not in doc["file_text"]
    revs = revisions(site, admin, doc_id)
    assert [r["revision"] for r in revs] == [1, 2, 3]
    assert [r["change_note"] for r in revs] == ["First", "Revision 2", "Revision 3"]
    assert all(r["uploaded_by"] == admin.id for r in revs)
    for rev, data in zip(revs, files, strict=True):
        got = web.get(f"/m/document_revisions/{rev['id']}/file/file")
        assert got.status_code == 200 and got.content == data
        assert got.headers["content-type"] == "application/octet-stream"
    latest = web.get(f"/m/library_documents/{doc_id}/file/file")
    assert latest.status_code == 200 and latest.content == files[2]
    page = web.get(f"/m/library_documents/{doc_id}").text
    assert "Revision 3" in page and all(f"/m/document_revisions/{r['id']}/file/file" in page
                                        for r in revs)
    assert len(stored_files(site)) == 3  # every revision's file kept
    # the latest file's text is searchable (the global search), an earlier one's no more
    found = web.get("/search.json", params={"q": "sprockets",
                                            "module": "library_documents"}).json()
    assert [h["id"] for h in found["hits"]] == [doc_id]
    assert "<mark>sprockets</mark>" in found["hits"][0]["snippet"]
    assert web.get("/search.json", params={"q": "eleven"}).json()["hits"] == []


def test_revisions_are_not_changed_and_owned_fields_follow_the_file(site, admin, web):
    doc_id = document_id(create_with_file(web, "a.txt", b"hello world"))
    [rev] = revisions(site, admin, doc_id)
    with pytest.raises(ValidationError):
        site.records.update("document_revisions", rev["id"], {"change_note": "forged"}, admin)
    with pytest.raises(ValidationError):
        site.records.create("document_revisions", {"name": "x", "document_id": doc_id,
                                                   "revision": 9}, admin)
    site.records.update("library_documents", doc_id, {"file_text": "forged", "revision": 7,
                                              "file": None}, admin)
    doc = site.records.get("library_documents", doc_id, admin)
    assert doc["file_text"] == "hello world" and doc["revision"] == 1 and doc["file"]
    # another document's file key (an import could name one) is not taken, nor removed
    with pytest.raises(ValidationError) as refused:
        site.records.create("library_documents", {"name": "Copy", "file": doc["file"]}, admin)
    assert "file" in refused.value.errors
    assert web.get(f"/m/library_documents/{doc_id}/file/file").content == b"hello world"


def test_text_of_docx_odt_and_plain_text(site, admin, web):
    import docx
    from odf.opendocument import OpenDocumentText
    from odf.text import H, P

    word = docx.Document()
    word.add_paragraph("Quarterly report for Zürich")
    table = word.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "Revenue", "1200"
    data = io.BytesIO()
    word.save(data)
    odt = OpenDocumentText()
    odt.text.addElement(H(outlinelevel=1, text="Réunion"))
    odt.text.addElement(P(text="Procès-verbal de la réunion"))
    odt_data = io.BytesIO()
    odt.write(odt_data)
    cases = [("report.docx", data.getvalue(), "Quarterly report for Zürich", "Revenue\t1200",
              "wordprocessingml"),
             ("minutes.odt", odt_data.getvalue(), "Réunion", "Procès-verbal",
              "opendocument.text"),
             ("notes.txt", "Naïve café notes".encode(), "Naïve café", "notes", "text/plain")]
    for name, content, first, second, kind in cases:
        doc = site.records.get("library_documents", document_id(create_with_file(web, name, content)),
                               admin)
        assert first in doc["file_text"] and second in doc["file_text"], (name, doc)
        assert kind in doc["file_mime_type"]


def test_an_unknown_type_is_stored_without_text_and_a_program_is_refused(site, admin, web):
    blob = bytes(range(256)) * 40
    doc_id = document_id(create_with_file(web, "drawing.xyz", blob))
    doc = site.records.get("library_documents", doc_id, admin)
    assert doc["file_mime_type"] == "application/octet-stream" and doc["file_text"] is None
    assert web.get(f"/m/library_documents/{doc_id}/file/file").content == blob
    before = stored_files(site)
    for name, data in (("invoice.pdf", PROGRAM), ("setup.bat", b"del *.*"),
                       ("run.sh", b"#!/bin/sh\nrm -rf /")):
        refused = create_with_file(web, name, data)
        assert refused.status_code in (400, 422) and "is a program" in refused.text, name
    assert site.records.count("library_documents", admin) == 1 and stored_files(site) == before
    refused = web.post(f"/m/library_documents/{doc_id}/revisions", data={"_csrf": web.csrf},
                       files={"file": ("tool.exe", PROGRAM, "application/pdf")},
                       follow_redirects=False)
    assert refused.status_code == 303
    assert "is a program" in web.get(f"/m/library_documents/{doc_id}").text
    assert site.records.get("library_documents", doc_id, admin)["revision"] == 1
    assert stored_files(site) == before


def test_a_100_mb_upload_over_the_limit_is_refused_and_nothing_is_stored(
        site, admin, web, acme, tmp_path):
    doc_id = document_id(create_with_file(web, "a.txt", b"first"))
    before = stored_files(site)
    big = tmp_path / "video.mov"
    with open(big, "wb") as handle:  # 100 MB on disk, sparse: the test holds none of it
        handle.truncate(100 * 2**20)
    with open(big, "rb") as handle:
        refused = web.post(f"/m/library_documents/{doc_id}/revisions", data={"_csrf": web.csrf},
                           files={"file": ("video.mov", handle, "video/quicktime")},
                           headers={"Accept": "application/json"})
    assert refused.status_code == 413
    assert "larger than 20 MB" in refused.json()["error"]
    with open(big, "rb") as handle:
        dropped = web.post(f"/m/accounts/{acme['id']}/drop-document", data={"_csrf": web.csrf},
                           files={"file": ("video.mov", handle, "video/quicktime")})
    assert dropped.status_code == 413 and "larger than 20 MB" in dropped.text
    with open(big, "rb") as handle:  # the generic form: its own 20 MB cap, read no further
        formed = create_with_file(web, "video.mov", handle)
    assert formed.status_code in (400, 422) and "larger than 20" in formed.text
    assert stored_files(site) == before and site.records.count("library_documents", admin) == 1
    # the limit is the admin's: a smaller one refuses a smaller file, by its bytes
    site.set_setting("documents", {"max_upload_mb": 0.001, "default_status": "draft"})
    small = web.post(f"/m/accounts/{acme['id']}/drop-document", data={"_csrf": web.csrf},
                     files={"file": ("two-kb.txt", b"x" * 2048, "text/plain")},
                     headers={"Accept": "application/json"})
    assert small.status_code in (400, 413) and "larger than 0.001 MB" in small.json()["error"]
    assert stored_files(site) == before


def test_a_file_dropped_on_the_documents_subpanel_becomes_a_document(site, admin, web, acme):
    site.set_setting("documents", {"max_upload_mb": 20, "default_category": "sales",
                                   "default_status": "active"})
    page = web.get(f"/m/accounts/{acme['id']}").text
    assert 'id="sub-documents"' in page and "/static/documents.js" in page
    assert f"/m/accounts/{acme['id']}/drop-document" in page
    answer = web.post(f"/m/accounts/{acme['id']}/drop-document",
                      data={"_csrf": web.csrf}, headers={"Accept": "application/json"},
                      files=[("file", ("Contract.pdf", pdf("Signed contract"), "image/png")),
                             ("file", ("notes.txt", b"call notes", "text/plain"))])
    assert answer.status_code == 200, answer.text
    ids = answer.json()["documents"]
    docs = [site.records.get("library_documents", i, admin) for i in ids]
    assert [d["name"] for d in docs] == ["Contract.pdf", "notes.txt"]
    assert all(d["category"] == "sales" and d["status"] == "active" and d["revision"] == 1
               for d in docs)
    assert "Signed contract" in docs[0]["file_text"]
    related = site.records.related("accounts", acme["id"], "documents", admin)
    assert sorted(r["id"] for r in related) == sorted(ids)
    rows = web.get(f"/m/accounts/{acme['id']}/subpanel/documents?fragment=1").text
    assert "Contract.pdf" in rows and "notes.txt" in rows
    # without JavaScript: the card's form posts the same and comes back to the record
    plain = web.post(f"/m/accounts/{acme['id']}/drop-document", data={"_csrf": web.csrf},
                     files={"file": ("plain.txt", b"plain", "text/plain")},
                     follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"].endswith("#sub-documents")
    assert len(site.records.related("accounts", acme["id"], "documents", admin)) == 3
    # a module that does not opt in has no drop
    assert web.post("/m/products/x/drop-document", data={"_csrf": web.csrf},
                    files={"file": ("a.txt", b"a", "text/plain")}).status_code == 404


def test_a_user_who_may_not_see_the_parent_gets_404_on_the_file(site, admin, web, acme):
    answer = web.post(f"/m/accounts/{acme['id']}/drop-document",
                      data={"_csrf": web.csrf}, headers={"Accept": "application/json"},
                      files={"file": ("salaries.txt", b"secret numbers", "text/plain")})
    [doc_id] = answer.json()["documents"]
    [rev] = revisions(site, admin, doc_id)
    urls = [f"/m/library_documents/{doc_id}/file/file", f"/m/document_revisions/{rev['id']}/file/file"]
    tess = create_user(site, "tess", PASSWORD)
    with signed_in(site, "tess", PASSWORD) as other:  # she sees documents and accounts
        assert all(other.get(u).content == b"secret numbers" for u in urls)
        assert other.get(f"/m/library_documents/{doc_id}/file/nothing").status_code == 404
        assert other.get("/m/library_documents/nope/file/file").status_code == 404
    web.post(f"/m/accounts/{acme['id']}/deny", data={"_csrf": web.csrf, "who_user": tess.id})
    with signed_in(site, "tess", PASSWORD) as other:
        assert other.get(f"/m/accounts/{acme['id']}").status_code == 404
        assert other.get(f"/m/library_documents/{doc_id}").status_code == 200  # the record: hers
        for url in urls:
            denied = other.get(url)
            assert denied.status_code == 404 and b"secret numbers" not in denied.content
        added = other.post(f"/m/library_documents/{doc_id}/revisions", data={"_csrf": other.csrf},
                           files={"file": ("x.txt", b"x", "text/plain")})
        assert added.status_code == 404
        dropped = other.post(f"/m/accounts/{acme['id']}/drop-document",
                             data={"_csrf": other.csrf},
                             files={"file": ("x.txt", b"x", "text/plain")})
        assert dropped.status_code == 404
    # a document she may not see at all: the same 404
    secret = site.records.create("library_documents", {"name": "Board minutes", "status": "draft"},
                                 SYSTEM_USER)
    aa.save_settings(site, {"inherit_created_by": False})
    role = aa.create_role(site, "Own documents")
    rights = ("view", "list", "edit", "delete", "export", "report")
    aa.set_role_rules(site, role, {"library_documents": ("enabled", {a: "owner" for a in rights})})
    aa.set_user_roles(site, tess.id, [role])
    with signed_in(site, "tess", PASSWORD) as other:
        assert other.get(f"/m/library_documents/{secret['id']}/file/file").status_code == 404
    assert web.get(urls[0]).content == b"secret numbers"  # the admin still may


def test_the_admin_settings_page(site, admin, web):
    page = web.get("/admin/documents")
    assert page.status_code == 200 and "Largest file (MB)" in page.text
    bad = web.post("/admin/documents", data={"_csrf": web.csrf, "max_upload_mb": "lots",
                                             "default_category": "nope",
                                             "default_status": "active"})
    assert bad.status_code == 422 and "is not a size in MB" in bad.text
    assert site.settings.get("documents") is None
    good = web.post("/admin/documents", data={"_csrf": web.csrf, "max_upload_mb": "5",
                                              "default_category": "legal",
                                              "default_status": "active"},
                    follow_redirects=False)
    assert good.status_code == 303
    assert site.settings.get("documents") == {"max_upload_mb": 5, "default_category": "legal",
                                              "default_status": "active"}
    tess = create_user(site, "tess", PASSWORD)
    assert tess
    with signed_in(site, "tess", PASSWORD) as other:
        assert other.get("/admin/documents").status_code == 403


def test_demo_documents(site, admin):
    import random

    from plugins.documents import demo

    demo.load(site, admin, random.Random(1))
    price = site.records.list("library_documents", admin, Query(filters={"name": "Price list"}))[0]
    assert price["revision"] == 3 and "sprockets" in price["file_text"]
    assert sa is not None
