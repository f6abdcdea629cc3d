"""The till's product search (GET /api/v1/products/search, inventory.search): the exact code first,
then sku, initials and name prefixes, then fragments; within a rank the most sold in the last 30 days
first; at most 200 results; and the indexes behind it stay in step with the catalogue — a rename, a
new or removed barcode, a retired product, a product written with plain SQL (the triggers)."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import insert, select

from inventory import catalogue
from inventory.barcodes import ean13
from inventory.localtime import local_today, utcnow
from inventory.models import Barcode, Location, Product
from inventory.search import CAP
from pos.core.db import session_scope
from pos.models import Sale, SaleLine, SaleStatus
from tests.fixtures.till import hall, till  # noqa: F401  (fixtures)


@pytest.fixture(autouse=True)
def fresh_popularity(app):
    app.config["SEARCH_POPULAR_SECONDS"] = 0  # the search's "most sold" read fresh every time


def sell(app, product_ids: list[int], *, days_ago: int = 1) -> None:
    """One completed hall sale of one piece of each product, ``days_ago`` local days back."""
    day = local_today() - dt.timedelta(days=days_ago)
    with session_scope(app) as s:
        hall_id = s.scalar(select(Location.id).where(Location.code == "HALL"))
        sale = Sale(receipt_no=f"T-{uuid.uuid4().hex[:12]}", channel="hall", content_hash="0" * 64,
                    location_id=hall_id, sold_at=utcnow() - dt.timedelta(days=days_ago), local_date=day,
                    subtotal_fen=100 * len(product_ids), total_fen=100 * len(product_ids))
        sale.lines = [SaleLine(line_no=k, product_id=pid, qty_milli=1000, unit_price_fen=100, gross_fen=100,
                               net_fen=100, vat="9", certified=False) for k, pid in enumerate(product_ids, start=1)]
        s.add(sale)


def search(till, q, **params):  # noqa: F811
    response = till.get("/api/v1/products/search", q=q, **params)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def skus(till, q, **params):  # noqa: F811
    return [p["sku"] for p in search(till, q, **params)["items"]]


@pytest.fixture
def mjc(app, hall):  # noqa: F811
    """Products that 'mjc' finds in every rank."""
    with session_scope(app) as s:
        ids = {}
        for sku, name in [("MJC", "散装货"), ("MJC-2", "另一件"), ("ZA1", "梅江茶"), ("ZA2", "美酒茶叶"),
                          ("ZA3", "红梅江茶"), ("ZA4", "梅江茶饼"), ("ZB1", "毫不相干")]:
            ids[sku] = catalogue.create_product(s, sku=sku, name=name, price_fen=1000).id
    return ids


def test_exact_code_then_prefixes_then_fragments(till, mjc):  # noqa: F811
    #  exact sku, sku prefix, initials prefix (mjc, mjcy, mjcb by sku), initials fragment (hmjc)
    assert skus(till, "mjc") == ["MJC", "MJC-2", "ZA1", "ZA2", "ZA4", "ZA3"]
    # names: starting with 梅江 (by sku), then containing it; 1–2 Chinese characters are fragments too
    assert skus(till, "梅江") == ["ZA1", "ZA4", "ZA3"]
    # two Latin letters: prefixes only (hmjc does not start with mj)
    assert skus(till, "mj") == ["MJC", "MJC-2", "ZA1", "ZA2", "ZA4"]
    assert skus(till, "ＭＪＣ") == skus(till, "mjc")  # full-width letters as typed on a Chinese keyboard


def test_within_a_rank_the_most_sold_in_the_last_30_days_first(app, till, mjc):  # noqa: F811
    for _ in range(3):
        sell(app, [mjc["ZA4"]], days_ago=2)
    sell(app, [mjc["ZA2"]], days_ago=29)
    for _ in range(10):  # a lot, but before the window: does not count
        sell(app, [mjc["ZA1"]], days_ago=30)
    sell(app, [mjc["MJC-2"], mjc["ZA3"]])  # alone in its rank / a fragment: still after the prefixes
    assert skus(till, "mjc") == ["MJC", "MJC-2", "ZA4", "ZA2", "ZA1", "ZA3"]
    # the exact code stays first however much else sells
    for _ in range(5):
        sell(app, [mjc["ZA1"]])
    assert skus(till, "mjc") == ["MJC", "MJC-2", "ZA1", "ZA4", "ZA2", "ZA3"]
    assert skus(till, "za1") == ["ZA1"]


def test_a_void_drops_out_of_most_sold(app, till, mjc):  # noqa: F811
    sell(app, [mjc["ZA4"]])
    sell(app, [mjc["ZA2"]])
    sell(app, [mjc["ZA2"]])
    assert skus(till, "mjc")[2:5] == ["ZA2", "ZA4", "ZA1"]
    with session_scope(app) as s:
        for sale in s.scalars(select(Sale).join(SaleLine).where(SaleLine.product_id == mjc["ZA2"])):
            sale.status = SaleStatus.VOIDED
    assert skus(till, "mjc")[2:5] == ["ZA4", "ZA1", "ZA2"]


def test_results_are_capped_and_paged(app, till, hall):  # noqa: F811
    with session_scope(app) as s:
        s.execute(insert(Product), [{"sku": f"CAP{i:04d}", "name": f"封顶测试 {i}", "pinyin_initials": "fdcs",
                                     "price_fen": 100} for i in range(CAP + 15)])
    body = search(till, "封顶测试", per_page=100)
    assert (body["total"], body["pages"], len(body["items"])) == (CAP, 2, 100)
    assert body["items"][0]["sku"] == "CAP0000"
    last = search(till, "封顶测试", per_page=100, page=2)["items"]
    assert last[-1]["sku"] == f"CAP{CAP - 1:04d}"
    assert search(till, "封顶测试", per_page=100, page=3)["items"] == []
    assert search(till, "fdcs", per_page=5)["total"] == CAP
    # a product beyond the cut that sells comes first in its rank (read from the most sold, not the cut)
    with session_scope(app) as s:
        beyond = s.scalar(select(Product.id).where(Product.sku == f"CAP{CAP + 10:04d}"))
    sell(app, [beyond])
    body = search(till, "封顶测试", per_page=100)
    assert body["total"] == CAP
    assert [p["sku"] for p in body["items"][:2]] == [f"CAP{CAP + 10:04d}", "CAP0000"]
    assert skus(till, "fdcs", per_page=2) == [f"CAP{CAP + 10:04d}", "CAP0000"]


def test_the_index_follows_renames_barcodes_and_retirement(app, till, mjc):  # noqa: F811
    code = ean13("690000000017")
    with session_scope(app) as s:
        catalogue.update_product(s, mjc["ZA1"], name="苗岭野生蜂蜜")
        catalogue.add_barcode(s, mjc["ZB1"], code)
    assert "ZA1" not in skus(till, "梅江茶") and "ZA1" not in skus(till, "mjc")
    assert skus(till, "岭野生") == ["ZA1"] and skus(till, "mlys") == ["ZA1"] and skus(till, "lysf") == ["ZA1"]
    assert skus(till, code) == ["ZB1"]
    with session_scope(app) as s:
        catalogue.remove_barcode(s, s.scalar(select(Barcode.id).where(Barcode.code == code)))
        catalogue.set_active(s, mjc["ZA4"], False)
    assert skus(till, code) == []
    assert skus(till, "梅江茶") == ["ZA3"]  # 梅江茶饼 retired
    with session_scope(app) as s:
        catalogue.set_active(s, mjc["ZA4"], True)
    assert skus(till, "梅江茶") == ["ZA4", "ZA3"]


def test_rows_written_with_plain_sql_are_found(app, till, hall):  # noqa: F811
    """The bulk catalogue import writes with plain SQL: the FTS table follows through its triggers."""
    with session_scope(app) as s:
        s.execute(insert(Product), [{"sku": "BULK1", "name": "批量导入的刺梨汁", "pinyin_initials": "pldrdclz",
                                     "price_fen": 100}])
    assert skus(till, "刺梨汁") == ["BULK1"] and skus(till, "drdc") == ["BULK1"]
    with session_scope(app) as s:
        s.execute(Product.__table__.update().where(Product.sku == "BULK1").values(name="批量导入的猕猴桃"))
    assert skus(till, "刺梨汁") == [] and skus(till, "猕猴桃") == ["BULK1"]


def test_odd_queries_answer(till, mjc):  # noqa: F811
    for q in ["%", "_", "\\", "100%", "a_b", "'", "梅%江", " ", "x" * 120, "\u3000"]:
        body = search(till, q)
        assert body["total"] == len(body["items"]) <= 20
    assert search(till, "")["items"] == []
