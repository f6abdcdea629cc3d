"""Issue 13: ``songtao import-stock FILE --location CODE`` — an opening count posted as ONE stock
document through the ledger; all rows or none, with every row's errors."""
from __future__ import annotations

import datetime as dt
import io

import pytest
from click.testing import CliRunner
from openpyxl import Workbook
from sqlalchemy import func, select

from inventory import catalogue, ledger
from inventory.documents import DocStatus, GoodsReceipt, GoodsReceiptLine
from inventory.localtime import local_today
from inventory.locations import ensure_bookkeeping_locations
from inventory.models import Barcode, Location, LocationKind, Lot, StockMove, Supplier, Unit
from inventory.opening_stock import OPENING_SUPPLIER, StockRefused, import_opening_stock, plan_lines
from pos.cli import main
from pos.core.db import session_scope
from pos.hall import setup

LATER = (local_today() + dt.timedelta(days=400)).isoformat()


@pytest.fixture
def shop(app):
    with session_scope(app) as s:
        ensure_bookkeeping_locations(s)
        setup.add_location(s, code="BASE", kind="base", name="物流基地")
        setup.add_location(s, code="OLD", kind="storeroom", name="旧仓库")
        setup.set_location_active(s, "OLD", False)
        tea = catalogue.create_product(s, sku="TEA", name="梵净山翠峰茶", price_fen=3800)
        s.add(Barcode(product_id=tea.id, code="6901234567892", kind="ean13"))
        catalogue.create_product(s, sku="PORK", name="腊肉", price_fen=9800, unit=Unit.KG, sold_by_weight=True)
        tea.cost_fen = 2000
    return app


def moves(app) -> int:
    with session_scope(app) as s:
        return s.scalar(select(func.count()).select_from(StockMove))


def level(app, code: str, sku: str) -> int:
    with session_scope(app) as s:
        loc = s.scalar(select(Location.id).where(Location.code == code))
        product = s.scalar(select(catalogue.Product.id).where(catalogue.Product.sku == sku))
        return ledger.level(s, loc, product)


def test_a_count_is_posted_as_one_document_through_the_ledger(shop):
    data = (f"商品编码,条码,数量,批号,到期日,进价\nTEA,,20,L1,{LATER},21.50\n,6901234567892,5,L2,{LATER},\n"
            "PORK,,12.345,,,60\n").encode("utf-8-sig")
    with session_scope(shop) as s:
        result = import_opening_stock(s, "base.csv", data, location="base")
    assert result.lines == 3 and result.location == "BASE"
    assert level(shop, "BASE", "TEA") == 25_000 and level(shop, "BASE", "PORK") == 12_345
    with session_scope(shop) as s:
        receipt = s.scalars(select(GoodsReceipt)).one()
        assert receipt.status == DocStatus.POSTED and receipt.number == result.number
        assert s.get(Supplier, receipt.supplier_id).name == OPENING_SUPPLIER
        assert s.get(Supplier, receipt.supplier_id).active is False  # never offered for an ordinary delivery
        costs = sorted(s.scalars(select(GoodsReceiptLine.cost_fen)))
        assert costs == [2000, 2150, 6000]  # an empty cost: the product's last cost
        assert sorted(s.scalars(select(Lot.lot_no))) == ["L1", "L2"]
        assert {m.ref_type for m in s.scalars(select(StockMove))} == {"goods_receipt"}
        assert ledger.unbalanced(s) == []


def test_a_bad_file_lists_every_rows_errors_and_writes_nothing(shop):
    data = ("sku,qty,lot,expires_on,unit_cost\n"
            "TEA,1.5,A,,\n"               # pieces: whole numbers only
            "NOPE,3,,,\n"                 # unknown product
            "PORK,,P0,,\n"                # no quantity
            "TEA,2,B,2020-01-01,\n"       # expired
            "TEA,2,C,,-1\n"               # negative cost
            "PORK,1,,,\nPORK,1,,,\n"      # the same product and lot twice
            ).encode()
    with session_scope(shop) as s:
        _lines, errors = plan_lines(s, "bad.csv", data)
    described = [e.describe() for e in errors]
    assert described[0] == "第 2 行「qty」：按件销售的商品数量必须是整数"
    assert "第 3 行「sku」：找不到商品：NOPE" in described
    assert "第 4 行「qty」：请填写数量" in described
    assert any(d.startswith("第 5 行「expires_on」：已于 2020-01-01 过期") for d in described)
    assert any(d.startswith("第 6 行「unit_cost」") for d in described)
    assert "第 8 行：与第 7 行重复（同一商品、同一批号）" in described
    with session_scope(shop) as s, pytest.raises(StockRefused):
        import_opening_stock(s, "bad.csv", data, location="BASE")
    assert moves(shop) == 0
    with session_scope(shop) as s:
        assert s.scalar(select(func.count()).select_from(GoodsReceipt)) == 0


def test_an_xlsx_count_and_the_command(shop, tmp_path):
    book = Workbook()
    book.active.append(["条码", "数量"])
    book.active.append(["6901234567892", 7])
    out = io.BytesIO()
    book.save(out)
    file = tmp_path / "count.xlsx"
    file.write_bytes(out.getvalue())
    runner = CliRunner()
    env = {"DATABASE_URL": shop.config["DATABASE_URL"], "SECRET_KEY": "x"}
    done = runner.invoke(main, ["import-stock", str(file), "--location", "BASE"], env=env)
    assert done.exit_code == 0, done.output
    assert "期初库存已入账" in done.output and level(shop, "BASE", "TEA") == 7_000
    for location, message in (("SUPPLIER", "不能存放货物"), ("OLD", "已停用"), ("NOWHERE", "位置不存在")):
        refused = runner.invoke(main, ["import-stock", str(file), "--location", location], env=env)
        assert refused.exit_code == 1 and message in refused.output, (location, refused.output)
    bad = tmp_path / "bad.csv"
    bad.write_text("sku,qty\nNOPE,1\nTEA,x\n", encoding="utf-8")
    refused = runner.invoke(main, ["import-stock", str(bad), "--location", "BASE"], env=env)
    assert refused.exit_code == 1
    assert "第 2 行「sku」：找不到商品：NOPE" in refused.output and "第 3 行「qty」" in refused.output
    assert "导入被拒绝：2 处错误，未写入任何数据" in refused.output
    assert level(shop, "BASE", "TEA") == 7_000
    no_qty = tmp_path / "noqty.csv"
    no_qty.write_text("sku\nTEA\n", encoding="utf-8")
    missing = runner.invoke(main, ["import-stock", str(no_qty), "--location", "BASE"], env=env)
    assert missing.exit_code == 1 and "表格缺少「数量」（qty）列" in missing.output
    with session_scope(shop) as s:
        assert s.scalar(select(Location.kind).where(Location.code == "BASE")) == LocationKind.BASE
