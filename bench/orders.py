"""Benchmark: printing invoices and pricing big quotes, each against a baseline run in the
same process.

    .venv/bin/python bench/orders.py [--pdfs N] [--lines L] [--runs R] [--database-url URL]

1. **Invoice PDF rate.** A 40-line invoice (two groups, three tax rates) printed through
   the standard invoice form (``core.apps.documents.printing.render_record``: reading the record, its
   lines and its account, formatting, rendering), N times. Baseline: fpdf2 drawing the
   same 40 lines as a plain table with ``cell()`` calls and the core Helvetica font — the
   least a PDF of those lines costs. Ratio = ours / baseline (time per PDF).
2. **Totals of an L-line quote (500).** ``line_items.parse`` + ``compute`` of the lines
   (the money rule: every line, tax and group total), against a baseline that only
   multiplies quantity by price and sums, in Decimal. Then saving the quote's lines through
   ``RecordService.update`` (validation, tax-rate lookup, totals, the lines rewritten, one
   transaction), against inserting the same rows with one executemany.

SQLite in a temp dir unless --database-url names an empty database (tables dropped after).
"""
from __future__ import annotations

import argparse
import statistics
import time
from decimal import Decimal

from common import bench_site  # bench/common.py, beside this file
from fpdf import FPDF

from core.apps.documents import printing
from core.kernel.i18n import Preferences, formatter
from core.kernel.site import Site
from core.kernel.users import create_user
from plugins.line_items import lines as line_items


def lines(count: int, codes: list[str]) -> list[dict]:
    groups = [{"name": "Hardware", "shipping": "35.00", "lines": []},
              {"name": "Services", "lines": []}]
    for n in range(count):
        groups[n % 2]["lines"].append({
            "kind": "product" if n % 2 == 0 else "service", "name": f"Item {n:03d}",
            "part_number": f"P-{n:05d}", "quantity": str(1 + n % 7),
            "unit_price": f"{(n * 37) % 900 + 9.99:.2f}", "cost": f"{(n * 23) % 500 + 3:.2f}",
            "discount_kind": "percent" if n % 5 == 0 else None,
            "discount_value": "7.5" if n % 5 == 0 else None,
            "tax_code_id": codes[n % len(codes)]})
    return groups


def timed(fn, runs: int) -> float:
    """Median seconds of ``runs`` calls (after one warm-up call)."""
    fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def baseline_pdf(rows: list[tuple[str, str, str, str]]) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=9)
    for row in rows:
        for text, width in zip(row, (90, 20, 35, 35), strict=True):
            pdf.cell(width, 6, text, border=1)
        pdf.ln()
    return bytes(pdf.output())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pdfs", type=int, default=30)
    parser.add_argument("--lines", type=int, default=500)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with bench_site(args.database_url) as site:
        site.sync_schema()
        run(site, args)


def run(site: Site, args) -> None:
    admin = create_user(site, "bench-admin", "bench-password-123", is_admin=True)
    records = site.records
    rates = [records.create("tax_rates", {"name": name, "rate": rate, "compound": compound,
                                          "apply_order": order}, admin)
             for name, rate, compound, order in (("GST", "5", False, 1), ("PST", "7", False, 2),
                                                 ("Luxury", "10", True, 3))]
    codes = []
    for name, used in (("All three", rates), ("GST", rates[:1])):
        code = records.create("tax_codes", {"name": name}, admin)
        for rate in used:
            records.link("tax_codes", code["id"], "rates", rate["id"], admin)
        codes.append(code["id"])
    site.set_setting("company", {"name": "Northwind Supplies Ltd.",
                                 "address": "12 Harbour Street\nVancouver BC V6B 1A1"})
    account = records.create("accounts", {"name": "Société Générale de Café"}, admin)
    fmt = formatter(Preferences())

    # 1. invoice PDFs
    invoice = records.create("invoices", {"name": "Bench invoice", "account_id": account["id"],
                                          "line_items": lines(40, codes)}, admin)
    items = records.feature_data("line_items", "invoices", invoice["id"], admin)
    rows = [(line.name, str(line.quantity), str(line.unit_price), str(line.ext_price))
            for line in items.lines]
    ours = timed(lambda: [printing.render_record(site, "invoices", invoice["id"], admin,
                                                 "invoice", fmt) for _ in range(args.pdfs)],
                 args.runs) / args.pdfs
    base = timed(lambda: [baseline_pdf(rows) for _ in range(args.pdfs)], args.runs) / args.pdfs
    _, content = printing.render_record(site, "invoices", invoice["id"], admin, "invoice", fmt)
    print(f"invoice PDF, 40 lines ({len(content) // 1024} KB): {1 / ours:6.1f} PDFs/s "
          f"({ours * 1000:.1f} ms); baseline fpdf2 table {1 / base:6.1f} PDFs/s; "
          f"ratio {ours / base:.1f}")

    # 2. totals of a big quote
    data = lines(args.lines, codes)
    with site.engine.connect() as conn:
        rate_map = site.hook.crbm_tax_rates(site=site, tax_code_ids=set(codes), connection=conn)

    def totals():
        groups, errors = line_items.parse(data)
        assert not errors
        return line_items.compute(groups, rate_map, "USD", 2)

    def naive():
        return sum((Decimal(line["quantity"]) * Decimal(line["unit_price"])
                    for group in data for line in group["lines"]), Decimal(0))

    ours = timed(totals, args.runs)
    base = timed(naive, args.runs)
    print(f"totals of a {args.lines}-line quote: {ours * 1000:.1f} ms; "
          f"baseline qty x price sum {base * 1000:.2f} ms; ratio {ours / base:.0f}")

    quote = records.create("quotes", {"name": "Big quote", "account_id": account["id"]}, admin)
    flip = [0]

    def save():
        flip[0] += 1  # a different first quantity each time, so the lines really change
        data[0]["lines"][0]["quantity"] = str(flip[0] % 5 + 1)
        records.update("quotes", quote["id"], {"line_items": data}, admin)

    table = site.tables.tables["quotes_lines"]
    stored = [{"id": f"{n:036d}", "record_id": "bench", "group_id": "g", "position": n,
               "kind": "product", "name": f"Item {n}", "quantity": Decimal(1),
               "unit_price": Decimal("9.99")} for n in range(args.lines)]

    def raw_insert():
        with site.engine.begin() as conn:
            conn.execute(table.delete().where(table.c.record_id == "bench"))
            conn.execute(table.insert(), stored)

    ours = timed(save, args.runs)
    base = timed(raw_insert, args.runs)
    print(f"saving a {args.lines}-line quote: {ours * 1000:.0f} ms; "
          f"baseline delete + executemany of the rows {base * 1000:.0f} ms; "
          f"ratio {ours / base:.1f}")


if __name__ == "__main__":
    main()
