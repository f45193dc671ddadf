"""Leads × opportunities: the opportunities a lead became, as a subpanel of the lead.
Registered by the leads manifest's ``glue`` only while the opportunities plugin is active:
``crbm_metadata_dirs`` adds the folder ``opportunities/`` whose ``extends/leads.yaml``
is that relationship (no column: the link is the opportunity's ``lead_id``, which
extends/opportunities.yaml adds and converting with an opportunity fills)."""
from __future__ import annotations

from pathlib import Path

from core.kernel.errors import N_
from core.kernel.hookspecs import hookimpl

FOLDER = Path(__file__).parent / "opportunities"
# the overlay's labels, for the catalogs (its YAML is one folder deeper than extraction reads)
LABELS = (N_("Opportunities"),)


@hookimpl
def crbm_metadata_dirs():
    return [FOLDER]
