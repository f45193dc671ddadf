"""Workflows (implementation guide §7.5.5): what happens by itself when a record is saved
or deleted, or when a date comes, under conditions.

So far the plugin brings the condition library the engine runs (``conditions.py``: the
JSON shape, checking, in-memory evaluation, SQL for scans; ``dates.py``: the calendar its
date filters count in, from the site setting ``workflows`` — ``timezone``, ``week_start``,
``fiscal_year_start``). It registers no hook yet: the engine, its module and its scheduler
task come with it.
"""
from __future__ import annotations

__version__ = "0.1.0"
