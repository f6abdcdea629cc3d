"""Refill routes (kiosks.refills) on the real database: what to load and pull, first-expiry-first-out
picks at the base, loading the van freezes the pick list, one all-or-nothing visit per counter
posting exactly what was entered, double confirmation, the van's limits, and leftovers back to
the base. After every route, each product's ledger adds up to zero over all locations."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from inventory import ledger
from inventory.errors import ValidationError
from inventory.ledger import level, move
from inventory.reservations import available, reserve
from inventory.localtime import local_today, utcnow
from inventory.models import AuditEvent, Location, LocationKind, Lot, LotLevel, MoveReason, StockMove
from kiosks import refill_plans, refill_visits, refills
from kiosks.models import (
    Kiosk,
    PlanogramSlot,
    RefillLine,
    RefillPick,
    RefillPull,
    RefillStatus,
    RefillStop,
    SiteType,
    StopStatus,
)
from tests.fixtures.stock import engine, level_of, levels, move_count, moves_by_location, s, world  # noqa: F401

TODAY = local_today()
P = 1000  # one piece in qty_milli


def days(n: int) -> dt.date:
    return TODAY + dt.timedelta(days=n)


@dataclass
class Fleet:
    van: int
    k1: Kiosk
    k2: Kiosk
    tea: int
    rice: int
    lots: dict


def _lot(s, product_id: int, lot_no: str, expires_on: dt.date) -> int:
    lot = Lot(product_id=product_id, lot_no=lot_no, expires_on=expires_on)
    s.add(lot)
    s.flush()
    return lot.id


def _put(world, s, product_id: int, qty: int, to: int, lot_id=None) -> None:
    move(s, product_id=product_id, qty_milli=qty * P, from_location_id=world.loc["SUPPLIER"], to_location_id=to,
         reason=MoveReason.RECEIPT, lot_id=lot_id)


def _kiosk(s, code: str, town: str) -> Kiosk:
    loc = Location(code=code, name=f"消费专柜 {code}", kind=LocationKind.KIOSK)
    s.add(loc)
    s.flush()
    kiosk = Kiosk(code=code, site_name=f"{town}人民医院", host_org=f"{town}人民医院", site_type=SiteType.HOSPITAL,
                  town=town, address=f"{town}某路 1 号", location_id=loc.id, last_heartbeat_at=utcnow())
    s.add(kiosk)
    s.flush()
    return kiosk


@pytest.fixture
def fleet(world, s) -> Fleet:  # noqa: F811
    van = Location(code="VAN1", name="补货车 1", kind=LocationKind.VAN)
    s.add(van)
    s.flush()
    tea = world.product(s, "梵净山翠峰茶 50g", price_fen=3800).id
    rice = world.product(s, "孟溪红米 1kg", price_fen=2600).id
    k1, k2 = _kiosk(s, "K001", "虎门"), _kiosk(s, "K002", "沙田")
    s.add_all([
        PlanogramSlot(kiosk_id=k1.id, slot="A1", product_id=tea, par=8, price_fen=3800),
        PlanogramSlot(kiosk_id=k1.id, slot="A2", product_id=rice, par=6, price_fen=2600),
        PlanogramSlot(kiosk_id=k2.id, slot="A1", product_id=tea, par=5, price_fen=3800),
    ])
    lots = {
        "tea-base-near": _lot(s, tea, "T-NEAR", days(2)),    # expires before the visit horizon: never picked
        "tea-base-early": _lot(s, tea, "T-EARLY", days(40)),
        "tea-base-late": _lot(s, tea, "T-LATE", days(200)),
        "tea-k1-old": _lot(s, tea, "T-OLD", days(-1)),       # expired, at the counter
        "tea-k1-good": _lot(s, tea, "T-GOOD", days(90)),
        "rice-base": _lot(s, rice, "R-1", days(300)),
    }
    _put(world, s, tea, 20, world.loc["BASE"], lots["tea-base-near"])
    _put(world, s, tea, 6, world.loc["BASE"], lots["tea-base-early"])
    _put(world, s, tea, 30, world.loc["BASE"], lots["tea-base-late"])
    _put(world, s, rice, 10, world.loc["BASE"], lots["rice-base"])
    _put(world, s, tea, 2, k1.location_id, lots["tea-k1-old"])
    _put(world, s, tea, 3, k1.location_id, lots["tea-k1-good"])
    _put(world, s, rice, 1, k1.location_id)  # an unlotted rice left in the counter
    _put(world, s, tea, 1, k2.location_id, lots["tea-k1-good"])
    s.commit()
    return Fleet(van.id, k1, k2, tea, rice, lots)


def _plan(world, s, fleet, codes=("K001", "K002")):
    return refill_plans.plan_route(s, kiosk_codes=list(codes), restocker_id=world.manager_id, van_location_id=fleet.van,
                              today=TODAY, expiring_within_days=3, actor_id=world.manager_id)


def _picks(s, route_id):
    return {(p.product_id, p.lot_id): p.qty_milli for p in s.scalars(select(RefillPick).where(RefillPick.route_id == route_id))}


def _ledger_balances(s, product_ids):
    """Per product, Σ over every location of the ledger is zero, and every real location's level
    row is what its moves add up to (the virtual ones keep no rows: they are their moves)."""
    assert ledger.unbalanced(s) == []
    assert sum(moves_by_location(s, product_ids).values()) == 0


def test_candidates_by_urgency_and_town(world, s, fleet):  # noqa: F811
    rows = refill_plans.refill_candidates(s, today=TODAY, now=utcnow())
    # K002 is 20 % full; K001 is 42 % full with an expired lot
    assert [r["code"] for r in rows] == ["K002", "K001"]
    assert rows[0]["fill_percent"] == 20 and rows[0]["need_pieces"] == 4
    k1 = rows[1]
    assert k1["fill_percent"] == (5 + 1) * 100 // 14 and k1["expiring_lots"] == 1 and not k1["offline"]
    assert refill_plans.refill_candidates(s, today=TODAY, now=utcnow(), town="沙田")[0]["code"] == "K002"
    assert [r["code"] for r in refill_plans.refill_candidates(s, today=TODAY, now=utcnow(), expiring_within_days=3)] == ["K001"]
    later = utcnow() + dt.timedelta(hours=2)
    assert {r["code"] for r in refill_plans.refill_candidates(s, today=TODAY, now=later, offline=True)} == {"K001", "K002"}
    assert refill_plans.refill_candidates(s, today=TODAY, now=utcnow(), offline=True) == []


def test_plan_loads_par_minus_what_stays_and_picks_fefo(world, s, fleet):  # noqa: F811
    route = _plan(world, s, fleet)
    s.commit()
    stops = {st.kiosk.code: st for st in route.stops}
    assert [st.kiosk.code for st in route.stops] == ["K001", "K002"] and route.status == RefillStatus.PLANNED
    k1 = {ln.slot: ln for ln in stops["K001"].lines}
    # tea: par 8, 5 on hand of which 2 expired are pulled → 3 stay → load 5; rice: par 6, 1 on hand → 5
    assert (k1["A1"].need_milli, k1["A1"].planned_load_milli) == (5 * P, 5 * P)
    assert (k1["A2"].need_milli, k1["A2"].planned_load_milli) == (5 * P, 5 * P)
    assert [(p.lot_id, p.planned_qty_milli) for p in stops["K001"].pulls] == [(fleet.lots["tea-k1-old"], 2 * P)]
    assert stops["K002"].lines[0].planned_load_milli == 4 * P and stops["K002"].pulls == []
    # tea over the route: 9, the lot that expires in 2 days is skipped, then the earliest first
    assert _picks(s, route.id) == {
        (fleet.tea, fleet.lots["tea-base-early"]): 6 * P,
        (fleet.tea, fleet.lots["tea-base-late"]): 3 * P,
        (fleet.rice, fleet.lots["rice-base"]): 5 * P,
    }
    assert move_count(s) == 8  # planning moves nothing
    assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "refill.plan")) == 1


def test_plan_caps_loads_at_what_the_base_has(world, s, fleet):  # noqa: F811
    move(s, product_id=fleet.rice, qty_milli=8 * P, from_location_id=world.loc["BASE"],
         to_location_id=world.loc["HALL"], reason=MoveReason.TRANSFER, lot_id=fleet.lots["rice-base"])
    plan = refill_plans.plan_preview(s, kiosk_codes=["K001"], today=TODAY)
    rice = next(ln for ln in plan["stops"][0]["lines"] if ln["product_id"] == fleet.rice)
    assert (rice["need_milli"], rice["load_milli"], rice["short_milli"]) == (5 * P, 2 * P, 3 * P)
    assert [(x["product_id"], x["qty_milli"]) for x in plan["shortages"]] == [(fleet.rice, 3 * P)]


def test_plan_leaves_goods_reserved_for_group_orders_at_the_base(world, s, fleet):  # noqa: F811
    # 10 rice at the base, 7 held for a confirmed group order: the counter can get 3 of its 5
    reserve(s, location_id=world.loc["BASE"], product_id=fleet.rice, qty_milli=7 * P)
    plan = refill_plans.plan_preview(s, kiosk_codes=["K001"], today=TODAY)
    rice = next(ln for ln in plan["stops"][0]["lines"] if ln["product_id"] == fleet.rice)
    assert (rice["need_milli"], rice["load_milli"], rice["short_milli"]) == (5 * P, 3 * P, 2 * P)
    # and loading the van takes only what is free
    route = _plan(world, s, fleet, codes=("K001",))
    refills.load_van(s, route.id, actor_id=world.manager_id)
    assert level(s, world.loc["BASE"], fleet.rice) == 7 * P and available(s, world.loc["BASE"], fleet.rice) == 0


@pytest.mark.parametrize("codes,message", [
    ([], "请至少选择一个专柜"),
    (["K001", "K001"], "只能出现一次"),
    (["K999"], "专柜 K999 不存在"),
])
def test_plan_refuses_bad_counters(world, s, fleet, codes, message):  # noqa: F811
    with pytest.raises(ValidationError, match=message):
        _plan(world, s, fleet, codes)


def test_plan_refuses_a_location_that_is_not_a_van(world, s, fleet):  # noqa: F811
    with pytest.raises(ValidationError, match="请选择补货车"):
        refill_plans.plan_route(s, kiosk_codes=["K001"], restocker_id=None, van_location_id=world.loc["HALL"],
                           today=TODAY, actor_id=None)


def test_load_van_moves_the_picks_and_freezes_them(world, s, fleet):  # noqa: F811
    route = _plan(world, s, fleet)
    before = _picks(s, route.id)
    refills.load_van(s, route.id, actor_id=world.manager_id)
    s.commit()
    assert refills.get_route(s, route.id, fresh=True).status == RefillStatus.LOADED
    assert level_of(s, fleet.van, fleet.tea) == 9 * P and level_of(s, fleet.van, fleet.rice) == 5 * P
    assert level_of(s, world.loc["BASE"], fleet.tea) == (56 - 9) * P
    assert s.get(LotLevel, (fleet.van, fleet.lots["tea-base-early"])).qty_milli == 6 * P
    # the planogram changes after loading: the pick list and the stop's plan stay as loaded
    slot = s.scalar(select(PlanogramSlot).where(PlanogramSlot.kiosk_id == fleet.k1.id, PlanogramSlot.slot == "A1"))
    slot.par = 20
    s.commit()
    assert _picks(s, route.id) == before
    assert sorted(p["qty_milli"] for p in refills.pick_list(s, route.id)) == sorted(before.values())
    sheet = refills.stop_sheet(s, route.id, route.stops[0].id)
    assert sheet["slots"][0]["planned_pieces"] == 5 and sheet["slots"][0]["par"] == 8
    # loading twice moves nothing more
    moves = move_count(s)
    with pytest.raises(ValidationError, match="已装车，拣货单已冻结"):
        refills.load_van(s, route.id, actor_id=world.manager_id)
    assert move_count(s) == moves


def test_load_van_refuses_when_the_base_lacks_a_pick_and_writes_nothing(world, s, fleet):  # noqa: F811
    route = _plan(world, s, fleet)
    s.commit()
    move(s, product_id=fleet.tea, qty_milli=28 * P, from_location_id=world.loc["BASE"],
         to_location_id=world.loc["HALL"], reason=MoveReason.TRANSFER, lot_id=fleet.lots["tea-base-late"])
    s.commit()
    moves = move_count(s)
    with pytest.raises(ValidationError, match="物流基地库存不足：「梵净山翠峰茶 50g」批次 T-LATE"):
        refills.load_van(s, route.id, actor_id=world.manager_id)
    s.rollback()
    assert move_count(s) == moves
    assert refills.get_route(s, route.id, fresh=True).status == RefillStatus.PLANNED
    assert level_of(s, fleet.van, fleet.rice) == 0


def _loaded_route(world, s, fleet, codes=("K001", "K002")):
    route = _plan(world, s, fleet, codes)
    refills.load_van(s, route.id, actor_id=world.manager_id)
    s.commit()
    return route


def test_record_visit_posts_exactly_what_was_entered(world, s, fleet):  # noqa: F811
    route = _loaded_route(world, s, fleet)
    counter, loss, adj = fleet.k1.location_id, world.loc["LOSS"], world.loc["COUNT-ADJ"]
    moves = move_count(s)
    # tea: 5 on the books, 4 counted (one missing), the 2 expired pulled, 5 loaded → 4 − 2 + 5 = 7
    # rice: 1 on the books, 2 counted (one found), one damaged pulled, 4 loaded → 2 − 1 + 4 = 5
    result = refill_visits.record_visit(s, route.id, "K001", actor_id=world.manager_id, slots=[
        {"slot": "A1", "counted_milli": 4 * P, "loaded_milli": 5 * P,
         "pulled": [{"lot_id": fleet.lots["tea-k1-old"], "qty_milli": 2 * P, "reason": "expired"}]},
        {"slot": "A2", "counted_milli": 2 * P, "loaded_milli": 4 * P,
         "pulled": [{"lot_id": None, "qty_milli": 1 * P, "reason": "damaged"}]},
    ])
    s.commit()
    assert not result["already"]
    assert level_of(s, counter, fleet.tea) == 7 * P and level_of(s, counter, fleet.rice) == 5 * P
    assert level_of(s, fleet.van, fleet.tea) == 4 * P and level_of(s, fleet.van, fleet.rice) == 1 * P
    assert level_of(s, loss, fleet.tea) == 2 * P and level_of(s, loss, fleet.rice) == 1 * P
    assert level_of(s, adj, fleet.tea) == 1 * P and level_of(s, adj, fleet.rice) == -1 * P
    # the expired lot left the counter as named; the shortage came out of the good lot
    assert s.get(LotLevel, (counter, fleet.lots["tea-k1-old"])).qty_milli == 0
    assert s.get(LotLevel, (counter, fleet.lots["tea-k1-good"])).qty_milli == 2 * P
    # the van's earliest lot went in first
    assert s.get(LotLevel, (counter, fleet.lots["tea-base-early"])).qty_milli == 5 * P
    reasons = dict(s.execute(select(StockMove.reason, func.count()).where(StockMove.id > 0)
                             .where(StockMove.ref_type == "refill_stop").group_by(StockMove.reason)).all())
    assert reasons == {MoveReason.COUNT_ADJUSTMENT: 2, MoveReason.EXPIRY: 1, MoveReason.WRITE_OFF: 1,
                       MoveReason.REFILL: 2}
    assert move_count(s) == moves + 6 == moves + result["moves"]
    stop = s.get(RefillStop, route.stops[0].id)
    assert stop.status == StopStatus.DONE
    lines = {ln.slot: ln for ln in stop.lines}
    assert (lines["A1"].recorded_milli, lines["A1"].counted_milli, lines["A1"].loaded_milli) == (5 * P, 4 * P, 5 * P)
    pulls = {(p.lot_id, p.reason.value): p.pulled_qty_milli for p in stop.pulls}
    assert pulls == {(fleet.lots["tea-k1-old"], "expired"): 2 * P, (None, "damaged"): 1 * P}
    _ledger_balances(s, [fleet.tea, fleet.rice])


def test_second_confirmation_records_nothing_new(world, s, fleet):  # noqa: F811
    route = _loaded_route(world, s, fleet)
    entry = [{"slot": "A1", "counted_milli": 1 * P, "loaded_milli": 4 * P, "pulled": []}]
    first = refill_visits.record_visit(s, route.id, "K002", slots=entry, actor_id=world.manager_id)
    s.commit()
    moves, counter = move_count(s), level_of(s, fleet.k2.location_id, fleet.tea)
    again = refill_visits.record_visit(s, route.id, "K002", slots=entry, actor_id=world.manager_id)
    s.commit()
    assert not first["already"] and again["already"] and "已确认过" in str(again["message"])
    assert move_count(s) == moves and level_of(s, fleet.k2.location_id, fleet.tea) == counter == 5 * P


@pytest.mark.parametrize("slots,message", [
    ([{"slot": "A1", "counted_milli": 1 * P, "loaded_milli": 10 * P}], "补货车上「梵净山翠峰茶 50g」只有 9 件，不能补入 10 件"),
    ([{"slot": "A1", "counted_milli": 1 * P, "loaded_milli": 1500}], "按件计"),
    ([{"slot": "A1", "counted_milli": -1000, "loaded_milli": 0}], "不能为负数"),
    ([{"slot": "A1", "counted_milli": "3", "loaded_milli": 0}], "必须是整数"),
    ([{"slot": "B9", "counted_milli": 0, "loaded_milli": 0}], "不在这个专柜的补货计划里"),
    ([], "请填写货道 A1 的清点数量"),
    ([{"slot": "A1", "counted_milli": 1 * P, "loaded_milli": 0,
       "pulled": [{"lot_id": None, "qty_milli": 2 * P, "reason": "damaged"}]}], "多于清点到的 1 件"),
    ([{"slot": "A1", "counted_milli": 1 * P, "loaded_milli": 0,
       "pulled": [{"lot_id": None, "qty_milli": 1 * P, "reason": "lost"}]}], "请选择下架原因"),
    ("nonsense", "格式不正确"),
])
def test_record_visit_refuses_bad_input_and_writes_nothing(world, s, fleet, slots, message):  # noqa: F811
    route = _loaded_route(world, s, fleet)
    moves = move_count(s)
    with pytest.raises(ValidationError, match=message):
        refill_visits.record_visit(s, route.id, "K002", slots=slots, actor_id=world.manager_id)
    s.rollback()
    assert move_count(s) == moves
    assert s.get(RefillStop, route.stops[1].id, populate_existing=True).status == StopStatus.PENDING


def test_over_van_refusal_leaves_the_earlier_moves_of_the_visit_unwritten(world, s, fleet):  # noqa: F811
    route = _loaded_route(world, s, fleet)
    moves = move_count(s)
    with pytest.raises(ValidationError, match="补货车上「孟溪红米 1kg」只有 5 件"):
        refill_visits.record_visit(s, route.id, "K001", actor_id=world.manager_id, slots=[
            {"slot": "A1", "counted_milli": 4 * P, "loaded_milli": 5 * P,
             "pulled": [{"lot_id": fleet.lots["tea-k1-old"], "qty_milli": 2 * P, "reason": "expired"}]},
            {"slot": "A2", "counted_milli": 1 * P, "loaded_milli": 6 * P, "pulled": []},
        ])
    s.commit()
    assert move_count(s) == moves
    assert level_of(s, fleet.k1.location_id, fleet.tea) == 5 * P
    assert s.scalar(select(RefillStop.status).where(RefillStop.id == route.stops[0].id)) == StopStatus.PENDING


def test_visit_before_loading_is_refused(world, s, fleet):  # noqa: F811
    route = _plan(world, s, fleet)
    with pytest.raises(ValidationError, match="请先装车"):
        refill_visits.record_visit(s, route.id, "K002", actor_id=None,
                             slots=[{"slot": "A1", "counted_milli": 1 * P, "loaded_milli": 0}])


def test_finish_route_returns_leftovers_to_the_base(world, s, fleet):  # noqa: F811
    route = _loaded_route(world, s, fleet)
    refill_visits.record_visit(s, route.id, "K002", actor_id=world.manager_id,
                         slots=[{"slot": "A1", "counted_milli": 1 * P, "loaded_milli": 4 * P, "pulled": []}])
    s.commit()
    # K002 took 4 tea from the van (the earliest lot); K001 is skipped
    result = refills.finish_route(s, route.id, actor_id=world.manager_id)
    s.commit()
    assert result["skipped"] == ["K001"] and result["returned_pieces"] == 5 + 5
    assert level_of(s, fleet.van, fleet.tea) == 0 and level_of(s, fleet.van, fleet.rice) == 0
    assert level_of(s, world.loc["BASE"], fleet.tea) == (56 - 4) * P
    assert level_of(s, world.loc["BASE"], fleet.rice) == 10 * P
    assert s.get(LotLevel, (world.loc["BASE"], fleet.lots["tea-base-early"])).qty_milli == 2 * P
    assert not s.scalars(select(LotLevel).where(LotLevel.location_id == fleet.van, LotLevel.qty_milli != 0)).all()
    assert refills.get_route(s, route.id, fresh=True).status == RefillStatus.DONE
    with pytest.raises(ValidationError, match="已完成"):
        refills.finish_route(s, route.id, actor_id=world.manager_id)
    with pytest.raises(ValidationError, match="已结束"):
        refill_visits.record_visit(s, route.id, "K001", actor_id=None,
                             slots=[{"slot": "A1", "counted_milli": 0, "loaded_milli": 0}])
    _ledger_balances(s, [fleet.tea, fleet.rice])


def test_a_van_serves_one_loaded_route_at_a_time(world, s, fleet):  # noqa: F811
    _loaded_route(world, s, fleet, ("K001",))
    second = _plan(world, s, fleet, ("K002",))
    with pytest.raises(ValidationError, match="还在执行路线"):
        refills.load_van(s, second.id, actor_id=None)


def test_cancel_a_planned_route(world, s, fleet):  # noqa: F811
    route = _plan(world, s, fleet)
    refills.cancel_route(s, route.id, actor_id=world.manager_id)
    s.commit()
    assert refills.get_route(s, route.id, fresh=True).status == RefillStatus.CANCELLED
    with pytest.raises(ValidationError, match="已取消"):
        refills.load_van(s, route.id, actor_id=None)
    assert s.scalar(select(func.count()).select_from(RefillLine)) == 3
    assert s.scalar(select(func.count()).select_from(RefillPull)) == 1


def test_pages_answer_bad_input_in_chinese_without_a_500(world, s, fleet, client, auth, make_user):  # noqa: F811
    s.close()
    make_user("r1", "restocker")
    auth.login("r1")
    assert client.get("/counters/routes/999999").status_code == 404
    assert client.get("/counters/routes/1/stops/5").status_code == 404
    page = client.get("/counters/plan?preview=1&kiosk=K999&days=abc&fill_below=x&date=nope")
    assert page.status_code == 400 and "专柜 K999 不存在" in page.get_data(as_text=True)
    from tests.conftest import csrf_token

    token = csrf_token(client, "/counters/plan")
    response = client.post("/counters/plan", data={"csrf_token": token, "kiosk": "K001", "van": "abc"})
    assert response.status_code == 400 and "请选择补货车" in response.get_data(as_text=True)
    response = client.post("/counters/plan", data={"csrf_token": token, "kiosk": "K002", "van": str(fleet.van)})
    assert response.status_code == 302
    route_id = int(response.headers["Location"].rsplit("/", 1)[1])
    response = client.post(f"/counters/routes/{route_id}/finish", data={"csrf_token": token})
    assert response.status_code == 400 and "还没有装车" in response.get_data(as_text=True)
    assert client.post(f"/counters/routes/{route_id}/load", data={"csrf_token": token}).status_code == 302
    stop_id = refills.get_route(s, route_id, fresh=True).stops[0].id
    s.rollback()  # SQLite: this session's transaction holds the write lock
    response = client.post(f"/counters/routes/{route_id}/stops/{stop_id}", data={
        "csrf_token": token, "counted-A1": "", "loaded-A1": "99"})
    assert response.status_code == 400 and "不能为空" in response.get_data(as_text=True)
    response = client.post(f"/counters/routes/{route_id}/stops/{stop_id}", data={
        "csrf_token": token, "counted-A1": "1", "loaded-A1": "99"})
    assert response.status_code == 400 and "补货车上「梵净山翠峰茶 50g」只有 4 件" in response.get_data(as_text=True)
    assert level_of(s, fleet.k2.location_id, fleet.tea) == 1 * P


# --- point 17 of issue 18: the restocker's visit ---------------------------------------------------

@pytest.mark.parametrize("slots,slot,message", [
    # more pulled than counted (a product-level check): named by the product's slot
    ([{"slot": "A1", "counted_milli": 5 * P, "loaded_milli": 0},
      {"slot": "A2", "counted_milli": 1 * P, "loaded_milli": 0,
       "pulled": [{"lot_id": None, "qty_milli": 2 * P, "reason": "damaged"}]}], "A2", "货道 A2：「孟溪红米 1kg」下架 2 件"),
    # more loaded than the van holds (checked while posting): named by the slot being loaded
    ([{"slot": "A1", "counted_milli": 5 * P, "loaded_milli": 0},
      {"slot": "A2", "counted_milli": 1 * P, "loaded_milli": 6 * P}], "A2", "货道 A2：补货车上「孟溪红米 1kg」只有 5 件"),
    ([{"slot": "A1", "counted_milli": 5 * P, "loaded_milli": 0},
      {"slot": "A2", "counted_milli": None, "loaded_milli": 0}], "A2", "货道 A2 清点数量不能为空"),
])
def test_point17_refusal_names_the_slot(world, s, fleet, slots, slot, message):  # noqa: F811
    route = _loaded_route(world, s, fleet)
    moves = move_count(s)
    with pytest.raises(ValidationError, match=message) as refused:
        refill_visits.record_visit(s, route.id, "K001", slots=slots, actor_id=world.manager_id)
    s.rollback()
    assert refill_visits.refused_slot(refused.value, ["A1", "A2"]) == slot
    assert move_count(s) == moves


def test_point17_over_capacity_is_accepted_and_reported(world, s, fleet):  # noqa: F811
    import json

    route = _loaded_route(world, s, fleet)
    # rice: 3 counted (two found) + 5 loaded = 8 in a slot for 6; tea: 5 − 2 pulled + 5 = 8 = its par
    result = refill_visits.record_visit(s, route.id, "K001", actor_id=world.manager_id, slots=[
        {"slot": "A1", "counted_milli": 5 * P, "loaded_milli": 5 * P,
         "pulled": [{"lot_id": fleet.lots["tea-k1-old"], "qty_milli": 2 * P, "reason": "expired"}]},
        {"slot": "A2", "counted_milli": 3 * P, "loaded_milli": 5 * P}])
    s.commit()
    assert result["over_capacity"] == [{"slot": "A2", "after_pieces": 8, "par": 6}]
    assert level_of(s, fleet.k1.location_id, fleet.rice) == 8 * P
    event = s.scalars(select(AuditEvent).where(AuditEvent.action == "refill.visit")).one()
    assert json.loads(event.after)["over_capacity"] == [{"slot": "A2", "after_pieces": 8, "par": 6}]


def test_point17_stop_page_counts_blind_and_opens_at_the_refused_slot(world, s, fleet, client, auth, make_user):  # noqa: F811
    import re

    route = _loaded_route(world, s, fleet, codes=("K001",))
    route_id, stop_id = route.id, route.stops[0].id
    s.close()
    make_user("r1", "restocker")
    auth.login("r1")
    url = f"/counters/routes/{route_id}/stops/{stop_id}"
    html = client.get(url).get_data(as_text=True)
    # a blind count: the book is shown, the count field is empty until "same as book" is tapped
    assert re.search(r'name="counted-A1"[^>]*value=""', html) and re.search(r'name="counted-A2"[^>]*value=""', html)
    assert 'data-same-as-book="5"' in html and "全部与账面一致" in html
    assert 'name="loaded-A1"' in html and re.search(r'name="loaded-A1"[^>]*value="5"', html)
    from tests.conftest import csrf_token

    response = client.post(url, data={"csrf_token": csrf_token(client, url), "counted-A1": "5", "loaded-A1": "5",
                                      "counted-A2": "x", "loaded-A2": "5"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    refused = re.findall(r'<section class="card rf-slot rf-slot-refused" data-slot="(\w+)"[^>]*data-refused', html)
    assert refused == ["A2"]
    assert html.count('class="rf-slot-error"') == 1 and "货道 A2 清点数量必须是整数" in html
    assert level_of(s, fleet.k1.location_id, fleet.tea) == 5 * P
