"""Kanban boards as a built-in plugin: a generic view over any module whose metadata says
so, and the web pages that draw it.

A module opts in with ``features.board`` (metadata/schema/module.json; ``board.BoardSpec``)
— a *module feature* (``crbm_module_features``), because features are where the registry
checks an application's declaration with everything else, all or nothing, naming the file
and the JSON path (``BoardFeature.check``); no other seam of a feature is used but one
index (``BoardFeature.tables``). Example (an opportunities module)::

    features:
      board: {field: sales_stage, amount: amount, weight: probability,
              card: [account_id, date_closed], hidden: [closed_lost], sort: -amount}

The pages (``web.py``): ``/m/<module>/board`` (the list's filters and quick search apply),
``/m/<module>/board/more`` (a column's next cards) and ``POST /m/<module>/board/move``
(a card dropped in another column: ``RecordService.update`` of the one field).
"""
from __future__ import annotations

import sqlalchemy as sa

from core.apps.board import board
from core.kernel.database import EVERY_DIALECT, CaseFolded, case_folded
from core.kernel.errors import N_
from core.kernel.hookspecs import hookimpl
from core.kernel.hooktypes import ModuleFeature


class BoardFeature(ModuleFeature):
    name = "board"
    label = N_("kanban board")

    def check(self, module, options, registry):
        return board.problems(module, options, registry)

    def tables(self, module, metadata):
        """A column's cards are read by (value, the board's first sort key, id): one index
        serves each column's first page whatever the size of the module."""
        spec = board.BoardSpec.of(module)
        table = metadata.tables.get(module.table)
        if spec is None or table is None or spec.field not in table.c:
            return
        first = (spec.sort or module.default_sort).split(",")[0].strip().lstrip("-")
        f = module.fields.get(first)
        keys = [table.c[spec.field]]
        if f is not None and f.stored and first in table.c and first != "id" and \
                getattr(table.c[first].type, "length", 1):  # not unbounded text
            column = table.c[first]
            keys.append(CaseFolded(column) if case_folded(f, column) else column)
        # compared by name (info["dialects"]), as the kernel's sort indexes are
        sa.Index(f"ix_{module.table}_{spec.field}_board"[:63], *keys, table.c.id,
                 info={"dialects": EVERY_DIALECT})


@hookimpl
def crbm_module_features(site):
    return [BoardFeature()]


@hookimpl(tryfirst=True)  # before the generic /m/{module}/{record_id} pages
def crbm_web_routes(site):
    from core.apps.board import web
    return web.routes
