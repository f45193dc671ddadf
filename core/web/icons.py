"""Icons: Lucide's, by name, drawn from its vendored sprite (static/vendor/lucide).

A module's YAML names its ``icon`` (``icon: users``), a top-bar entry its own
(``NavEntry.icon``); templates call ``icon(name)``. One sprite file for every page, cached
by the browser, instead of an inline SVG per icon per page. A name the sprite does not hold
(a pack's typo, an icon of a newer Lucide) draws a plain square rather than nothing, so a
menu keeps its alignment; the sprite's names are read once.

The icon is decorative: the link or button around it carries the words (a label, or a
visually hidden one), so it is ``aria-hidden``.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

from markupsafe import Markup

SPRITE = Path(__file__).parent / "static" / "vendor" / "lucide" / "sprite.svg"
SPRITE_URL = "/static/vendor/lucide/sprite.svg"
FALLBACK = "square"


@functools.cache
def known() -> frozenset[str]:
    return frozenset(re.findall(r'<symbol id="([a-z0-9-]+)"', SPRITE.read_text("utf-8")))


def icon(name: str | None, css_class: str = "icon") -> Markup:
    """The SVG of Lucide icon ``name`` (its lines in ``currentColor``), or "" for None."""
    if not name:
        return Markup("")
    drawn = name if name in known() else FALLBACK
    return Markup(
        '<svg class="{}" aria-hidden="true" focusable="false" viewBox="0 0 24 24" fill="none" '
        'stroke="currentColor" stroke-width="2" stroke-linecap="round" '
        'stroke-linejoin="round"><use href="{}#{}"></use></svg>').format(
            css_class, SPRITE_URL, drawn)
