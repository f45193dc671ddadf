"""Benchmark: installing and uninstalling a module pack of 10 modules, against the bare
work underneath, in the same run.

    .venv/bin/python bench/packs.py [--modules 10] [--rounds 5] [--database-url URL]

The pack holds M modules of 12 fields each (text, dropdown, date, currency, a link to the
previous module). Each round installs it (unpack, validate, compatibility, permission,
files, registry, schema, hook, history) and purges it (export, drop). The baseline is
what an install cannot avoid: creating, then dropping, the same tables with SQLAlchemy's
``create_all`` / ``drop_all``. Ratios = loader time / baseline time (medians of R rounds).

SQLite in a temp dir unless --database-url names an empty database (tables dropped after).
"""
from __future__ import annotations

import argparse
import io
import statistics
import time
import zipfile

import sqlalchemy as sa
import yaml
from common import bench_site  # bench/common.py, beside this file

from core.kernel import database


def module_yaml(index: int) -> dict:
    fields = {"name": {"type": "name", "required": True},
              "status": {"type": "dropdown", "options": "bench_status_dom"},
              "due": {"type": "date"}, "amount": {"type": "currency"},
              "notes": {"type": "textarea"}}
    fields.update({f"detail_{n}": {"type": "text"} for n in range(7)})
    if index:
        fields["parent_id"] = {"type": "related", "module": f"bench_{index - 1:02d}"}
    return {"name": f"bench_{index:02d}", "label": f"Bench {index}", "fields": fields,
            "layouts": {"list": {"columns": ["name", "status", "due", "amount"]}}}


def pack_zip(modules: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("pack.yaml", yaml.safe_dump({"name": "bench_pack", "kind": "module",
                                                      "version": "1.0.0", "title": "Bench"}))
        archive.writestr("dropdowns/bench.yaml", yaml.safe_dump({"bench_status_dom": [
            {"value": v, "label": v.title()} for v in ("open", "closed")]}))
        for i in range(modules):
            archive.writestr(f"modules/bench_{i:02d}.yaml", yaml.safe_dump(module_yaml(i)))
    return out.getvalue()


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url")
    args = parser.parse_args()

    with bench_site(args.database_url) as site:
        site.sync_schema()
        data = pack_zip(args.modules)
        installs, purges, creates, drops = [], [], [], []
        for _ in range(args.rounds):
            installs.append(timed(lambda: site.packs.install(data, None, "bench.zip")))
            owned = [n for k, n, _ in site.packs.objects("bench_pack") if k == "table"]
            metadata = sa.MetaData()
            for table in database.schema_for(site.registry).sorted_tables:
                if table.name in owned:
                    table.to_metadata(metadata)
            purges.append(timed(lambda: site.packs.remove("bench_pack", "purge")))
            creates.append(timed(lambda m=metadata: m.create_all(site.engine)))
            drops.append(timed(lambda m=metadata: m.drop_all(site.engine)))
    backend = site.engine.dialect.name

    install, purge = statistics.median(installs), statistics.median(purges)
    create, drop = statistics.median(creates), statistics.median(drops)
    print(f"{backend}: module pack of {args.modules} modules, median of {args.rounds} rounds")
    print(f"  install  {install * 1000:8.1f} ms   baseline create_all {create * 1000:7.1f} ms"
          f"   ratio {install / create:5.1f}")
    print(f"  purge    {purge * 1000:8.1f} ms   baseline drop_all   {drop * 1000:7.1f} ms"
          f"   ratio {purge / drop:5.1f}")


if __name__ == "__main__":
    main()
