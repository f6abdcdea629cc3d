"""The counter registry: tokens (stored hashed, shown once, audited), registry fields, planograms."""
from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from inventory.models import AuditEvent, Location, Product
from kiosks import registry
from kiosks.models import Kiosk, KioskStatus, PlanogramSlot
from pos.core.db import session_scope
from pos.core.errors import NotFound
from tests.fixtures.counters import NOODLE, SACHET, TEA, seed_counters


@pytest.fixture
def fleet(app):
    return seed_counters(app)


@pytest.fixture
def s(app, fleet):
    with app.test_request_context():
        session = app.extensions["songtao.sessionmaker"]()
        yield session
        session.rollback()
        session.close()


def test_tokens_are_stored_hashed_and_replace_each_other(s, fleet):
    kiosk = registry.get_kiosk(s, "K001")
    old = fleet["tokens"]["K001"]
    assert kiosk.token_hash == hashlib.sha256(old.encode()).hexdigest()
    assert old not in {kiosk.token_hash, kiosk.code}
    new = registry.issue_token(s, "K001", actor_id=None)
    assert new != old and len(new) == 43
    assert registry.kiosk_for_token(s, old) is None
    assert registry.kiosk_for_token(s, new).code == "K001"
    assert registry.revoke_token(s, "K001", actor_id=None) is True
    assert registry.revoke_token(s, "K001", actor_id=None) is False
    assert registry.kiosk_for_token(s, new) is None
    actions = s.scalars(select(AuditEvent.action).where(AuditEvent.entity_id == "K001").order_by(AuditEvent.id)).all()
    assert actions[-3:] == ["kiosk.token_issued", "kiosk.token_issued", "kiosk.token_revoked"]
    texts = " ".join(e.after or "" for e in s.scalars(select(AuditEvent)))
    assert new not in texts and old not in texts  # the audit never holds a token


@pytest.mark.parametrize("token", [None, "", "short", "x" * 500, "\x00" * 43, "令牌" * 20, 12345])
def test_absurd_tokens_are_nobodys(s, token):
    assert registry.kiosk_for_token(s, token) is None


def test_a_retired_counter_gets_no_token(s):
    with pytest.raises(registry.KioskRetired, match="专柜已停用"):
        registry.issue_token(s, "K003")


@pytest.mark.parametrize("code", ["K999", "k001", "", None, "K001'; DROP TABLE kiosks;--", "K" + "1" * 50])
def test_unknown_codes_are_not_found(s, code):
    with pytest.raises(NotFound):
        registry.get_kiosk(s, code)


def test_update_kiosk_validates_and_audits(s):
    kiosk = registry.update_kiosk(s, "K001", actor_id=None, site_name=" 虎门镇人民政府 二楼 ", latitude="22.8123",
                                  longitude=113.67, status="paused")
    assert (kiosk.site_name, kiosk.latitude, kiosk.status) == ("虎门镇人民政府 二楼", 22.8123, KioskStatus.PAUSED)
    event = s.scalars(select(AuditEvent).where(AuditEvent.action == "kiosk.update", AuditEvent.entity_id == "K001")).one()
    assert "二楼" in event.after and "paused" in event.after
    for fields in ({"latitude": 91}, {"longitude": "east"}, {"status": "gone"}, {"site_name": ""},
                   {"town": "x" * 31}, {"token_hash": "0" * 64}, {"site_type": "moon"}):
        with pytest.raises(registry.KioskError):
            registry.update_kiosk(s, "K001", actor_id=None, **fields)
    registry.update_kiosk(s, "K001", actor_id=None, status="retired")
    assert s.get(Location, kiosk.location_id).active is False


def test_set_remove_and_copy_slots(s, fleet):
    registry.set_slot(s, "K001", "b3", product_id=fleet["products"][SACHET], par=4, price_fen=5800, actor_id=None)
    registry.set_slot(s, "K001", "A1", product_id=fleet["products"][TEA], par=6, price_fen=3900, actor_id=None)
    view = registry.planogram_view(s, "K001")
    assert [(x["slot"], x["sku"], x["par"], x["price_fen"]) for x in view["slots"]] == [
        ("A1", TEA, 6, 3900), ("A2", NOODLE, 10, 1280), ("B3", SACHET, 4, 5800)]
    assert view["slots"][2]["on_hand"] == 0
    for kwargs in ({"slot": "1A"}, {"par": 0}, {"par": "lots"}, {"price_fen": -1}, {"product_id": 10**6}):
        args = {"slot": "A9", "product_id": fleet["products"][TEA], "par": 5, "price_fen": 100, **kwargs}
        with pytest.raises(registry.KioskError):
            registry.set_slot(s, "K001", args.pop("slot"), actor_id=None, **args)
    s.get(Product, fleet["products"][NOODLE]).active = False
    with pytest.raises(registry.KioskError, match="已停售"):
        registry.set_slot(s, "K001", "A9", product_id=fleet["products"][NOODLE], par=5, price_fen=1, actor_id=None)
    assert registry.remove_slot(s, "K001", "B3", actor_id=None) is True
    assert registry.remove_slot(s, "K001", "B3", actor_id=None) is False
    assert registry.copy_planogram(s, "K001", ["K002", "K002", "K001"], actor_id=None) == 1
    k2 = registry.get_kiosk(s, "K002")
    rows = s.execute(select(PlanogramSlot.slot, PlanogramSlot.price_fen).where(PlanogramSlot.kiosk_id == k2.id)
                     .order_by(PlanogramSlot.slot)).all()
    assert rows == [("A1", 3900), ("A2", 1280)]
    with pytest.raises(registry.KioskRetired):
        registry.copy_planogram(s, "K001", ["K003"], actor_id=None)


def test_on_hand_is_whole_pieces_never_below_zero(app, fleet):
    from inventory import ledger
    from inventory.models import LocationKind, MoveReason

    with app.test_request_context(), session_scope(app) as s:
        k1 = registry.get_kiosk(s, "K001")
        customer = ledger.virtual_location(s, LocationKind.CUSTOMER).id
        ledger.move(s, product_id=fleet["products"][NOODLE], qty_milli=10_500, from_location_id=k1.location_id,
                    to_location_id=customer, reason=MoveReason.SALE, allow_negative_source=True)
        ledger.move(s, product_id=fleet["products"][TEA], qty_milli=500, from_location_id=k1.location_id,
                    to_location_id=customer, reason=MoveReason.SALE, allow_negative_source=True)
        on_hand = {x["slot"]: x["on_hand"] for x in registry.planogram_view(s, "K001")["slots"]}
    assert on_hand == {"A1": 19, "A2": 0}


def test_create_kiosk_refuses_a_taken_or_malformed_code(s):
    for code in ("K001", "X1", "K1"):
        with pytest.raises(registry.KioskError):
            registry.create_kiosk(s, code=code, site_name="x", host_org="x", town="虎门镇", address="x")
    kiosk = registry.create_kiosk(s, code="K004", site_name="麻涌镇人民政府", host_org="麻涌镇人民政府",
                                  town="麻涌镇", address="广东省东莞市麻涌镇")
    assert s.get(Location, kiosk.location_id).code == "K004"
    assert s.scalars(select(Kiosk.code).order_by(Kiosk.code)).all() == ["K001", "K002", "K003", "K004"]
