"""Every word a template shows goes through gettext, and kernel messages translate."""
import re
from pathlib import Path

import pytest
from jinja2 import Environment

from core.apps.field_types.types import BUILTIN_TYPES as KERNEL_TYPES
from core.kernel.errors import N_, Message
from core.kernel.fields import FieldError

TEMPLATE_DIRS = [Path("core/web/templates"), *Path("plugins").glob("*/templates")]
TEMPLATES = sorted(p for d in TEMPLATE_DIRS for p in d.rglob("*.html"))
ALLOWED_WORDS = {"CRBM"}  # the product's name is not translated


def visible_text(source: str) -> str:
    """The template's literal HTML text outside {% trans %} blocks, tags removed."""
    env = Environment(extensions=["jinja2.ext.i18n"])
    out, in_trans, after_block_begin = [], False, False
    for _, kind, value in env.lex(source):
        if kind == "whitespace":
            continue
        if kind == "block_begin":
            after_block_begin = True
            out.append(" ")
            continue
        if after_block_begin and kind == "name":
            in_trans = {"trans": True, "endtrans": False}.get(value, in_trans)
        after_block_begin = False
        if kind == "data" and not in_trans:
            out.append(value)
        elif kind in ("variable_begin",):
            out.append(" ")
    html = "".join(out)
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.DOTALL)
    html = re.sub(r"<!--.*?-->|<[^>]*>|&\w+;|&#\d+;", " ", html, flags=re.DOTALL)
    # attribute fragments emitted by {% if %} blocks or macros outside a literal <...>
    html = re.sub(r"[\w-]+=\"[^\"]*\"", " ", html)
    return html


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p))
def test_template_text_is_translatable(path):
    words = set(re.findall(r"[A-Za-z][A-Za-z']+", visible_text(path.read_text()))) - ALLOWED_WORDS
    assert not words, f"{path}: text outside gettext: {sorted(words)}"


def test_the_check_catches_untranslated_text():
    assert "Hello" in visible_text("<p>Hello {{ name }}</p>")
    assert "Hello" not in visible_text("<p>{% trans %}Hello{% endtrans %} {{ _('World') }}</p>")
    assert visible_text('<a href="/m/{{ x }}" title="{{ _(\'t\') }}">{{ y }}</a>').strip() == ""


def test_kernel_messages_read_as_english_and_keep_their_template():
    message = Message(N_("is %(length)s characters long; at most %(limit)s allowed"),
                      length=41, limit=40)
    assert message == "is 41 characters long; at most 40 allowed"
    assert message.template.startswith("is %(length)s") and message.params["limit"] == 40
    with pytest.raises(FieldError) as caught:
        KERNEL_TYPES["email"].normalize("nope", {})
    assert isinstance(caught.value.message, Message)
    assert caught.value.message.template == "%(value)s is not an email address"
