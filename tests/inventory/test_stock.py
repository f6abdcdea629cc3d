"""Stock services (inventory.receiving, transfers, counts, expiry, reorder, stock_levels) on the real database: receiving with lots, transfers that
refuse to take a source below zero, FEFO, counts while sales go on, expiry and write-offs, the
ledger page's running balance, reorder points, document numbers, immutability of posted documents."""
from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from sqlalchemy import func, select

from inventory import counts, expiry, receiving, reorder, stock_documents, stock_levels, transfers
from inventory.documents import DocStatus, GoodsReceipt, StockCount, Transfer
from inventory.errors import InventoryError, NotFound, ValidationError
from inventory.ledger import InsufficientStock, move
from inventory.localtime import local_today
from inventory.models import AuditEvent, Lot, LotLevel, MoveReason, Product, StockMove, Unit
from tests.fixtures.stock import engine, level_of, levels, move_count, receive_fresh_then_age, s, world  # noqa: F401

TODAY = local_today()


def days(n: int) -> dt.date:
    return TODAY + dt.timedelta(days=n)


def _receive_posted(world, s, product_id, qty_milli, *, location="BASE", cost_fen=1000, **lot) -> GoodsReceipt:
    def receive(**lot):
        receipt = receiving.receive(s, supplier_id=world.supplier_id, location_id=world.loc[location],
                                    lines=[{"product_id": product_id, "qty_milli": qty_milli, "cost_fen": cost_fen, **lot}],
                                    actor_id=world.manager_id)
        return receiving.post_receipt(s, receipt.id, actor_id=world.manager_id)

    return receive_fresh_then_age(receive, s, lot)   # a lot given an expiry in the past has aged on the shelf


def _sell(world, s, product_id, qty_milli, location="HALL", lot_id=None):
    move(s, product_id=product_id, qty_milli=qty_milli, from_location_id=world.loc[location],
         to_location_id=world.loc["CUSTOMER"], reason=MoveReason.SALE, allow_negative_source=True, lot_id=lot_id)


def _audit(s, action):
    return s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


# --- receiving -------------------------------------------------------------------------------------

def test_receiving_creates_lots_with_expiry_and_moves_goods_from_the_supplier(world, s):
    tea = world.product(s, "梵净山翠峰茶 250g", shelf_life_days=540)
    rice = world.product(s, "散装松桃红米", unit=Unit.KG, sold_by_weight=True, shelf_life_days=365)
    produced = days(-10)
    receipt = receiving.receive(
        s, supplier_id=world.supplier_id, location_id=world.loc["BASE"], supplier_ref="SD-0012",
        lines=[
            {"product_id": tea.id, "qty_milli": 24000, "cost_fen": 9800, "lot_no": "CF-01", "produced_on": produced},
            {"product_id": tea.id, "qty_milli": 12000, "cost_fen": 9900, "lot_no": "CF-02", "expires_on": days(200)},
            {"product_id": rice.id, "qty_milli": 25500, "cost_fen": 1100, "produced_on": produced},
        ],
        actor_id=world.manager_id,
    )
    assert receipt.status == DocStatus.DRAFT
    assert re.fullmatch(rf"GR-{TODAY:%Y%m%d}-\d{{3}}", receipt.number)
    assert move_count(s) == 0  # a draft moves nothing
    assert receiving.receipt_total_fen(receipt) == 24 * 9800 + 12 * 9900 + (1100 * 25500 + 500) // 1000

    receiving.post_receipt(s, receipt.id, actor_id=world.manager_id)
    s.commit()

    assert receipt.status == DocStatus.POSTED and receipt.posted_by_id == world.manager_id
    lots = {lot.lot_no: lot for lot in s.scalars(select(Lot).where(Lot.product_id.in_([tea.id, rice.id])))}
    assert lots["CF-01"].expires_on == produced + dt.timedelta(days=540)  # production date + shelf life
    assert lots["CF-02"].expires_on == days(200)                          # given
    rice_lot = lots[f"{receipt.number}-03"]                              # no lot number: the receipt's
    assert rice_lot.expires_on == produced + dt.timedelta(days=365)
    assert level_of(s, world.loc["BASE"], tea.id) == 36000
    assert level_of(s, world.loc["SUPPLIER"], tea.id) == -36000
    assert level_of(s, world.loc["BASE"], rice.id) == 25500
    assert s.get(LotLevel, (world.loc["BASE"], lots["CF-01"].id)).qty_milli == 24000
    assert s.get(Product, tea.id).cost_fen == 9900  # the latest cost
    assert [e.entity_id for e in _audit(s, "receipt.post")] == [str(receipt.id)]


