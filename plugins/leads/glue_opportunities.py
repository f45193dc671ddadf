"""Leads × opportunities: the lead's link to the opportunity it became. Registered by the
leads manifest's ``glue`` only while the opportunities plugin is active, so the leads
module has the field exactly when its target module exists: ``crbm_metadata_dirs`` adds
the folder ``opportunities/`` whose ``extends/leads.yaml`` is that overlay. Converting
with an opportunity (convert.py) fills it."""
from __future__ import annotations

from pathlib import Path

from core.kernel.errors import N_
from core.kernel.hookspecs import hookimpl

FOLDER = Path(__file__).parent / "opportunities"
# the overlay's labels, for the catalogs (its YAML is one folder deeper than extraction reads)
LABELS = (N_("Converted to opportunity"), N_("Converted leads"))


@hookimpl
def crbm_metadata_dirs():
    return [FOLDER]
