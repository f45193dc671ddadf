"""Bugs with the products plugin: a bug names its product. The field comes from the
overlay in ``with_products/extends/bugs.yaml``, read only while products is active
(this glue module is registered only then), so bugs never name a module that may be
missing."""
from __future__ import annotations

from pathlib import Path

from core.kernel.hookspecs import hookimpl

FOLDER = Path(__file__).parent / "with_products"


@hookimpl
def crbm_metadata_dirs():
    return [FOLDER]