def test_a_posted_receipt_cannot_be_edited_or_posted_again(world, s):
    tea = world.product(s)
    receipt = _receive_posted(world, s, tea.id, 5000)
    s.commit()
    with pytest.raises(stock_documents.DocumentLocked):
        receiving.update_receipt_draft(s, receipt.id, lines=[{"product_id": tea.id, "qty_milli": 1000, "cost_fen": 1}])
    with pytest.raises(stock_documents.DocumentLocked):
        receiving.post_receipt(s, receipt.id, actor_id=None)
    # not even behind the services' back
    receipt.note = "改一下"
    with pytest.raises(stock_documents.DocumentLocked):
        s.flush()
    s.rollback()
    receipt = receiving.get_receipt(s, receipt.id)
    receipt.lines[0].qty_milli = 1000
    with pytest.raises(stock_documents.DocumentLocked):
        s.flush()
    s.rollback()
    s.delete(receiving.get_receipt(s, receipt.id))
    with pytest.raises(stock_documents.DocumentLocked):
        s.flush()
    s.rollback()
    assert level_of(s, world.loc["BASE"], tea.id) == 5000


def test_a_draft_receipt_can_be_changed(world, s):
    tea = world.product(s)
    receipt = receiving.receive(s, supplier_id=world.supplier_id, location_id=world.loc["BASE"],
                                lines=[{"product_id": tea.id, "qty_milli": 5000, "cost_fen": 100}], actor_id=None)
    receiving.update_receipt_draft(s, receipt.id, lines=[{"product_id": tea.id, "qty_milli": 7000, "cost_fen": 120}],
                                   note="少送两件已补", actor_id=None)
    receiving.post_receipt(s, receipt.id, actor_id=None)
    assert level_of(s, world.loc["BASE"], tea.id) == 7000
    assert [(ln.qty_milli, ln.cost_fen) for ln in receiving.get_receipt(s, receipt.id).lines] == [(7000, 120)]


def test_reversing_a_receipt_moves_the_goods_back(world, s):
    tea = world.product(s)
    receipt = _receive_posted(world, s, tea.id, 10000, lot_no="A", expires_on=days(100))
    lot_id = receipt.lines[0].lot_id
    reversal = receiving.reverse_receipt(s, receipt.id, actor_id=world.manager_id, note="送错货")
    s.commit()
    assert reversal.status == DocStatus.POSTED and reversal.reverses_id == receipt.id
    assert reversal.number != receipt.number
    assert level_of(s, world.loc["BASE"], tea.id) == 0
    assert level_of(s, world.loc["SUPPLIER"], tea.id) == 0
    assert s.get(LotLevel, (world.loc["BASE"], lot_id)).qty_milli == 0
    assert receipt.status == DocStatus.POSTED  # the original stays as it was
    with pytest.raises(stock_documents.DocumentLocked):
        receiving.reverse_receipt(s, receipt.id, actor_id=None)
    with pytest.raises(stock_documents.DocumentLocked):
        receiving.reverse_receipt(s, reversal.id, actor_id=None)


def test_reversal_is_refused_when_the_goods_are_gone(world, s):
    tea = world.product(s, "苗家腊香肠 500g")
    receipt = _receive_posted(world, s, tea.id, 10000)
    transfer = transfers.create_transfer(s, from_location_id=world.loc["BASE"], to_location_id=world.loc["HALL"],
                                         lines=[{"product_id": tea.id, "qty_milli": 4000}], actor_id=None)
    transfers.post_transfer(s, transfer.id, actor_id=None)
    s.commit()
    before = (move_count(s), levels(s, [tea.id]), s.scalar(select(func.count()).select_from(GoodsReceipt)))
    with pytest.raises(InsufficientStock) as refused:
        receiving.reverse_receipt(s, receipt.id, actor_id=None, note="退货")
    assert "苗家腊香肠 500g" in str(refused.value) and receipt.number in str(refused.value)
    assert (move_count(s), levels(s, [tea.id]), s.scalar(select(func.count()).select_from(GoodsReceipt))) == before


