"""Benchmark: what 50 active workflows' conditions add to a save when none matches.

    .venv/bin/python bench/workflows.py [--saves N] [--workflows W] [--database-url URL]

The issue's aim (18, acceptance): under 1 ms added per save with 50 active workflows on the
module when no condition matches. A save here is ``RecordService.update`` of an account (one
field, the version check, the change log, the hooks) — what every save of the module pays.
The workflows' side is what the engine does on that save: for each workflow, the compiled
condition looked up by its stored JSON text (``conditions.compile_condition``: a cache hit
after the first save) and tested on the record before and after (``Compiled.test``, one
``Clock`` for the save). The conditions mix the guide's kinds: "value changed to", current
and previous values, text, number and dropdown operators, nested groups, date filters
("created within the last 2 weeks before 2000" never holds).

Printed: a save alone, the same save followed by the 50 evaluations (the two taking
turns; their difference is mostly the save's own spread), the evaluations alone measured
over many rounds, and the evaluations as timed right after each save (the added cost per
save, µs), with ratios. Without --database-url a fresh SQLite file in a temp dir is used.

With ``--engine``, the same 50 conditions are saved as active workflows of the workflows
plugin (each with a set_fields action that never runs) and the save goes through the real
path: ``crbm_after_save`` -> ``engine.on_write`` (the cached workflows of the module, one
Clock, the compiled tests). Printed: saves with those workflows inactive vs active (blocks
taking turns), and the time spent inside ``engine.on_write`` per save.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

from common import (
    backend_name,
    bench_site,
    create_in_batches,
    demo_rows,
    interleaved,
    progress,
    site_arguments,
)

from core.kernel.records import Query
from core.kernel.users import create_user
from plugins.workflows import conditions
from plugins.workflows.dates import date_settings


def workflow_conditions(count: int) -> list[str]:
    """``count`` realistic conditions on accounts, none of which a description edit meets;
    as the engine would hold them: their stored JSON text."""
    kinds = [
        lambda i: {"group": "all_of", "conditions": [
            {"field": "account_type", "when": "changed_to", "operator": "is", "value": "analyst"},
            {"field": "annual_revenue", "when": "current", "operator": "gte",
             "value": str(1000 * i)}]},
        lambda i: {"group": "all_of", "conditions": [
            {"field": "employees", "when": "current", "operator": "gt", "value": 10**9 + i},
            {"field": "rating", "when": "current", "operator": "contains", "value": f"zz{i}"}]},
        lambda i: {"group": "any_of", "conditions": [
            {"field": "industry", "when": "previous", "operator": "one_of",
             "value": ["apparel", "banking"]},
            {"field": "name", "when": "current", "operator": "starts_with", "value": f"#{i}"}]},
        lambda i: {"group": "all_of", "conditions": [
            {"field": "created_at", "when": "current", "operator": "within",
             "anchor": {"kind": "date", "date": "1999-12-31"}, "amount": 2, "unit": "weeks",
             "direction": "previous"}]},
        lambda i: {"group": "none_of", "conditions": [
            {"field": "name", "when": "current", "operator": "not_empty"},
            {"group": "all_of", "conditions": [
                {"field": "email_opt_out", "when": "current", "operator": "checked"},
                {"field": "website", "when": "changed", "operator": None}]}]},
    ]
    return [json.dumps(kinds[i % len(kinds)](i), sort_keys=True) for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--saves", type=int, default=300, help="saves measured each way (300)")
    parser.add_argument("--workflows", type=int, default=50, help="active workflows (50)")
    parser.add_argument("--engine", action="store_true",
                        help="also measure the engine's real after_save path")
    parser.add_argument("--rounds", type=int, default=2000,
                        help="rounds of the evaluations alone (2000)")
    site_arguments(parser)
    args = parser.parse_args()

    with bench_site(args.database_url) as site:
        site.sync_schema()
        user = create_user(site, "bench", "correct horse battery", is_admin=True)
        progress("demo accounts")
        create_in_batches(site, "accounts", demo_rows(200, user.id, args.seed), user)
        texts = workflow_conditions(args.workflows)
        for text in texts:
            problems = conditions.validate(site, "accounts", text)
            if problems:
                raise SystemExit(f"bench condition refused: {problems[0]}")
        settings = date_settings(site)
        records = site.records.list("accounts", user, Query(limit=20, fields=None))
        state = {"record": records[0], "n": 0}

        def save():
            state["n"] += 1
            before = state["record"]
            after = site.records.update("accounts", before["id"],
                                        {"description": f"Edited {state['n']}"}, user,
                                        base=before)
            state["record"] = after
            return before, after

        def evaluate(before, after) -> int:
            clock = conditions.Clock(settings=settings)
            held = 0
            for text in texts:
                held += conditions.compile_condition(site, "accounts", text) \
                    .test(after, before, clock)
            return held

        after_save = []  # the evaluations' share of each "save + workflows"

        def save_with_workflows():
            before, after = save()
            t0 = time.perf_counter()
            held = evaluate(before, after)
            after_save.append(time.perf_counter() - t0)
            return held

        progress("saves")
        times, answers = interleaved({"save": save, "save + workflows": save_with_workflows},
                                     rounds=args.saves, warmup=20)
        if answers["save + workflows"]:
            raise SystemExit("a bench condition matched: it must not")
        before, after = save()
        alone = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            evaluate(before, after)
            alone.append(time.perf_counter() - t0)

        plain = statistics.median(times["save"]) * 1e6
        with_wf = statistics.median(times["save + workflows"]) * 1e6
        added = statistics.median(alone) * 1e6
        in_save = statistics.median(after_save[20:]) * 1e6
        print(f"backend: {backend_name(site)}; {args.workflows} workflows on accounts, "
              f"none matching; {args.saves} saves each way (medians)")
        print(f"  save alone                {plain:9.0f} µs")
        print(f"  save + {args.workflows} evaluations     {with_wf:9.0f} µs   "
              f"({with_wf / plain:.3f}× the save)")
        print(f"  {args.workflows} evaluations alone     {added:9.1f} µs   "
              f"({added / args.workflows:.2f} µs per workflow; {added / plain:.1%} of a save; "
              f"aim < 1000 µs)")
        print(f"  {args.workflows} evaluations right after each save {in_save:7.1f} µs "
              f"(caches cold from the save)")
        if args.engine:
            engine_path(site, user, texts, save, args.saves)


def engine_path(site, user, texts, save, saves: int) -> None:
    """Saves through the real after_save hook with the workflows inactive, then active."""
    import sqlalchemy as sa

    from plugins.workflows import engine
    progress("workflows")
    for i, text in enumerate(texts):
        site.records.create("workflows", {
            "name": f"Bench {i}", "active": False, "trigger_module": "accounts",
            "trigger": "saved", "applies_to": "both", "execute_as": "trigger_user",
            "conditions": text,
            "actions": json.dumps([{"type": "set_fields", "values": {"rating": "x"}}])}, user)
    table = site.records.table(site.registry.module("workflows"))
    inside: list[float] = []
    original = engine.on_write

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            inside.append(time.perf_counter() - t0)

    engine.on_write = timed
    results: dict[bool, list[float]] = {False: [], True: []}
    hook: dict[bool, list[float]] = {False: [], True: []}
    block = 25
    try:
        for turn in range(2 * max(1, saves // block)):
            active = bool(turn % 2)
            with site.engine.begin() as conn:
                conn.execute(table.update().values(active=active))
            engine.invalidate(site)
            save()  # warms the cache
            for _ in range(block):
                inside.clear()
                t0 = time.perf_counter()
                save()
                results[active].append(time.perf_counter() - t0)
                hook[active].append(sum(inside))
    finally:
        engine.on_write = original
    if any(r["status"] for r in site.records.list("workflow_runs", user, Query(limit=1))):
        raise SystemExit("a bench workflow ran: it must not")
    off = statistics.median(results[False]) * 1e6
    on = statistics.median(results[True]) * 1e6
    hook_off = statistics.median(hook[False]) * 1e6
    hook_on = statistics.median(hook[True]) * 1e6
    print(f"engine path (crbm_after_save -> engine.on_write), {len(texts)} workflows:")
    print(f"  save, workflows inactive  {off:9.0f} µs   (engine.on_write {hook_off:6.1f} µs)")
    print(f"  save, workflows active    {on:9.0f} µs   (engine.on_write {hook_on:6.1f} µs; "
          f"aim < 1000 µs)")
    del sa


if __name__ == "__main__":
    main()
