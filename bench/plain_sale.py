"""The plain-SQL baseline of a sale, shared by bench.checkout and bench.kiosk_ingest: the reads and
writes a sale needs, written by hand as short text statements on a bare connection (no ORM, no
validation beyond what the data needs).

Reads (``read_*``): the idempotency key, the hall settings, the till and its open shift (FOR SHARE
on PostgreSQL, as a till must not sell into a shift being closed), the basket's products with
their supplier (prices, origin, VAT, cost), the certificates valid on the sale's local day, the
lots on hand at the location (first expiry first out, expired lots left out).
Writes (``write_sale``): the receipt number (the day's counter, upserted), the sale, its lines (one
executemany), the reports' daily aggregate (pos.sales.daily_figures: the sale's lines grouped in
Python by the aggregate's key, with its sale counts, upserted in one executemany), its payment, its
stock moves (one executemany), and per lot taken the product level
and the lot level at the location, each guarded (``qty_milli >= :qty``, falling back to an
unguarded update as a sale may take a level below zero) in the global lock order (product, then
product level before lot level). The customer is a virtual location and keeps no level rows.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import bindparam, text

from inventory.money import line_amount_fen

SETTING_KEYS = ("rounding_to_jiao", "discount_limit_percent")


def statements(dialect: str) -> dict:
    share = " FOR SHARE" if dialect == "postgresql" else ""
    raw = {
        "by_key": "SELECT content_hash FROM sales WHERE client_sale_id = :key",
        "by_txn": "SELECT txn_id, content_hash FROM sales WHERE kiosk_id = :kiosk_id AND txn_id IN :txns",
        "settings": "SELECT key, value FROM settings WHERE key IN :keys",
        "till": "SELECT location_id, code FROM tills WHERE id = :till",
        "shift": f"SELECT id, status FROM shifts WHERE id = :shift AND till_id = :till{share}",
        "products": """SELECT p.id, p.price_fen, p.cost_fen, p.vat, p.active, p.supplier_id, s.name,
                          coalesce(p.origin_county, s.origin_county), coalesce(p.origin_county_code, s.origin_county_code),
                          CASE WHEN p.origin_county IS NOT NULL THEN p.origin_township ELSE s.origin_township END,
                          CASE WHEN p.origin_county IS NOT NULL THEN p.origin_village ELSE s.origin_village END
                       FROM products p LEFT JOIN suppliers s ON s.id = p.supplier_id WHERE p.id IN :ids""",
        "certs": """SELECT cp.product_id, c.number FROM certificate_products cp
                    JOIN certificates c ON c.id = cp.certificate_id
                    WHERE cp.product_id IN :ids AND c.valid_from <= :day AND c.valid_to >= :day
                    ORDER BY cp.product_id, c.valid_to""",
        "lots": """SELECT l.product_id, ll.lot_id, ll.qty_milli FROM lot_levels ll JOIN lots l ON l.id = ll.lot_id
                   WHERE ll.location_id = :location AND l.product_id IN :ids AND ll.qty_milli > 0
                     AND (l.expires_on IS NULL OR l.expires_on >= :day)
                   ORDER BY l.product_id, l.expires_on IS NULL, l.expires_on, l.id""",
        "counter": """INSERT INTO document_counters (kind, prefix, day, last_no) VALUES ('sales', :prefix, :day, 1)
                      ON CONFLICT (kind, prefix, day) DO UPDATE SET last_no = document_counters.last_no + 1
                      RETURNING last_no""",
        "sale": """INSERT INTO sales (receipt_no, channel, status, client_sale_id, kiosk_id, txn_id, content_hash,
                      till_id, shift_id, after_shift_closed, price_differs, cashier_id, location_id, sold_at,
                      local_date, recorded_at, subtotal_fen, discount_fen, rounding_fen, total_fen, reprint_count)
                   VALUES (:receipt_no, :channel, 'completed', :key, :kiosk_id, :txn_id, :hash, :till, :shift,
                      :false, :false, :cashier, :location, :sold_at, :day, :now, :total, 0, 0, :total, 0)
                   RETURNING id""",
        "line": """INSERT INTO sale_lines (sale_id, line_no, product_id, slot, qty_milli, unit_price_fen, gross_fen,
                      discount_fen, net_fen, vat, certified, certificate_no, supplier_id, supplier_name,
                      origin_county, origin_county_code, origin_township, origin_village, cost_fen)
                   VALUES (:sale_id, :line_no, :product_id, :slot, :qty, :price, :amount, 0, :amount, :vat,
                      :certified, :cert_no, :supplier_id, :supplier_name, :county, :county_code, :township, :village,
                      :cost)""",
        "daily": """INSERT INTO daily_figures (local_date, channel, buyer_type, source_kind, source_id, certified,
                       county_code, township, county, supplier_id, supplier_name, sales_fen, refunds_fen, sales_n,
                       supplier_sales, origin_sales, n_lines)
                    VALUES (:day, :channel, '', :source_kind, :source_id, :certified, :county_code, :township,
                       :county, :supplier_id, :supplier_name, :fen, 0, :sales_n, :supplier_sales, :origin_sales, :n)
                    ON CONFLICT (local_date, channel, buyer_type, source_kind, source_id, certified, county_code,
                       township, county, supplier_id, supplier_name)
                    DO UPDATE SET sales_fen = daily_figures.sales_fen + excluded.sales_fen,
                       sales_n = daily_figures.sales_n + excluded.sales_n,
                       supplier_sales = daily_figures.supplier_sales + excluded.supplier_sales,
                       origin_sales = daily_figures.origin_sales + excluded.origin_sales,
                       n_lines = daily_figures.n_lines + excluded.n_lines""",
        "payment": """INSERT INTO payments (sale_id, method, amount_fen, tendered_fen, change_fen, ref)
                      VALUES (:sale_id, :method, :amount, :tendered, :change, :ref)""",
        "move": """INSERT INTO stock_moves (product_id, lot_id, from_location_id, to_location_id, qty_milli, reason,
                      ref_type, ref_id, user_id, moved_at)
                   VALUES (:product_id, :lot_id, :location, :customer, :qty, 'sale', 'sale', :sale_id, :user_id,
                      :now)""",
        "debit": """UPDATE stock_levels SET qty_milli = qty_milli - :qty
                    WHERE location_id = :location AND product_id = :product_id AND qty_milli - :qty >= reserved_milli
                    RETURNING qty_milli""",
        "debit_any": """UPDATE stock_levels SET qty_milli = qty_milli - :qty
                        WHERE location_id = :location AND product_id = :product_id RETURNING qty_milli""",
        "lot_debit": """UPDATE lot_levels SET qty_milli = qty_milli - :qty
                        WHERE location_id = :location AND lot_id = :lot_id AND qty_milli >= :qty RETURNING qty_milli""",
        "lot_debit_any": """UPDATE lot_levels SET qty_milli = qty_milli - :qty
                            WHERE location_id = :location AND lot_id = :lot_id RETURNING qty_milli""",
        "last_sale": "UPDATE kiosks SET last_sale_at = :sold_at WHERE id = :kiosk_id",
    }
    out = {k: text(v) for k, v in raw.items()}
    for name, params in (("by_txn", ("txns",)), ("settings", ("keys",)), ("products", ("ids",)),
                         ("certs", ("ids",)), ("lots", ("ids",))):
        out[name] = out[name].bindparams(*(bindparam(p, expanding=True) for p in params))
    return out


def read_catalogue(conn, stmts: dict, product_ids, location: int, day: dt.date) -> tuple[dict, dict, dict]:
    """Products (id → row), certificates (id → number) and lots on hand FEFO (id → [(lot, qty)])."""
    ids = sorted(set(product_ids))
    products = {row[0]: row for row in conn.execute(stmts["products"], {"ids": ids})}
    certs = {pid: number for pid, number in conn.execute(stmts["certs"], {"ids": ids, "day": day})}
    lots: dict[int, list] = {}
    for pid, lot_id, qty in conn.execute(stmts["lots"], {"ids": ids, "location": location, "day": day}):
        lots.setdefault(pid, []).append([lot_id, qty])
    return products, certs, lots


def fefo(lots: dict, product_id: int, qty: int) -> list[tuple]:
    """Take ``qty`` from the product's lots in order (updating what is left), the rest unlotted."""
    parts = []
    for lot in lots.get(product_id, ()):
        if qty <= 0:
            break
        take = min(lot[1], qty)
        if take > 0:
            parts.append((lot[0], take))
            lot[1] -= take
            qty -= take
    if qty > 0:
        parts.append((None, qty))
    return parts