@pytest.mark.parametrize("line, field", [
    ({"qty_milli": 0}, "lines-0-qty_milli"),
    ({"qty_milli": -1000}, "lines-0-qty_milli"),
    ({"qty_milli": 1500}, "lines-0-qty_milli"),       # half a piece of counted goods
    ({"qty_milli": "3"}, "lines-0-qty_milli"),        # text where a number belongs
    ({"qty_milli": 1.5}, "lines-0-qty_milli"),        # a float
    ({"cost_fen": -1}, "lines-0-cost_fen"),
    ({"produced_on": "2026-13-01"}, "lines-0-produced_on"),
    ({"produced_on": dt.date(2026, 1, 10), "expires_on": dt.date(2026, 1, 9)}, "lines-0-expires_on"),
    ({"produced_on": TODAY + dt.timedelta(days=3)}, "lines-0-produced_on"),
    ({"product_id": "abc"}, "lines-0-product_id"),
])
def test_receiving_refuses_bad_lines_with_a_chinese_message(world, s, line, field):
    tea = world.product(s)
    with pytest.raises(ValidationError) as refused:
        receiving.receive(s, supplier_id=world.supplier_id, location_id=world.loc["BASE"],
                          lines=[{"product_id": tea.id, "qty_milli": 1000, "cost_fen": 100, **line}], actor_id=None)
    assert refused.value.field == field
    assert re.search(r"[\u4e00-\u9fff]", str(refused.value))
    assert s.scalar(select(func.count()).select_from(GoodsReceipt)) == 0


def test_receiving_refuses_unknown_things_and_virtual_locations(world, s):
    tea = world.product(s)
    line = [{"product_id": tea.id, "qty_milli": 1000, "cost_fen": 100}]
    with pytest.raises(NotFound):
        receiving.receive(s, supplier_id=99999, location_id=world.loc["BASE"], lines=line, actor_id=None)
    with pytest.raises(NotFound):
        receiving.receive(s, supplier_id=world.supplier_id, location_id=world.loc["BASE"],
                          lines=[{"product_id": 99999, "qty_milli": 1000, "cost_fen": 1}], actor_id=None)
    with pytest.raises(ValidationError, match="虚拟位置"):
        receiving.receive(s, supplier_id=world.supplier_id, location_id=world.loc["LOSS"], lines=line, actor_id=None)
    with pytest.raises(ValidationError, match="至少"):
        receiving.receive(s, supplier_id=world.supplier_id, location_id=world.loc["BASE"], lines=[], actor_id=None)


def test_a_lot_number_received_again_must_keep_its_expiry(world, s):
    tea = world.product(s)
    _receive_posted(world, s, tea.id, 1000, lot_no="L7", expires_on=days(90))
    _receive_posted(world, s, tea.id, 2000, lot_no="L7", expires_on=days(90))  # same lot, same expiry: fine
    assert s.scalar(select(func.count()).select_from(Lot).where(Lot.product_id == tea.id)) == 1
    with pytest.raises(ValidationError, match="L7"):
        receiving.receive(s, supplier_id=world.supplier_id, location_id=world.loc["BASE"], actor_id=None,
                          lines=[{"product_id": tea.id, "qty_milli": 1000, "cost_fen": 1, "lot_no": "L7",
                              "expires_on": days(91)}])


def test_document_numbers_count_up_by_local_day(world, s):
    tea = world.product(s)
    numbers = [receiving.receive(s, supplier_id=world.supplier_id, location_id=world.loc["BASE"], actor_id=None,
                                 lines=[{"product_id": tea.id, "qty_milli": 1000, "cost_fen": 1}]).number
               for _ in range(3)]
    stem = f"GR-{TODAY:%Y%m%d}-"
    assert numbers == [f"{stem}001", f"{stem}002", f"{stem}003"]
    t = transfers.create_transfer(s, from_location_id=world.loc["BASE"], to_location_id=world.loc["HALL"],
                                  lines=[{"product_id": tea.id, "qty_milli": 1000}], actor_id=None)
    c = counts.start_count(s, location_id=world.loc["HALL"], actor_id=None)
    assert t.number == f"TR-{TODAY:%Y%m%d}-001" and c.number == f"CT-{TODAY:%Y%m%d}-001"
    other_day = TODAY - dt.timedelta(days=400)  # a day with no documents yet
    assert stock_documents.next_document_number(s, GoodsReceipt, other_day) == f"GR-{other_day:%Y%m%d}-001"


def test_a_number_taken_meanwhile_is_skipped(world, s, monkeypatch):
    """Another transaction took the number between our look-up and our insert: the unique
    constraint refuses it and the next number is taken."""
    tea = world.product(s)
    stem = f"GR-{TODAY:%Y%m%d}-"
    first = receiving.receive(s, supplier_id=world.supplier_id, location_id=world.loc["BASE"], actor_id=None,
                              lines=[{"product_id": tea.id, "qty_milli": 1000, "cost_fen": 1}])
    calls = []
    real = stock_documents.next_document_number

    def stale(session, model, day=None):
        calls.append(1)
        return first.number if len(calls) == 1 else real(session, model, day)

    monkeypatch.setattr(stock_documents, "next_document_number", stale)
    second = receiving.receive(s, supplier_id=world.supplier_id, location_id=world.loc["BASE"], actor_id=None,
                               lines=[{"product_id": tea.id, "qty_milli": 1000, "cost_fen": 1}])
    assert (first.number, second.number) == (f"{stem}001", f"{stem}002")
    assert len(second.lines) == 1
    s.commit()


