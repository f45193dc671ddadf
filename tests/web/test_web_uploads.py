"""Uploads cannot become pages or scripts on the application's origin (core/web/uploads.py).

The attack this closes: a user uploads ``logo.html`` and ``logo.js``; served as text/html
and text/javascript from the app's origin, the page loads the script (CSP ``script-src
'self'`` allows it) and acts with whoever opens it — an administrator, say. Image fields
take only real raster images; every stored file is served with a type that comes from its
content, ``nosniff``, a ``sandbox`` CSP, and as a download unless it is a raster image.
"""
import io
import re

import pytest
from PIL import Image

from core.kernel.records import Query
from tests.web import test_web_views

client = test_web_views.client  # signed in as the admin, with the CSRF token at hand
full_layout = test_web_views.full_layout  # every gadget field on the forms

HTML = b'<!doctype html><title>logo</title><script src="logo.js"></script>'
JS = b"fetch('/admin/users/new', {method: 'POST'}); alert(document.cookie);"
SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
       b'<script>alert(document.domain)</script><rect width="10" height="10"/></svg>')


def image_bytes(kind: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 30, 30)).save(out, kind)
    return out.getvalue()


def upload(client, fields: dict, files: dict, module: str = "gadgets", **data):
    return client.post(f"/m/{module}/new", data={"_csrf": client.csrf, **fields, **data},
                       files={name: (filename, content, ctype)
                              for name, (filename, content, ctype) in files.items()})


def the_gadget(site, admin, name: str) -> dict:
    [gadget] = site.records.list("gadgets", admin, Query(filters={"name": name}, limit=None))
    return gadget


def assert_served_safely(response, *, image: str | None = None) -> None:
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"].split(";")[0]
    kind = response.headers["content-type"]
    for bad in ("html", "javascript", "svg", "xml", "text/"):
        assert bad not in kind, kind
    disposition = response.headers["content-disposition"]
    if image:
        assert kind == image and disposition.startswith("inline"), (kind, disposition)
    else:
        assert kind == "application/octet-stream" and disposition.startswith("attachment"), \
            (kind, disposition)


def test_an_html_page_and_its_script_are_served_as_downloads(client, site, admin,
                                                             full_layout):
    # the chain: one file field holds the page, another the script it loads
    for name, filename, content, ctype in (("Page", "logo.html", HTML, "text/html"),
                                           ("Script", "logo.js", JS, "text/javascript")):
        response = upload(client, {"name": name}, {"manual": (filename, content, ctype)})
        assert response.status_code == 200, response.text[:500]
    for name, content in (("Page", HTML), ("Script", JS)):
        gadget = the_gadget(site, admin, name)
        served = client.get(f"/m/gadgets/{gadget['id']}/file/manual")
        assert served.content == content  # the user gets their file back, unchanged
        assert_served_safely(served)
    # an image field does not take them at all
    refused = upload(client, {"name": "Logo"}, {"photo": ("logo.html", HTML, "image/png")})
    assert refused.status_code == 422
    assert site.records.count("gadgets", admin, Query(filters={"name": "Logo"})) == 0


def test_an_svg_with_a_script_is_refused_by_an_image_field(client, site, admin, full_layout):
    before = sorted(p for p in (site.folder / "files").rglob("*")) if (
        site.folder / "files").exists() else []
    response = upload(client, {"name": "Vector"}, {"photo": ("logo.svg", SVG, "image/svg+xml")})
    assert response.status_code == 422
    text = response.text
    assert re.search(r"Photo must be a PNG, JPEG, GIF or WebP image; logo\.svg is not one", text)
    assert site.records.count("gadgets", admin) == 0  # nothing saved
    after = sorted(p for p in (site.folder / "files").rglob("*")) if (
        site.folder / "files").exists() else []
    assert after == before  # and nothing left in the file store


