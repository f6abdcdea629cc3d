"""A group order's whole life through the manager's forms, on a real database: confirm → pick →
partial delivery → the rest → payment, a confirmation the base cannot hold, cancel and return,
closing the remainder; the printable order confirmation and delivery note with the certified
mark, and the open balances.

Every step is checked against the database (stock levels, sales, payments), not only the page.
The pages, buyers, entering and importing orders are in tests/group/test_group_pages.py; the
world is in tests/fixtures/group.py."""
from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import func, select

from inventory.localtime import local_today
from inventory.models import (
    StockMove,
)
from pos.group.models import GroupOrder, GroupPayment
from pos.models import Refund, Sale
from tests.fixtures.group import (  # noqa: F401  (hall, manager: fixtures)
    HONEY,
    HONEY_PRICE,
    RICE,
    TEA,
    TEA_PRICE,
    act,
    assert_refused,
    count,
    deliver_inputs,
    dispatch_id,
    done,
    flashes,
    hall,
    html,
    level,
    line_ids,
    manager,
    new_order,
    order_status,
    read,
    row_html,
    writes,
)


# --- the whole life through the forms ---------------------------------------------------------------


def test_an_order_from_draft_to_paid_through_the_forms(app, client, manager):
    tea, rice = manager.tea, manager.rice
    order_id = new_order(client, manager, [(TEA, "6"), (RICE, "2.5")])
    total = 6 * TEA_PRICE + 3200                            # 2.5 kg × ¥12.80 = ¥32.00
    assert read(app, lambda s: s.get(GroupOrder, order_id).order_no)
    page = html(client.get(f"/group/{order_id}"))
    assert 'id="confirm-form"' in page and 'id="pay-form"' not in page and 'id="deliver-form"' not in page

    # confirm: the base holds the goods, nothing moves
    done(act(client, order_id, "confirm"), order_id)
    assert order_status(app, order_id) == "confirmed"
    assert level(app, "BASE", tea) == (24000, 6000) and level(app, "BASE", rice) == (30000, 2500)
    assert count(app, StockMove, StockMove.ref_type == "group_order") == 0

    # pick: base → dispatch, the earliest lot first
    done(act(client, order_id, "pick"), order_id)
    assert order_status(app, order_id) == "picked"
    dispatch = dispatch_id(app)
    assert level(app, "BASE", tea) == (18000, 0) and level(app, dispatch, tea) == (6000, 0)
    assert level(app, "BASE", rice) == (27500, 0) and level(app, dispatch, rice) == (2500, 0)
    picked = read(app, lambda s: s.execute(select(StockMove.lot_id, StockMove.qty_milli).where(
        StockMove.ref_type == "group_order", StockMove.product_id == tea).order_by(StockMove.id)).all())
    assert picked == [(manager.early, 4000), (manager.late, 2000)]

    # the deliver form offers everything picked; deliver part of it
    page = html(client.get(f"/group/{order_id}"))
    ids = line_ids(app, order_id)
    assert deliver_inputs(page) == {f"qty-{ids[tea]}": "6", f"qty-{ids[rice]}": "2.500"}
    response = act(client, order_id, "deliver", {f"qty-{ids[tea]}": "4", f"qty-{ids[rice]}": "1", "received_by": "陈师傅",
                                                 "client_id": "delivery-1-of-test"})
    done(response, order_id)
    assert "已送货" in " ".join(flashes(client.get(f"/group/{order_id}"), "success"))
    sales = read(app, lambda s: s.execute(select(Sale.id, Sale.receipt_no, Sale.total_fen, Sale.channel, Sale.buyer_type)
                                          .where(Sale.group_order_id == order_id).order_by(Sale.id)).all())
    assert len(sales) == 1
    first_sale = sales[0]
    assert first_sale.receipt_no.startswith("G-") and first_sale.total_fen == 4 * TEA_PRICE + 1280
    assert (first_sale.channel.value, first_sale.buyer_type.value) == ("group", "canteen")
    assert level(app, dispatch, tea) == (2000, 0) and level(app, "CUSTOMER", tea)[0] == 4000
    assert level(app, dispatch, rice) == (1500, 0)
    assert order_status(app, order_id) == "picked"
    page = html(client.get(f"/group/{order_id}"))
    assert first_sale.receipt_no in page and f'href="/group/deliveries/{first_sale.id}"' in page
    assert "data-received-by>陈师傅<" in html(client.get(f"/group/deliveries/{first_sale.id}"))  # who signed
    assert deliver_inputs(page) == {f"qty-{ids[tea]}": "2", f"qty-{ids[rice]}": "1.500"}
    assert 'id="close-form"' in page and 'id="cancel-form"' not in page   # delivered once: close, not cancel

    # the same delivery form sent again records nothing new
    act(client, order_id, "deliver", {f"qty-{ids[tea]}": "4", f"qty-{ids[rice]}": "1", "client_id": "delivery-1-of-test"})
    assert count(app, Sale, Sale.group_order_id == order_id) == 1

    # the rest, with the form's defaults
    response = act(client, order_id, "deliver", {**deliver_inputs(page), "client_id": "delivery-2-of-test"})
    done(response, order_id)
    assert order_status(app, order_id) == "delivered"
    assert count(app, Sale, Sale.group_order_id == order_id) == 2
    assert read(app, lambda s: s.scalar(select(func.sum(Sale.total_fen)).where(Sale.group_order_id == order_id))) == total
    assert level(app, dispatch, tea) == (0, 0) and level(app, dispatch, rice) == (0, 0)
    assert level(app, "BASE", tea) == (18000, 0) and level(app, "CUSTOMER", tea)[0] == 6000
    assert level(app, "CUSTOMER", rice)[0] == 2500

    # the page now offers payment, defaulting to the balance
    page = html(client.get(f"/group/{order_id}"))
    assert re.search(r'data-money="balance">¥440\.00<', page)
    assert re.search(r'name="amount" value="440.00"', page)

    # a payment without its bank reference is refused, nothing written
    before = writes(app)
    assert_refused(act(client, order_id, "pay", {"amount": "100", "ref": "", "received_on": local_today().isoformat()}),
                   "请填写银行转账流水号")
    assert_refused(act(client, order_id, "pay", {"amount": "500", "ref": "B-1", "received_on": local_today().isoformat()}),
                   "超过应收余额")
    assert_refused(act(client, order_id, "pay", {"amount": "1.001", "ref": "B-1", "received_on": local_today().isoformat()}),
                   "金额最多两位小数")
    assert writes(app) == before

    # part, then the rest: paid
    pay = {"ref": "ICBC-20261126-0001", "received_on": local_today().isoformat(), "client_id": "payment-1-of-test"}
    done(act(client, order_id, "pay", {**pay, "amount": "136"}), order_id)
    assert order_status(app, order_id) == "delivered"
    done(act(client, order_id, "pay", {**pay, "amount": "136"}), order_id)   # sent twice: one payment
    assert read(app, lambda s: s.scalar(select(func.sum(GroupPayment.amount_fen))
                                        .where(GroupPayment.order_id == order_id))) == 13600
    done(act(client, order_id, "pay", {**pay, "amount": "304", "client_id": "payment-2-of-test"}), order_id)
    payments = read(app, lambda s: s.execute(select(GroupPayment.amount_fen, GroupPayment.ref, GroupPayment.method)
                                             .where(GroupPayment.order_id == order_id).order_by(GroupPayment.id)).all())
    assert [(p.amount_fen, p.ref, p.method.value) for p in payments] == \
        [(13600, "ICBC-20261126-0001", "bank_transfer"), (30400, "ICBC-20261126-0001", "bank_transfer")]
    assert order_status(app, order_id) == "paid"
    page = html(client.get(f"/group/{order_id}"))
    assert re.search(r'data-money="balance">¥0\.00<', page) and 'id="pay-form"' not in page
    assert "已结清" in page
    # the stock moved exactly once: what left the base is what the customer holds
    assert level(app, "BASE", tea)[0] + level(app, "CUSTOMER", tea)[0] == 24000