# --- FEFO and transfers --------------------------------------------------------------------------

def test_fefo_takes_the_earliest_expiry_first_and_lots_without_expiry_last(world, s):
    tea = world.product(s)
    _receive_posted(world, s, tea.id, 3000, lot_no="LATE", expires_on=days(300))
    _receive_posted(world, s, tea.id, 2000, lot_no="NONE")
    _receive_posted(world, s, tea.id, 4000, lot_no="SOON", expires_on=days(20))
    _receive_posted(world, s, tea.id, 1000, lot_no="MID", expires_on=days(100))
    _receive_posted(world, s, tea.id, 1000)  # unlotted
    lot = {lt.lot_no: lt.id for lt in s.scalars(select(Lot).where(Lot.product_id == tea.id))}
    base = world.loc["BASE"]
    assert expiry.fefo_allocate(s, location_id=base, product_id=tea.id, qty_milli=3000) == [(lot["SOON"], 3000)]
    assert expiry.fefo_allocate(s, location_id=base, product_id=tea.id, qty_milli=6000) == [
        (lot["SOON"], 4000), (lot["MID"], 1000), (lot["LATE"], 1000)]
    assert expiry.fefo_allocate(s, location_id=base, product_id=tea.id, qty_milli=11000) == [
        (lot["SOON"], 4000), (lot["MID"], 1000), (lot["LATE"], 3000), (lot["NONE"], 2000), (None, 1000)]
    assert expiry.fefo_allocate(s, location_id=world.loc["HALL"], product_id=tea.id, qty_milli=1000) == [(None, 1000)]


def test_a_transfer_is_allocated_fefo_and_printed_as_a_pick_list(world, s):
    tea = world.product(s, "梵净山翠峰茶 250g")
    _receive_posted(world, s, tea.id, 3000, lot_no="B", expires_on=days(200))
    _receive_posted(world, s, tea.id, 2000, lot_no="A", expires_on=days(50))
    transfer = transfers.create_transfer(s, from_location_id=world.loc["BASE"], to_location_id=world.loc["HALL-STORE"],
                                         lines=[{"product_id": tea.id, "qty_milli": 4000}], note="补仓库",
                                         actor_id=world.manager_id)
    picks = transfers.pick_list(s, transfer.id)
    assert [(p["lot_no"], p["expires_on"], p["qty_milli"], p["qty"]) for p in picks] == [
        ("A", days(50), 2000, "2"), ("B", days(200), 2000, "2")]
    assert {p["sku"] for p in picks} == {tea.sku} and picks[0]["from_location_name"] == "物流基地"
    transfers.post_transfer(s, transfer.id, actor_id=world.manager_id)
    s.commit()
    assert level_of(s, world.loc["BASE"], tea.id) == 1000
    assert level_of(s, world.loc["HALL-STORE"], tea.id) == 4000
    lots = {lt.lot_no: lt.id for lt in s.scalars(select(Lot).where(Lot.product_id == tea.id))}
    assert s.get(LotLevel, (world.loc["HALL-STORE"], lots["A"])).qty_milli == 2000
    assert s.get(LotLevel, (world.loc["BASE"], lots["B"])).qty_milli == 1000
    assert _audit(s, "transfer.post")


def test_two_lines_of_one_product_do_not_allocate_the_same_units_twice(world, s):
    tea = world.product(s)
    _receive_posted(world, s, tea.id, 2000, lot_no="A", expires_on=days(50))
    _receive_posted(world, s, tea.id, 2000, lot_no="B", expires_on=days(80))
    transfer = transfers.create_transfer(s, from_location_id=world.loc["BASE"], to_location_id=world.loc["HALL"],
                                         lines=[{"product_id": tea.id, "qty_milli": 1000},
                                            {"product_id": tea.id, "qty_milli": 2000}], actor_id=None)
    assert sorted((ln.lot.lot_no, ln.qty_milli) for ln in transfer.lines) == [("A", 2000), ("B", 1000)]
    transfers.post_transfer(s, transfer.id, actor_id=None)


