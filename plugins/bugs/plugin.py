"""Bugs: bugs and enhancement requests (user guide "Customer Service"), numbered from 1001,
with product (the products plugin's overlay), versions found and fixed in, type, status,
priority and resolution; linked to cases many-to-many (``bugs_cases``: a bug's Cases and a
case's Bugs subpanels). With the emails plugin, a group inbox's "Create bug" makes one per
new message (glue_emails.py). Demo bugs are linked to the demo cases (demo.py)."""
from __future__ import annotations

from core.kernel.hookspecs import hookimpl

__version__ = "0.1.0"


@hookimpl(trylast=True)  # after the cases
def crbm_demo_data(site, user, size, rng, progress):
    from plugins.bugs import demo

    demo.load(site, user, size, rng, progress)
