"""What the catalogue import's fast paths keep true (issue 16): the products it inserts in bulk are
found by the till's search at once (on SQLite the FTS index is filled in one statement after the
insert, the per-row trigger dropped for it and back afterwards, also when the write is rolled back);
the file's existing products are planned from snapshots, and the ORM objects a caller's session
already held of them show what the import wrote; the garbage collector paused for an import is
back on after it."""
from __future__ import annotations

import gc

import pytest
from sqlalchemy import insert, select

from inventory import catalogue, search_index
from inventory.barcodes import ean13
from inventory.catalogue_import import apply_import
from inventory.catalogue_sheet import ImportRefused
from inventory.localtime import utcnow
from inventory.models import Product
from inventory.search import search_ids

HEADER = ["sku", "name", "barcodes", "price_fen"]
from tests.fixtures.catalogue import csv_bytes as catalogue_csv


def csv_bytes(rows) -> bytes:
    return catalogue_csv(HEADER, rows)


def ids_by_sku(s, prefix: str) -> dict[str, int]:
    return dict(s.execute(select(Product.sku, Product.id).where(Product.sku.like(f"{prefix}%"))).all())


def insert_trigger_present(s) -> bool:
    return s.connection().exec_driver_sql(
        "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = ?",
        (search_index.INSERT_TRIGGER,)).scalar_one() == 1


def fts_agrees_with_products(s) -> None:
    """FTS5's own check of an external-content index against its table (raises when they differ)."""
    s.connection().exec_driver_sql(
        f"INSERT INTO {search_index.FTS_TABLE}({search_index.FTS_TABLE}, rank) VALUES ('integrity-check', 1)")


def test_imported_products_are_found_by_name_fragment_and_initials(session):
    before = catalogue.create_product(session, sku="OLD1", name="寨英香米 5kg", price_fen=5000)
    session.commit()
    rows = [[f"IMP{n:04d}", f"{'梅江苦荞茶' if n % 2 else '盘信野生菌'} {n}", ean13(f"695{n:09d}"), str(300 + n)]
            for n in range(600)]
    apply_import(session, "search.csv", csv_bytes(rows))
    session.commit()
    imported = ids_by_sku(session, "IMP")
    assert len(imported) == 600
    tea = {imported[f"IMP{n:04d}"] for n in range(1, 600, 2)}
    mushroom = set(imported.values()) - tea
    # a fragment of three characters and more goes through the FTS / trigram index
    assert set(search_ids(session, "苦荞茶", cap=1000)) == tea
    assert set(search_ids(session, "野生菌", cap=1000)) == mushroom
    assert set(search_ids(session, "mjkqc", cap=1000)) == tea             # pinyin initials
    assert search_ids(session, ean13(f"695{7:09d}")) == [imported["IMP0007"]]
    assert search_ids(session, "寨英香米") == [before.id]                  # the catalogue before it
    if session.get_bind().dialect.name == "sqlite":
        assert insert_trigger_present(session)
        fts_agrees_with_products(session)
    # a product added by hand afterwards is indexed by the trigger again
    after = catalogue.create_product(session, sku="NEW1", name="梅江苦荞茶 礼盒装", price_fen=8800)
    session.commit()
    assert after.id in search_ids(session, "苦荞茶", cap=1000)


def test_a_renamed_product_is_found_by_its_new_name_only(session):
    apply_import(session, "first.csv", csv_bytes([["REN1", "孟溪腊肉 500g", "", "3800"]]))
    session.commit()
    pid = ids_by_sku(session, "REN1")["REN1"]
    apply_import(session, "again.csv", csv_bytes([["REN1", "乌罗蜂蜜 500g", "", "3800"]]))
    session.commit()
    assert search_ids(session, "乌罗蜂蜜") == [pid]
    assert search_ids(session, "wlfm") == [pid]
    assert search_ids(session, "孟溪腊肉") == []
    if session.get_bind().dialect.name == "sqlite":
        fts_agrees_with_products(session)


def test_a_rolled_back_bulk_insert_leaves_the_index_and_its_trigger_as_they_were(session):
    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("the FTS trigger is SQLite's; PostgreSQL's indexes are the table's own")
    catalogue.create_product(session, sku="KEEP1", name="甘龙土鸡蛋 30枚", price_fen=4500)
    session.commit()
    rows = [{"sku": f"GONE{n}", "name": f"甘龙土鸡蛋 {n}", "pinyin_initials": "gltjd", "price_fen": 100,
             "active": True, "created_at": utcnow()} for n in range(50)]
    with pytest.raises(RuntimeError), session.begin_nested():
        with search_index.indexed_at_end(session.connection()):
            assert not insert_trigger_present(session)        # dropped for the block …
            session.execute(insert(Product.__table__), rows)
            raise RuntimeError("a rule the plan did not foresee")
    assert insert_trigger_present(session)                    # … and back after a failure
    assert ids_by_sku(session, "GONE") == {}
    session.commit()
    fts_agrees_with_products(session)
    assert len(search_ids(session, "土鸡蛋")) == 1


def test_the_products_a_session_held_show_what_the_import_wrote(session):
    held = catalogue.create_product(session, sku="HELD1", name="松桃红米 2.5kg", price_fen=2600,
                                    barcodes=[ean13("696000000001")])
    other = catalogue.create_product(session, sku="HELD2", name="苗家米酒", price_fen=3900,
                                     barcodes=[ean13("696000000002")])
    session.commit()
    assert [b.code for b in held.barcodes] == [ean13("696000000001")]       # loaded before the import
    assert [b.code for b in other.barcodes] == [ean13("696000000002")]
    apply_import(session, "held.csv", csv_bytes([
        ["HELD1", "松桃红米 5kg", ean13("696000000002"), "4900"],        # takes HELD2's barcode
        ["HELD2", "苗家米酒", "", "3900"],
    ]))
    assert (held.name, held.price_fen, held.pinyin_initials) == ("松桃红米 5kg", 4900, "sthm5kg")
    assert [b.code for b in held.barcodes] == [ean13("696000000002")]
    assert other.barcodes == []
    session.commit()


def test_the_garbage_collector_is_back_on_after_an_import_written_or_refused(session):
    assert gc.isenabled()
    apply_import(session, "ok.csv", csv_bytes([["GC1", "松桃红米 2.5kg", "", "2600"]]))
    assert gc.isenabled()
    with pytest.raises(ImportRefused):
        apply_import(session, "bad.csv", csv_bytes([["GC2", "松桃红米 2.5kg", "", "not a price"]]))
    assert gc.isenabled()
    session.rollback()