def test_a_real_png_is_accepted_and_shown_inline(client, site, admin, full_layout):
    png = image_bytes("PNG")
    response = upload(client, {"name": "Pic"}, {"photo": ("photo.png", png, "image/png")})
    assert response.status_code == 200
    gadget = the_gadget(site, admin, "Pic")
    url = f"/m/gadgets/{gadget['id']}/file/photo"
    assert f'<img class="thumb" src="{url}"' in client.get(f"/m/gadgets/{gadget['id']}").text
    served = client.get(url)
    assert served.content == png
    assert_served_safely(served, image="image/png")
    # the type comes from the content: a JPEG named .png is a JPEG
    jpeg = image_bytes("JPEG")
    upload(client, {"name": "Jpeg"}, {"photo": ("photo.png", jpeg, "image/png")})
    gadget = the_gadget(site, admin, "Jpeg")
    assert_served_safely(client.get(f"/m/gadgets/{gadget['id']}/file/photo"), image="image/jpeg")


def test_a_gif_script_polyglot_is_only_ever_an_image(client, site, admin, full_layout):
    # A valid GIF with script after it decodes: it is stored, but served as image/gif with
    # nosniff and a sandbox, so no browser runs it.
    polyglot = image_bytes("GIF") + b"\n*/=1;alert(document.domain)//<script>alert(1)</script>"
    response = upload(client, {"name": "Poly"}, {"photo": ("poly.gif", polyglot, "image/gif")})
    assert response.status_code == 200
    gadget = the_gadget(site, admin, "Poly")
    assert_served_safely(client.get(f"/m/gadgets/{gadget['id']}/file/photo"), image="image/gif")
    # The classic GIF89a header followed by JavaScript is no image at all: refused.
    fake = b"GIF89a/*\x01\x00\x01\x00\x00\x00\x00*/=1;alert(document.domain);"
    refused = upload(client, {"name": "Fake"}, {"photo": ("fake.gif", fake, "image/gif")})
    assert refused.status_code == 422
    assert "fake.gif is not one" in refused.text
    # and in a file field (any type is kept) it is an opaque download
    upload(client, {"name": "Kept"}, {"manual": ("fake.html", fake, "text/html")})
    gadget = the_gadget(site, admin, "Kept")
    assert_served_safely(client.get(f"/m/gadgets/{gadget['id']}/file/manual"))


def test_files_stored_before_the_check_are_served_safely(client, site, admin):
    # an image field holding an HTML page (stored before image fields were checked)
    folder = site.folder / "files" / "0123456789abcdef"
    folder.mkdir(parents=True)
    (folder / "logo.svg").write_bytes(SVG)
    gadget = site.records.create("gadgets", {"name": "Old",
                                             "photo": "0123456789abcdef/logo.svg"}, admin)
    assert_served_safely(client.get(f"/m/gadgets/{gadget['id']}/file/photo"))


def test_quick_create_checks_image_uploads_too(client, site, admin):
    # (the Studio makes no image or file fields; a module pack's go through the same forms)
    site.studio.save_layout(admin, "gadgets", "quick_create", ["name", "photo"])
    refused = upload(client, {"name": "Van"}, {"photo": ("van.svg", SVG, "image/svg+xml")},
                     _layout="quick")
    assert refused.status_code == 422
    assert "Photo must be a PNG, JPEG, GIF or WebP image; van.svg is not one" in refused.text
    assert site.records.count("gadgets", admin) == 0
    accepted = upload(client, {"name": "Van"}, {"photo": ("van.webp", image_bytes("WEBP"),
                                                          "image/webp")}, _layout="quick")
    assert accepted.status_code == 200
    van = the_gadget(site, admin, "Van")
    assert_served_safely(client.get(f"/m/gadgets/{van['id']}/file/photo"), image="image/webp")


@pytest.mark.parametrize("name", ["..", ".", "a/..", "..\\..\\x"])
def test_upload_names_that_are_paths_are_kept_inside_the_store(client, site, admin,
                                                               full_layout, name):
    response = upload(client, {"name": "Odd"}, {"manual": (name, b"data", "text/plain")})
    assert response.status_code == 200
    gadget = the_gadget(site, admin, "Odd")
    assert ".." not in gadget["manual"] and "\\" not in gadget["manual"]
    assert client.get(f"/m/gadgets/{gadget['id']}/file/manual").content == b"data"