def test_a_confirmation_the_base_cannot_hold_names_the_product(app, client, manager):
    order_id = new_order(client, manager, [(HONEY, "11")])
    before = writes(app)
    response = act(client, order_id, "confirm")
    assert_refused(response, "寨英土蜂蜜")
    assert writes(app) == before and order_status(app, order_id) == "draft"


def test_cancelling_a_confirmed_order_releases_its_reservation(app, client, manager):
    order_id = new_order(client, manager, [(TEA, "3")])
    done(act(client, order_id, "confirm"), order_id)
    assert level(app, "BASE", manager.tea) == (24000, 3000)
    before = writes(app)
    assert_refused(act(client, order_id, "cancel", {"reason": ""}), "请填写取消原因")
    assert writes(app) == before
    assert 'data-confirm="' in re.search(r'<form[^>]*id="cancel-form"[^>]*>', html(client.get(f"/group/{order_id}"))).group(0)
    done(act(client, order_id, "cancel", {"reason": "饭堂改期"}), order_id)
    assert order_status(app, order_id) == "cancelled"
    assert level(app, "BASE", manager.tea) == (24000, 0)
    assert "饭堂改期" in html(client.get(f"/group/{order_id}"))


def test_a_return_through_the_form_credits_the_order_and_restocks_the_base(app, client, manager):
    order_id = new_order(client, manager, [(TEA, "3"), (HONEY, "2")])
    for action in ("confirm", "pick", "deliver"):
        data = deliver_inputs(html(client.get(f"/group/{order_id}"))) if action == "deliver" else {}
        done(act(client, order_id, action, data), order_id)
    sale = read(app, lambda s: s.scalars(select(Sale).where(Sale.group_order_id == order_id)).one())
    sale_lines = {ln.product_id: ln.id for ln in read(app, lambda s: s.get(Sale, sale.id).lines)}
    page = html(client.get(f"/group/{order_id}"))
    assert f'id="return-form-{sale.receipt_no}"' in page

    before = writes(app)
    assert_refused(act(client, order_id, "return", {"receipt_no": sale.receipt_no, "reason": "破损",
                                                   f"qty-{sale_lines[manager.tea]}": "4"}), "松桃绿茶")
    assert_refused(act(client, order_id, "return", {"receipt_no": sale.receipt_no, "reason": "破损"}), "请至少填写")
    assert writes(app) == before

    data = {"receipt_no": sale.receipt_no, "reason": "一盒包装破损", f"qty-{sale_lines[manager.tea]}": "1",
            f"restock-{sale_lines[manager.tea]}": "1", f"qty-{sale_lines[manager.honey]}": "0"}
    done(act(client, order_id, "return", data), order_id)
    refund = read(app, lambda s: s.scalars(select(Refund).where(Refund.sale_id == sale.id)).one())
    assert refund.total_fen == TEA_PRICE
    assert level(app, "BASE", manager.tea) == (24000 - 3000 + 1000, 0)
    page = html(client.get(f"/group/{order_id}"))
    balance = 3 * TEA_PRICE + 2 * HONEY_PRICE - TEA_PRICE
    assert re.search(rf'data-money="balance">¥{balance // 100}\.00<', page)
    assert re.search(rf'data-money="returned">¥68\.00<', page)