def test_a_transfer_that_would_take_the_source_below_zero_is_refused_and_writes_nothing(world, s):
    tea = world.product(s, "梵净山翠峰茶 250g")
    pork = world.product(s, "苗家腊肉 500g")
    _receive_posted(world, s, tea.id, 10000)
    _receive_posted(world, s, pork.id, 2000)
    transfer = transfers.create_transfer(s, from_location_id=world.loc["BASE"], to_location_id=world.loc["HALL"],
                                         lines=[{"product_id": tea.id, "qty_milli": 5000},
                                            {"product_id": pork.id, "qty_milli": 3000}], actor_id=None)
    s.commit()
    before = (move_count(s), levels(s, [tea.id, pork.id]), s.scalar(select(func.count()).select_from(AuditEvent)))

    with pytest.raises(InsufficientStock) as refused:
        transfers.post_transfer(s, transfer.id, actor_id=None)
    message = str(refused.value)
    assert "苗家腊肉 500g" in message and "库存不足" in message and "2" in message and "3" in message
    assert isinstance(refused.value, InventoryError)

    # nothing written, even in the caller's transaction, and the transfer is still a draft
    assert (move_count(s), levels(s, [tea.id, pork.id]),
            s.scalar(select(func.count()).select_from(AuditEvent))) == before
    assert s.get(Transfer, transfer.id).status == DocStatus.DRAFT
    s.commit()
    assert (move_count(s), levels(s, [tea.id, pork.id])) == before[:2]
    assert transfers.get_transfer(s, transfer.id).status == DocStatus.DRAFT


def test_transfers_only_between_two_real_locations(world, s):
    tea = world.product(s)
    line = [{"product_id": tea.id, "qty_milli": 1000}]
    with pytest.raises(ValidationError):
        transfers.create_transfer(s, from_location_id=world.loc["BASE"], to_location_id=world.loc["BASE"], lines=line,
                                  actor_id=None)
    with pytest.raises(ValidationError, match="虚拟"):
        transfers.create_transfer(s, from_location_id=world.loc["SUPPLIER"], to_location_id=world.loc["HALL"],
                                  lines=line, actor_id=None)
    other = world.product(s, "别的商品")
    _receive_posted(world, s, other.id, 1000, lot_no="X")
    other_lot = s.scalar(select(Lot.id).where(Lot.product_id == other.id))
    with pytest.raises(ValidationError, match="批次"):
        transfers.create_transfer(s, from_location_id=world.loc["BASE"], to_location_id=world.loc["HALL"],
                                  lines=[{"product_id": tea.id, "qty_milli": 1000, "lot_id": other_lot}], actor_id=None)


def test_a_posted_transfer_is_posted_once(world, s):
    tea = world.product(s)
    _receive_posted(world, s, tea.id, 5000)
    transfer = transfers.create_transfer(s, from_location_id=world.loc["BASE"], to_location_id=world.loc["HALL"],
                                         lines=[{"product_id": tea.id, "qty_milli": 1000}], actor_id=None)
    transfers.post_transfer(s, transfer.id, actor_id=None)
    with pytest.raises(stock_documents.DocumentLocked):
        transfers.post_transfer(s, transfer.id, actor_id=None)
    with pytest.raises(stock_documents.DocumentLocked):
        transfers.cancel_transfer(s, transfer.id, actor_id=None)
    assert level_of(s, world.loc["HALL"], tea.id) == 1000
    draft = transfers.create_transfer(s, from_location_id=world.loc["BASE"], to_location_id=world.loc["HALL"],
                                      lines=[{"product_id": tea.id, "qty_milli": 1000}], actor_id=None)
    transfers.cancel_transfer(s, draft.id, actor_id=None)
    with pytest.raises(stock_documents.DocumentLocked):
        transfers.post_transfer(s, draft.id, actor_id=None)
    page = transfers.list_transfers(s)
    assert page.total == 2 and [t.id for t in page.items] == [draft.id, transfer.id]


# --- counts --------------------------------------------------------------------------------------