def daily_rows(sale: dict, rows: list[dict]) -> list[dict]:
    """The sale's rows of the daily aggregate: its lines grouped by the aggregate's key in the key's
    order; the first group counts the sale, the first of each supplier and of each (county code,
    township) the supplier's and the origin's sales (pos.sales.daily_figures)."""
    groups: dict[tuple, list] = {}
    for r in rows:
        key = (bool(r["certified"]), r["county_code"] or "", r["township"] or "", r["county"] or "",
               r["supplier_id"] or 0, r["supplier_name"] or "")
        group = groups.setdefault(key, [0, 0])
        group[0] += r["amount"]
        group[1] += 1
    source_kind, source_id = ("till", sale["till"]) if sale.get("till") else ("kiosk", sale["kiosk_id"])
    out, suppliers, origins = [], set(), set()
    for n, (key, (fen, lines)) in enumerate(sorted(groups.items())):
        certified, county_code, township, county, supplier_id, supplier_name = key
        out.append({"day": sale["day"], "channel": sale["channel"], "source_kind": source_kind, "source_id": source_id,
                    "certified": certified, "county_code": county_code, "township": township, "county": county,
                    "supplier_id": supplier_id, "supplier_name": supplier_name, "fen": fen, "n": lines,
                    "sales_n": int(n == 0), "supplier_sales": int(supplier_id not in suppliers),
                    "origin_sales": int((county_code, township) not in origins)})
        suppliers.add(supplier_id)
        origins.add((county_code, township))
    return out