def test_closing_the_remainder_takes_undelivered_goods_back_to_the_base(app, client, manager):
    order_id = new_order(client, manager, [(TEA, "5")])
    done(act(client, order_id, "confirm"), order_id)
    done(act(client, order_id, "pick"), order_id)
    ids = line_ids(app, order_id)
    done(act(client, order_id, "deliver", {f"qty-{ids[manager.tea]}": "2"}), order_id)
    assert_refused(act(client, order_id, "close", {"reason": ""}), "请填写结束原因")
    done(act(client, order_id, "close", {"reason": "饭堂只要两盒"}), order_id)
    assert order_status(app, order_id) == "delivered"
    assert level(app, "BASE", manager.tea) == (24000 - 2000, 0) and level(app, dispatch_id(app), manager.tea) == (0, 0)


def test_a_delivery_quantity_the_rules_refuse_changes_nothing(app, client, manager):
    order_id = new_order(client, manager, [(TEA, "2"), (RICE, "1.5")])
    done(act(client, order_id, "confirm"), order_id)
    done(act(client, order_id, "pick"), order_id)
    ids = line_ids(app, order_id)
    before = writes(app)
    for data, message in (({f"qty-{ids[manager.tea]}": "3"}, "最多还能送"),
                          ({f"qty-{ids[manager.tea]}": "0.5"}, "按件销售的商品数量必须是整数"),
                          ({f"qty-{ids[manager.rice]}": "abc"}, "数量格式不正确"),
                          ({f"qty-{ids[manager.tea]}": "0", f"qty-{ids[manager.rice]}": ""}, "请填写送货数量"),
                          ({f"qty-{ids[manager.tea]}": "1", "delivered_at": "昨天"}, "送货时间格式")):
        response = act(client, order_id, "deliver", data)
        assert_refused(response, message)
        # the typed quantities are still in the form
        for name, value in data.items():
            if name.startswith("qty-") and value:
                assert f'name="{name}" value="{value}"' in html(response)
    assert writes(app) == before