def test_a_count_is_against_the_book_level_when_each_line_was_counted(world, s):
    """The shelf holds 10 bags of tea and 6 of pork; the counter finds 8 bags of tea; a
    customer buys 3 bags of tea before the count is posted. The adjustment is −2 (counted − book
    at count time), not −5, and the shelf ends at 8 − 3 = 5."""
    tea = world.product(s, "梵净山翠峰茶 250g")
    pork = world.product(s, "苗家腊肉 500g")
    hall = world.loc["HALL"]
    _receive_posted(world, s, tea.id, 10000, location="HALL-STORE")
    _receive_posted(world, s, pork.id, 6000, location="HALL-STORE")
    for pid, qty in ((tea.id, 10000), (pork.id, 6000)):
        t = transfers.create_transfer(s, from_location_id=world.loc["HALL-STORE"], to_location_id=hall,
                                      lines=[{"product_id": pid, "qty_milli": qty}], actor_id=None)
        transfers.post_transfer(s, t.id, actor_id=None)
    s.commit()

    count = counts.start_count(s, location_id=hall, scope="货架 A", actor_id=world.manager_id)
    counts.record_count_line(s, count.id, product_id=tea.id, counted_qty_milli=8000, actor_id=world.manager_id)
    s.commit()
    _sell(world, s, tea.id, 3000)  # the hall keeps selling while the rest is counted
    s.commit()
    counts.record_count_line(s, count.id, product_id=pork.id, counted_qty_milli=7000, actor_id=world.manager_id)
    s.commit()

    rows = {r["sku"]: r for r in counts.count_variances(s, count.id)}
    assert (rows[tea.sku]["counted"], rows[tea.sku]["book"], rows[tea.sku]["variance"]) == (8000, 10000, -2000)
    assert rows[tea.sku]["level_now"] == 7000
    assert (rows[pork.sku]["counted"], rows[pork.sku]["book"], rows[pork.sku]["variance"]) == (7000, 6000, 1000)

    counts.post_count(s, count.id, reason="月末盘点", actor_id=world.manager_id)
    s.commit()
    assert s.get(StockCount, count.id).status == DocStatus.POSTED
    adjustments = dict(s.execute(
        select(StockMove.product_id, func.sum(StockMove.qty_milli))
        .where(StockMove.ref_type == "stock_count", StockMove.ref_id == count.id, StockMove.from_location_id == hall)
        .group_by(StockMove.product_id)).all())
    assert adjustments == {tea.id: 2000}
    assert level_of(s, hall, tea.id) == 8000 - 3000
    assert level_of(s, hall, pork.id) == 7000
    assert level_of(s, world.loc["COUNT-ADJ"], tea.id) == 2000
    assert level_of(s, world.loc["COUNT-ADJ"], pork.id) == -1000
    event = _audit(s, "stock.count_post")[-1]
    assert event.user_id == world.manager_id
    assert {ln["sku"]: ln["variance"] for ln in json.loads(event.after)["lines"]} == {tea.sku: -2000, pork.sku: 1000}


def test_counting_a_product_again_replaces_its_line_and_book(world, s):
    tea = world.product(s)
    _receive_posted(world, s, tea.id, 5000, location="HALL")
    count = counts.start_count(s, location_id=world.loc["HALL"], actor_id=None)
    counts.record_count_line(s, count.id, product_id=tea.id, counted_qty_milli=4000, actor_id=None)
    _sell(world, s, tea.id, 1000)
    counts.record_count_line(s, count.id, product_id=tea.id, counted_qty_milli=4000, actor_id=None)
    [row] = counts.count_variances(s, count.id)
    assert (row["counted"], row["book"], row["variance"]) == (4000, 4000, 0)
    counts.post_count(s, count.id, reason="复盘", actor_id=None)
    assert level_of(s, world.loc["HALL"], tea.id) == 4000
    with pytest.raises(stock_documents.DocumentLocked):
        counts.record_count_line(s, count.id, product_id=tea.id, counted_qty_milli=1000, actor_id=None)


def test_a_counted_shortage_is_taken_from_the_earliest_lots(world, s):
    tea = world.product(s)
    _receive_posted(world, s, tea.id, 3000, location="HALL", lot_no="A", expires_on=days(10))
    _receive_posted(world, s, tea.id, 3000, location="HALL", lot_no="B", expires_on=days(90))
    count = counts.start_count(s, location_id=world.loc["HALL"], actor_id=None)
    counts.record_count_line(s, count.id, product_id=tea.id, counted_qty_milli=2000, actor_id=None)
    counts.post_count(s, count.id, reason="盘亏", actor_id=None)
    lots = {lt.lot_no: lt.id for lt in s.scalars(select(Lot).where(Lot.product_id == tea.id))}
    assert s.get(LotLevel, (world.loc["HALL"], lots["A"])).qty_milli == 0
    assert s.get(LotLevel, (world.loc["HALL"], lots["B"])).qty_milli == 2000
    assert level_of(s, world.loc["HALL"], tea.id) == 2000