def write_sale(conn, stmts: dict, *, sale: dict, lines: list[dict], payment: dict, products: dict, certs: dict,
               lots: dict, customer: int) -> int:
    """Write one sale whose reads are done. ``sale``: receipt prefix, channel, key/kiosk_id/txn_id,
    till, shift, cashier, location, sold_at, day, now; ``lines``: product_id, qty, price, slot."""
    n = conn.execute(stmts["counter"], {"prefix": sale["prefix"], "day": sale["day"]}).scalar_one()
    rows = []
    for k, line in enumerate(lines, start=1):
        p = products[line["product_id"]]
        amount = line_amount_fen(line["price"], line["qty"])
        cert = certs.get(p[0])
        rows.append({"line_no": k, "product_id": p[0], "slot": line.get("slot"), "qty": line["qty"],
                     "price": line["price"], "amount": amount, "vat": p[3], "certified": cert is not None,
                     "cert_no": cert, "supplier_id": p[5], "supplier_name": p[6], "county": p[7], "county_code": p[8],
                     "township": p[9], "village": p[10],
                     "cost": None if p[2] is None else line_amount_fen(p[2], line["qty"])})
    total = sum(r["amount"] for r in rows)
    sale_id = conn.execute(stmts["sale"], {
        **sale, "receipt_no": f"{sale['prefix']}-{sale['day']:%Y%m%d}-{n:04d}", "total": total, "false": False,
        "hash": "0" * 64}).scalar_one()
    conn.execute(stmts["line"], [{**r, "sale_id": sale_id} for r in rows])
    conn.execute(stmts["daily"], daily_rows(sale, rows))
    tendered = payment.get("tendered", total)
    conn.execute(stmts["payment"], {"sale_id": sale_id, "method": payment["method"], "amount": total,
                                    "tendered": tendered, "change": tendered - total, "ref": payment.get("ref")})
    moves = []
    for r in sorted(rows, key=lambda r: r["product_id"]):
        for lot_id, qty in fefo(lots, r["product_id"], r["qty"]):
            moves.append({"product_id": r["product_id"], "lot_id": lot_id, "location": sale["location"],
                          "customer": customer, "qty": qty, "sale_id": sale_id, "user_id": sale.get("cashier"),
                          "now": sale["now"]})
    conn.execute(stmts["move"], moves)
    for m in moves:  # product level before lot level, products in id order
        if conn.execute(stmts["debit"], m).first() is None:
            conn.execute(stmts["debit_any"], m)
        if m["lot_id"] is not None and conn.execute(stmts["lot_debit"], m).first() is None:
            conn.execute(stmts["lot_debit_any"], m)
    return sale_id