# --- printable pages -------------------------------------------------------------------------------


def test_the_printable_pages_mark_certified_lines_with_a_star(app, client, manager):
    order_id = new_order(client, manager, [(TEA, "2"), (HONEY, "1")])
    confirmation = html(client.get(f"/group/{order_id}/confirmation"))
    assert "订单确认单" in confirmation
    assert "★" in row_html(confirmation, TEA) and "★" not in row_html(confirmation, HONEY)
    assert "★ 认定的扶贫产品" in confirmation
    assert "东莞市虎门镇人民政府" in confirmation and "11441900MB2C12345X" in confirmation   # invoice title, tax id
    assert re.search(r'data-total="ordered">¥224\.00<', confirmation)
    assert re.search(r'data-total="certified">¥136\.00<', confirmation)   # 其中扶贫产品: the tea only

    for action in ("confirm", "pick", "deliver"):
        data = deliver_inputs(html(client.get(f"/group/{order_id}"))) if action == "deliver" else {}
        done(act(client, order_id, action, data), order_id)
    sale = read(app, lambda s: s.scalars(select(Sale).where(Sale.group_order_id == order_id)).one())
    note = html(client.get(f"/group/deliveries/{sale.id}"))
    assert "送货单" in note and sale.receipt_no in note
    assert read(app, lambda s: s.get(GroupOrder, order_id).order_no) in note
    assert "★" in row_html(note, TEA) and "★" not in row_html(note, HONEY)
    assert "T-EARLY" in row_html(note, TEA) and "T-LATE" not in row_html(note, TEA)   # the lot handed over
    assert (local_today() + dt.timedelta(days=40)).isoformat() in row_html(note, TEA)  # and its expiry
    assert re.search(r'data-total="delivered">¥224\.00<', note) and re.search(r'data-total="certified">¥136\.00<', note)
    assert "送货人" in note and "收货人" in note and "虎门镇银龙路 1 号" in note


def test_a_delivery_note_is_only_for_a_group_delivery(app, client, manager):
    from pos.models import Till
    from pos.sales.pricing import LineIn
    from pos.sales.service import PaymentIn, SaleIn, record_sale

    def hall_sale(s):
        till = Till(code="H1", name="1号收银台", location_id=manager.loc["HALL"])
        s.add(till)
        s.flush()
        return record_sale(s, SaleIn(channel="hall", location_id=None, till_id=till.id,
                                     lines=[LineIn(product_id=manager.honey, qty_milli=1000)],
                                     payments=[PaymentIn(method="cash", amount_fen=HONEY_PRICE, tendered_fen=HONEY_PRICE)])).sale_id
    sale_id = read(app, hall_sale)
    assert client.get(f"/group/deliveries/{sale_id}").status_code == 404


# --- balances ----------------------------------------------------------------------------------------


def test_the_balances_page_shows_what_each_buyer_owes(app, client, manager):
    assert "没有未收清的货款" in html(client.get("/group/balances"))
    order_id = new_order(client, manager, [(TEA, "2"), (HONEY, "1")])
    for action in ("confirm", "pick", "deliver"):
        data = deliver_inputs(html(client.get(f"/group/{order_id}"))) if action == "deliver" else {}
        done(act(client, order_id, action, data), order_id)
    done(act(client, order_id, "pay", {"amount": "24", "ref": "B-7", "received_on": local_today().isoformat()}), order_id)
    page = html(client.get("/group/balances"))
    row = re.search(rf'<tr data-buyer="{manager.canteen}">(.*?)</tr>', page, re.S).group(1)
    assert "虎门镇政府机关饭堂" in row and "机关饭堂" in row
    assert 'data-balance="20000"' in row and "¥200.00" in row      # ¥224.00 delivered − ¥24.00 paid
    assert "¥224.00" in row and "¥24.00" in row and local_today().isoformat() in row
    assert re.search(r'data-total="balance">¥200\.00<', page)