def test_count_mistakes_are_refused(world, s):
    tea = world.product(s)
    rice = world.product(s, "散装松桃红米", unit=Unit.KG, sold_by_weight=True)
    count = counts.start_count(s, location_id=world.loc["HALL"], actor_id=None)
    with pytest.raises(ValidationError):
        counts.record_count_line(s, count.id, product_id=tea.id, counted_qty_milli=-1000, actor_id=None)
    with pytest.raises(ValidationError):
        counts.record_count_line(s, count.id, product_id=tea.id, counted_qty_milli=2500, actor_id=None)
    counts.record_count_line(s, count.id, product_id=rice.id, counted_qty_milli=2500, actor_id=None)  # 2.5 kg
    counts.record_count_line(s, count.id, product_id=tea.id, counted_qty_milli=0, actor_id=None)  # none left
    with pytest.raises(ValidationError, match="原因"):
        counts.post_count(s, count.id, reason="  ", actor_id=None)
    with pytest.raises(NotFound):
        counts.record_count_line(s, 99999, product_id=tea.id, counted_qty_milli=0, actor_id=None)
    with pytest.raises(ValidationError, match="虚拟"):
        counts.start_count(s, location_id=world.loc["CUSTOMER"], actor_id=None)
    counts.cancel_count(s, count.id, actor_id=None)
    assert s.get(StockCount, count.id).status == DocStatus.CANCELLED
    assert move_count(s) == 0


# --- expiry and write-offs -----------------------------------------------------------------------

def test_expiring_lots_within_n_days_per_location(world, s):
    tea = world.product(s, "梵净山翠峰茶 250g")
    honey = world.product(s, "梵净山蜂蜜 500g")
    _receive_posted(world, s, tea.id, 3000, lot_no="OLD", expires_on=days(-2))
    _receive_posted(world, s, tea.id, 2000, lot_no="SOON", expires_on=days(5), location="HALL")
    _receive_posted(world, s, honey.id, 4000, lot_no="H1", expires_on=days(25))
    _receive_posted(world, s, honey.id, 4000, lot_no="H2", expires_on=days(400))
    _receive_posted(world, s, honey.id, 1000, lot_no="H0")  # no expiry

    rows = expiry.expiring_lots(s, today=TODAY, within_days=30)
    assert [(r["lot_no"], r["location_name"], r["qty_milli"], r["days_left"], r["expired"]) for r in rows] == [
        ("OLD", "物流基地", 3000, -2, True), ("SOON", "卖场", 2000, 5, False), ("H1", "物流基地", 4000, 25, False)]
    assert [r["lot_no"] for r in expiry.expiring_lots(s, today=TODAY, within_days=7)] == ["OLD", "SOON"]
    assert [r["lot_no"] for r in expiry.expiring_lots(s, today=TODAY, within_days=30,
                                                      location_id=world.loc["HALL"])] == ["SOON"]
    with pytest.raises(ValidationError):
        expiry.expiring_lots(s, today=TODAY, within_days=-1)


def test_an_expired_lot_is_written_off_to_loss_with_an_audit_event(world, s):
    tea = world.product(s, "梵净山翠峰茶 250g")
    _receive_posted(world, s, tea.id, 3000, lot_no="OLD", expires_on=days(-1))
    lot_id = s.scalar(select(Lot.id).where(Lot.product_id == tea.id))
    result = expiry.write_off(s, location_id=world.loc["BASE"], product_id=tea.id, lot_id=lot_id, qty_milli=3000,
                              reason="expiry", note="过期下架", actor_id=world.manager_id)
    s.commit()
    assert level_of(s, world.loc["BASE"], tea.id) == 0
    assert level_of(s, world.loc["LOSS"], tea.id) == 3000
    moved = s.get(StockMove, result.move_id)
    assert (moved.reason, moved.lot_id, moved.to_location_id) == (MoveReason.EXPIRY, lot_id, world.loc["LOSS"])
    [event] = _audit(s, "stock.write_off")
    after = json.loads(event.after)
    assert (event.user_id, after["reason"], after["qty_milli"], after["lot_no"]) == (world.manager_id, "expiry", 3000, "OLD")
    assert expiry.expiring_lots(s, today=TODAY, within_days=30) == []


def test_write_off_refuses_more_than_there_is_and_bad_reasons(world, s):
    tea = world.product(s, "竹荪 50g")
    _receive_posted(world, s, tea.id, 2000)
    with pytest.raises(InsufficientStock, match="竹荪 50g"):
        expiry.write_off(s, location_id=world.loc["BASE"], product_id=tea.id, qty_milli=3000, reason="damage",
                         actor_id=None)
    with pytest.raises(ValidationError):
        expiry.write_off(s, location_id=world.loc["BASE"], product_id=tea.id, qty_milli=1000, reason="stolen",
                         actor_id=None)
    with pytest.raises(ValidationError, match="说明"):
        expiry.write_off(s, location_id=world.loc["BASE"], product_id=tea.id, qty_milli=1000, reason="other",
                         actor_id=None)
    expiry.write_off(s, location_id=world.loc["BASE"], product_id=tea.id, qty_milli=1000, reason="damage",
                     note="包装破损", actor_id=None)
    assert level_of(s, world.loc["BASE"], tea.id) == 1000
    assert len(_audit(s, "stock.write_off")) == 1


