"""Reading received messages (plugins/emails/parse.py): the real-world samples in
messages/, each read as a mail client shows it — and a bad one never raises."""
from email.message import EmailMessage
from pathlib import Path

import pytest

from plugins.emails.parse import ParseError, parse

MESSAGES = Path(__file__).parent / "messages"


def sample(name: str):
    return parse((MESSAGES / name).read_bytes())


def test_multipart_alternative_gives_both_bodies_and_the_addresses():
    m = sample("alternative.eml")
    assert (m.subject, m.from_address) == ("Quote for 40 licences", "Jane Roe <jane@example.org>")
    assert m.to == "Ann Smith <ann@example.com>, sales@example.com"
    assert m.cc == '"Roe, John" <john@example.org>'
    assert m.date.isoformat() == "2025-12-01T08:12:40+00:00"
    assert m.message_id == "<CAF=alt.4521@mail.example.org>"
    assert m.text == "Hello Ann,\n\ncould you send us a quote for 40 licences?\n\nJane\n"
    assert "<b>40 licences</b>" in m.html
    assert m.files == []  # the HTML rendering is the html body, not a file


def test_nested_related_keeps_the_inline_image_with_its_content_id():
    m = sample("related_inline.eml")
    assert m.text.startswith("See what is new this month.")
    assert '<img src="cid:logo.png@01DC6354">' in m.html
    logo, pdf = m.files
    assert (logo.name, logo.content_type, logo.content_id, logo.inline) == (
        "logo.png", "image/png", "logo.png@01DC6354", True)
    assert logo.data.startswith(b"\x89PNG")
    assert (pdf.name, pdf.content_type, pdf.inline, pdf.data) == (
        "prices-2026.pdf", "application/pdf", False, b"%PDF-1.4 prices")


@pytest.mark.parametrize(("name", "subject", "sender", "text"), [
    ("iso_8859_1.eml", "Café crème à Noël", "François Lévesque <francois@example.fr>",
     "le café crème coûte 2,50 EUR ? Non : à Noël il est à 3 F."),
    ("shift_jis.eml", "お見積もりのご送付", "山田 太郎 <yamada@example.jp>",
     "お見積もりをお送りします。"),
    ("windows_1252.eml", "Invoice", "Bob Outlook <bob@example.com>",
     "\u201cThanks\u201d \u2013 the invoice is \u20ac1,200."),
])
def test_non_utf8_charsets_are_decoded(name, subject, sender, text):
    m = sample(name)
    assert (m.subject, m.from_address) == (subject, sender)
    assert text in m.text


def test_rfc2047_encoded_headers_and_the_thread_headers():
    m = sample("encoded_headers.eml")
    assert m.subject == "Grüße aus München ✈️"
    assert m.from_address == "Jürgen Müller <juergen@example.de>"
    assert m.to == "Ann Åström <ann@example.com>"
    assert m.in_reply_to == "<CAF=alt.4521@mail.example.org>"
    assert m.references == "<first@example.org> <CAF=alt.4521@mail.example.org>"


def test_a_forwarded_message_is_one_eml_file():
    m = sample("forwarded.eml")
    [inner] = m.files
    assert (inner.name, inner.content_type) == ("Quote for 40 licences.eml", "message/rfc822")
    assert b"Message-ID: <inner@example.org>" in inner.data
    assert m.text == "See below.\n"


def test_a_malformed_message_is_read_as_far_as_it_goes():
    m = sample("malformed.eml")
    assert m.subject == "Broken message and bad base64"
    assert m.date is None and m.message_id == ""
    assert "Hello world" in m.text  # an unknown charset and bad base64: best effort
    assert [f.name for f in m.files] == ["data.bin"]
    assert m.defects > 0
    assert m.key_source.startswith(b'From: "Broken')


@pytest.mark.parametrize("raw", [b"", b"\r\n\r\n", b"   "])
def test_nothing_is_refused_cleanly(raw):
    with pytest.raises(ParseError):
        parse(raw)


def test_a_25_mb_attachment_is_read_whole():
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.org", "b@example.org", "Big"
    message.set_content("The file.")
    data = bytes(range(256)) * (25 * 2**20 // 256)
    message.add_attachment(data, maintype="application", subtype="octet-stream",
                           filename="big.bin")
    m = parse(message.as_bytes())
    [big] = m.files
    assert (big.name, len(big.data), big.data == data) == ("big.bin", 25 * 2**20, True)