# --- the ledger's read side ------------------------------------------------------------------------

def test_product_ledger_running_balance_matches_the_level(world, s):
    tea = world.product(s)
    _receive_posted(world, s, tea.id, 10000)
    for qty in (3000, 2000):
        t = transfers.create_transfer(s, from_location_id=world.loc["BASE"], to_location_id=world.loc["HALL"],
                                      lines=[{"product_id": tea.id, "qty_milli": qty}], actor_id=None)
        transfers.post_transfer(s, t.id, actor_id=None)
    for _ in range(7):
        _sell(world, s, tea.id, 1000)  # the hall goes to −2
    s.commit()

    page = stock_levels.product_ledger(s, tea.id, location_id=world.loc["HALL"])
    assert page.total == 9
    assert [e["delta_milli"] for e in page.items][:3] == [-1000, -1000, -1000]  # newest first
    assert page.items[0]["running_balance"] == level_of(s, world.loc["HALL"], tea.id) == -2000
    assert page.items[-1]["running_balance"] == 3000 and page.items[-1]["other_location_name"] == "物流基地"

    everywhere = stock_levels.product_ledger(s, tea.id)  # real locations only
    latest = {}
    for e in everywhere.items:
        latest.setdefault(e["location_id"], e["running_balance"])
    assert latest == {world.loc["BASE"]: 5000, world.loc["HALL"]: -2000}
    with_virtual = stock_levels.product_ledger(s, tea.id, include_virtual=True)
    assert with_virtual.total == 2 * 10  # each move seen from both ends
    paged = stock_levels.product_ledger(s, tea.id, page=2, per_page=4)
    assert paged.page == 2 and len(paged.items) == 4 and paged.pages == 3


def test_stock_at_location_lists_levels_and_reorder_points(world, s):
    tea = world.product(s, "梵净山翠峰茶 250g")
    honey = world.product(s, "梵净山蜂蜜 500g")
    rice = world.product(s, "松桃红米 5kg")
    _receive_posted(world, s, tea.id, 5000, location="HALL", cost_fen=9800)
    _receive_posted(world, s, honey.id, 1000, location="HALL")
    reorder.set_reorder_point(s, location_id=world.loc["HALL"], product_id=honey.id, min_qty_milli=3000,
                              actor_id=world.manager_id)
    reorder.set_reorder_point(s, location_id=world.loc["HALL"], product_id=rice.id, min_qty_milli=2000,
                              actor_id=world.manager_id)
    page = stock_levels.stock_at_location(s, world.loc["HALL"])
    rows = {r["sku"]: r for r in page.items}
    assert page.total == 3
    assert (rows[tea.sku]["qty_milli"], rows[tea.sku]["below_reorder"], rows[tea.sku]["value_fen"]) == (5000, False, 49000)
    assert (rows[honey.sku]["qty_milli"], rows[honey.sku]["below_reorder"]) == (1000, True)
    assert (rows[rice.sku]["qty_milli"], rows[rice.sku]["min_qty_milli"]) == (0, 2000)
    assert [r["sku"] for r in stock_levels.stock_at_location(s, world.loc["HALL"], q="蜂蜜").items] == [honey.sku]
    assert [r["sku"] for r in stock_levels.stock_at_location(s, world.loc["HALL"], q=tea.sku).items] == [tea.sku]
    assert stock_levels.stock_at_location(s, world.loc["HALL"], q="%").total == 0
    assert len(_audit(s, "stock.reorder_point")) == 2
    reorder.set_reorder_point(s, location_id=world.loc["HALL"], product_id=rice.id, min_qty_milli=None, actor_id=None)
    assert stock_levels.stock_at_location(s, world.loc["HALL"]).total == 2


def test_lists_of_documents_are_paged_newest_first(world, s):
    tea = world.product(s)
    ids = [receiving.receive(s, supplier_id=world.supplier_id, location_id=world.loc["BASE"], actor_id=None,
                             lines=[{"product_id": tea.id, "qty_milli": 1000, "cost_fen": 1}]).id for _ in range(3)]
    page = receiving.list_receipts(s, 1, per_page=2)
    assert (page.total, [r.id for r in page.items], page.has_next) == (3, ids[:0:-1], True)
    assert receiving.list_receipts(s, status=DocStatus.POSTED).total == 0
    c = counts.start_count(s, location_id=world.loc["HALL"], actor_id=None)
    assert [x.id for x in counts.list_counts(s).items] == [c.id]
    with pytest.raises(NotFound):
        receiving.get_receipt(s, 99999)
