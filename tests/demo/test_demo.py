"""`songtao demo`: the demo hall is built whole, looks like the real place, obeys the ledger's
rules, and comes out the same for the same seed. The demo is built three times here: once on the
database under test and twice by the command on its own SQLite file. Its counters' history comes
from the fleet simulator through the counter API (tests/kiosks/test_simulator.py tests the simulator)."""
import datetime as dt
from collections import Counter

from click.testing import CliRunner
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session
from stdnum import ean
from stdnum.cn import uscc

from inventory import ledger
from inventory.certification import certification_on
from inventory.localtime import local_date, local_today, utcnow
from inventory.models import (
    Barcode,
    Certificate,
    Location,
    LocationKind,
    Lot,
    MoveReason,
    Product,
    Setting,
    StockLevel,
    StockMove,
    Supplier,
    Unit,
    certificate_products,
)
from kiosks import simulator
from kiosks.models import Kiosk, KioskStatus, PlanogramSlot
from pos.accounts import users as accounts
from pos.demo import build as demo
from pos.demo import catalogue as demo_catalogue
from pos.demo import counter_history
from pos.demo import counters as demo_counters
from pos.demo.clock import at_local
from pos.cli import main
from pos.models import Channel, Role, Sale, Shift, ShiftStatus, Till, User

TOWNS = {"虎门镇", "沙田镇", "麻涌镇", "中堂镇", "滨海湾新区"}


def test_pinyin_initials():
    assert demo_catalogue.pinyin_initials("梅江茶") == "mjc"
    assert demo_catalogue.pinyin_initials("苗绣杯垫（4片装）") == "mxbd4pz"


def test_has_data_is_false_for_a_missing_or_unmigrated_file(tmp_path):
    missing = tmp_path / "nothing.sqlite3"
    assert not demo.has_data(f"sqlite:///{missing}")
    assert not missing.exists()  # asking does not create the file
    empty = tmp_path / "empty.sqlite3"
    engine = create_engine(f"sqlite:///{empty}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE unrelated (x INTEGER)"))
    engine.dispose()
    assert not demo.has_data(f"sqlite:///{empty}")


def test_demo_builds_the_hall(app, session, database_url, monkeypatch):
    monkeypatch.setattr(demo, "HALL_HISTORY_DAYS", 2)  # the hall's history, short (tests/demo/test_demo_history.py)
    assert not demo.has_data(database_url)
    now = utcnow()
    logins = demo.build(session, seed=demo.DEFAULT_SEED, app=app, now=now)
    session.commit()
    assert demo.has_data(database_url)
    today = local_today()

    # Hall, base, virtual locations, tills, settings
    kinds = dict(session.execute(select(Location.code, Location.kind)).all())
    assert {k: kinds[k] for k in ("HALL", "HALL-STORE", "BASE", "SUPPLIER", "CUSTOMER", "LOSS", "COUNT-ADJ")} == {
        "HALL": LocationKind.HALL_FLOOR, "HALL-STORE": LocationKind.HALL_STORE, "BASE": LocationKind.BASE,
        "SUPPLIER": LocationKind.SUPPLIER, "CUSTOMER": LocationKind.CUSTOMER, "LOSS": LocationKind.LOSS,
        "COUNT-ADJ": LocationKind.COUNT_ADJUSTMENT,
    }
    assert {k: kinds[k] for k in ("VAN1", "VAN2")} == {"VAN1": LocationKind.VAN, "VAN2": LocationKind.VAN}
    tills = session.execute(select(Till.code, Till.paper_columns, Till.location_id).order_by(Till.code)).all()
    hall_id = session.scalar(select(Location.id).where(Location.code == "HALL"))
    assert [(c, p) for c, p, _ in tills] == [("H1", 48), ("H2", 48), ("H3", 32)]
    assert {loc for _, _, loc in tills} == {hall_id}
    settings = dict(session.execute(select(Setting.key, Setting.value)).all())
    assert settings["paired_county_code"] == "520628"
    assert settings["paired_county_name"] == "松桃苗族自治县"
    assert settings["rounding_to_jiao"] == "false"
    assert settings["discount_limit_percent"] == "10"
    assert settings["hall_address"].startswith("广东省东莞市虎门镇")

    # Counters: K001 … K126 in the five towns, each with its own kiosk location
    kiosks = session.scalars(select(Kiosk).order_by(Kiosk.code)).all()
    assert [k.code for k in kiosks] == [f"K{n:03d}" for n in range(1, 127)]
    assert {k.town for k in kiosks} == TOWNS
    assert Counter(k.town for k in kiosks).most_common(1)[0][0] == "虎门镇"
    assert all(k.location.kind == LocationKind.KIOSK and k.location.code == k.code for k in kiosks)
    assert all(22.6 < k.latitude < 23.2 and 113.4 < k.longitude < 113.9 for k in kiosks)
    assert all((k.token_hash is not None) == (k.status == KioskStatus.ACTIVE) for k in kiosks)
    status = Counter(k.status for k in kiosks)
    assert status[KioskStatus.ACTIVE] >= 120 and status[KioskStatus.PAUSED] >= 1 and status[KioskStatus.RETIRED] >= 1

    # Planograms: active counters only, 12–20 packaged products at the catalogue price
    slots = session.execute(
        select(Kiosk.code, Kiosk.status, Kiosk.location_id, PlanogramSlot, Product)
        .join(PlanogramSlot, PlanogramSlot.kiosk_id == Kiosk.id)
        .join(Product, Product.id == PlanogramSlot.product_id)
    ).all()
    per_counter = Counter(code for code, *_ in slots)
    assert {code for code, status, *_ in slots} == {k.code for k in kiosks if k.status == KioskStatus.ACTIVE}
    assert all(12 <= n <= 20 for n in per_counter.values())
    for _, _, _, slot, product in slots:
        assert slot.slot in demo_counters.SLOT_NAMES and 4 <= slot.par <= 12
        assert not product.sold_by_weight and slot.price_fen == product.price_fen

    # Products: ~80 with pinyin initials; packaged goods carry valid EAN-13 barcodes, weighed goods a PLU
    products = session.scalars(select(Product)).all()
    assert 70 <= len(products) <= 90
    assert all(p.pinyin_initials == demo_catalogue.pinyin_initials(p.name) and p.pinyin_initials for p in products)
    codes = session.execute(select(Barcode.product_id, Barcode.code, Barcode.kind)).all()
    assert all(len(c) == 13 and c.startswith("69") and ean.is_valid(c) and kind == "ean13" for _, c, kind in codes)
    with_code = Counter(pid for pid, _, _ in codes)
    weighed = [p for p in products if p.sold_by_weight]
    assert 8 <= len(weighed) <= 12
    assert all(p.unit == Unit.KG and p.scale_plu and p.id not in with_code for p in weighed)
    assert all(with_code[p.id] >= 1 for p in products if not p.sold_by_weight)
    # issue 18 point 16: the demo's scale labels scan, with the common rule recorded
    from inventory import catalogue as catalogue_service, scale
    assert [r.pattern for r in catalogue_service.list_barcode_rules(session)] == [scale.DEFAULT_RULE]
    label = scale.encode(scale.DEFAULT_RULE, plu=weighed[0].scale_plu, value=523)
    assert catalogue_service.resolve_scan(session, label) == catalogue_service.ScanResult(
        weighed[0].id, 523, None, "scale_weight")
    assert any(n >= 2 for n in with_code.values())
    assert all(p.cost_fen < p.price_fen for p in products)
    assert all((p.vat == "exempt") == bool(p.vat_exemption_code) for p in products)

    # Suppliers: valid credit codes, mostly Songtao, at least one from outside Guizhou
    suppliers = session.scalars(select(Supplier)).all()
    assert all(uscc.is_valid(s.credit_code) for s in suppliers)
    assert sum(s.origin_county_code == "520628" for s in suppliers) > len(suppliers) / 2
    assert any(s.province != "贵州省" for s in suppliers)

    # Certificates: certified today, uncertified, expired-only and soon-expiring products all present
    certified = {p.id: certification_on(session, p.id, today) for p in products}
    ever_covered = set(session.scalars(select(certificate_products.c.product_id)))
    assert sum(c.certified for c in certified.values()) > len(products) / 2
    assert any(not c.certified and pid not in ever_covered for pid, c in certified.items())
    assert any(not c.certified and pid in ever_covered for pid, c in certified.items())  # expired certificate
    lapsing = session.scalars(select(Certificate).where(
        Certificate.valid_to >= today, Certificate.valid_to <= today + dt.timedelta(days=30))).all()
    assert 2 <= len(lapsing) <= 3
    foreign = {s.id for s in suppliers if s.province != "贵州省"}
    assert not any(certified[p.id].certified for p in products if p.supplier_id in foreign)

    # Stock: per product every location adds up to zero; no real location below zero; lots on every
    # move of goods that expire; some counter slot empty, none above its par
    assert ledger.unbalanced(session) == []
    virtual = {LocationKind.SUPPLIER, LocationKind.CUSTOMER, LocationKind.LOSS, LocationKind.COUNT_ADJUSTMENT}
    assert not session.scalars(select(StockLevel).join(Location, Location.id == StockLevel.location_id).where(
        Location.kind.not_in(virtual), StockLevel.qty_milli < 0)).all()
    lotless = session.scalar(select(func.count()).select_from(StockMove).join(Product, Product.id == StockMove.product_id)
                             .where(Product.shelf_life_days.is_not(None), StockMove.lot_id.is_(None)))
    assert lotless == 0
    assert session.scalar(select(func.count()).select_from(Lot).where(Lot.expires_on <= today + dt.timedelta(days=30))) >= 1
    levels = dict(((loc, pid), qty) for loc, pid, qty in session.execute(
        select(StockLevel.location_id, StockLevel.product_id, StockLevel.qty_milli)))
    on_hand = [levels.get((loc, slot.product_id), 0) for _, _, loc, slot, _ in slots]
    assert 0 in on_hand and any(on_hand)
    assert all(qty <= slot.par * 1000 for qty, (_, _, _, slot, _) in zip(on_hand, slots))
    assert any(qty > 0 for (loc, _), qty in levels.items() if loc == hall_id)

    # The counters' history (pos.demo.counter_history: the simulator over the hall's period, scaled
    # down in process before the last day, then the last day through the counter API): active
    # counters only, on the local day they happened, as many as the simulator's model expects at
    # each window's volume; heartbeats fresh except a few counters offline; the counter stock above
    # is what is left after it
    active = [k for k in kiosks if k.status == KioskStatus.ACTIVE]
    sales = session.execute(select(Sale.kiosk_id, Sale.sold_at, Sale.local_date).where(
        Sale.channel == Channel.KIOSK)).all()
    assert {kid for kid, _, _ in sales} <= {k.id for k in active}
    last_day = now - dt.timedelta(hours=counter_history.LAST_DAY_HOURS)
    start = at_local(local_date(now) - dt.timedelta(days=2), 0)  # HALL_HISTORY_DAYS = 2
    assert all(start <= at <= now and day == local_date(at) for _, at, day in sales)
    recent = [at for _, at, _ in sales if at >= last_day]
    before = [at for _, at, _ in sales if at < last_day]

    def expected(first, last, volume):
        """What the simulator's model expects of the active counters between two moments: at
        weekends offices and schools sell next to nothing, at night most counters nothing."""
        hours, at = [], first
        while at < last:
            hours.append(at)
            at += dt.timedelta(hours=1)
        return {k.id: volume * sum(simulator.expected_sales(k.site_type, h) for h in hours) for k in active}

    in_last_day = expected(last_day, now, counter_history.LAST_DAY_VOLUME)
    in_history = expected(start, last_day, counter_history.HISTORY_VOLUME)
    assert 0.5 * sum(in_last_day.values()) <= len(recent) <= 45 * len(active)
    if sum(in_history.values()) >= 20:  # a Poisson count of mean ≥ 20 is below half of it once in ~300
        assert 0.5 * sum(in_history.values()) <= len(before) <= 2 * sum(in_history.values()) + 20
    fresh = [k for k in active if k.last_heartbeat_at and now - k.last_heartbeat_at <= dt.timedelta(hours=1)]
    assert len(active) - 10 <= len(fresh) < len(active)  # a few counters are offline
    assert all(k.last_heartbeat_at is None for k in kiosks if k.status != KioskStatus.ACTIVE)
    open_counters = [k for k in active if in_last_day[k.id] >= 8]  # P(no sale) below 0.04 % each
    assert sum(k.last_sale_at is not None for k in open_counters) >= len(open_counters) - 5
    # The refill rounds: refills of the counters after the first fill, stamped before the last day
    refills = session.execute(select(StockMove.moved_at, func.count()).join(
        Location, Location.id == StockMove.to_location_id).where(
        StockMove.reason == MoveReason.REFILL, Location.kind == LocationKind.KIOSK).group_by(StockMove.moved_at)).all()
    assert any(at == last_day for at, _ in refills)

    # The hall's own history (pos.demo.history, tested in tests/demo/test_demo_history.py): hall sales
    # on each day before today, in shifts closed at the end of the day; two more cashiers
    hall_days = set(session.scalars(select(Sale.local_date).where(Sale.channel == Channel.HALL)))
    assert hall_days == {local_date(now) - dt.timedelta(days=k) for k in (1, 2)}
    assert session.scalar(select(func.count()).select_from(Shift).where(Shift.status != ShiftStatus.CLOSED)) == 0
    cashiers = session.scalars(select(User.username).where(User.role == Role.CASHIER)).all()
    assert sorted(cashiers) == ["cashier", "cashier2", "cashier3"]

    # One user per role; every login works, PINs for the cashier and the manager
    assert sorted(login["role"] for login in logins) == sorted(r.value for r in Role)
    for login in logins:
        user = accounts.authenticate(session, username=login["username"], secret=login["password"], ip="127.0.0.1")
        assert user is not None and user.role == login["role"]
        if login["role"] in ("cashier", "manager"):
            assert accounts.authenticate(session, username=login["username"], secret=login["pin"],
                                         ip="127.0.0.1", by_pin=True)


def _snapshot(url: str) -> dict:
    """What the demo is made of, without ids or timestamps."""
    engine = create_engine(url)
    with Session(engine) as s:
        sku = dict(s.execute(select(Product.id, Product.sku)).all())
        loc = dict(s.execute(select(Location.id, Location.code)).all())
        shot = {
            "products": s.execute(select(Product.sku, Product.name, Product.price_fen, Product.cost_fen)
                                  .order_by(Product.sku)).all(),
            "barcodes": sorted(s.scalars(select(Barcode.code))),
            "suppliers": sorted(s.execute(select(Supplier.name, Supplier.credit_code)).all()),
            "kiosks": s.execute(select(Kiosk.code, Kiosk.town, Kiosk.site_name, Kiosk.status, Kiosk.latitude)
                                .order_by(Kiosk.code)).all(),
            "slots": sorted((k, slot, sku[p], par) for k, slot, p, par in s.execute(
                select(Kiosk.code, PlanogramSlot.slot, PlanogramSlot.product_id, PlanogramSlot.par)
                .join(Kiosk, Kiosk.id == PlanogramSlot.kiosk_id))),
            "stock": sorted((loc[l], sku[p], q) for l, p, q in s.execute(
                select(StockLevel.location_id, StockLevel.product_id, StockLevel.qty_milli))),
            "users": sorted(s.execute(text("SELECT username, role FROM users")).all()),
            "kiosk_sales": sorted(s.execute(select(Sale.txn_id, Sale.total_fen).where(Sale.txn_id.is_not(None))).all()),
            "hall_sales": s.execute(select(Sale.receipt_no, Sale.sold_at, Sale.total_fen)
                                    .where(Sale.channel != Channel.KIOSK).order_by(Sale.receipt_no)).all(),
        }
    engine.dispose()
    return shot


def test_demo_command(tmp_path, monkeypatch):
    monkeypatch.setenv("SONGTAO_INSTANCE", str(tmp_path / "instance"))
    # The counters' history ends "now": hold the clock still for the two builds, and keep it short.
    frozen = utcnow()
    monkeypatch.setattr(demo, "utcnow", lambda: frozen)
    monkeypatch.setattr(counter_history, "LAST_DAY_HOURS", 6)
    monkeypatch.setattr(demo, "HALL_HISTORY_DAYS", 1)
    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    runner = CliRunner()

    first = runner.invoke(main, ["demo", "--no-serve"], env={"DATABASE_URL": url})
    assert first.exit_code == 0, first.output
    for _role, username, password, pin, _name in demo.DEMO_USERS:
        assert username in first.output and password in first.output
        assert pin is None or pin in first.output
    built = _snapshot(url)
    assert len(built["kiosks"]) == 126 and len(built["users"]) == 7  # the roles' logins and two more cashiers
    assert len(built["kiosk_sales"]) > 0  # the counters' history, the same again below
    assert len(built["hall_sales"]) > 0  # the hall's history, the same again below
    # --no-serve stays quick: no fake payment gateway, no rehearsal keys, no credentials
    assert not (tmp_path / "instance" / "fake-gateway").exists()
    assert not (tmp_path / "instance" / "payment_credentials").exists()
    assert "付款码" not in first.output

    # A database that holds data is refused in one Chinese line and left alone.
    again = runner.invoke(main, ["demo", "--no-serve"], env={"DATABASE_URL": url})
    assert again.exit_code != 0
    assert len(again.output.strip().splitlines()) == 1
    assert "已有数据" in again.output and "--force" in again.output
    assert _snapshot(url) == built

    # --force wipes what was there and builds the same shop again from the same seed.
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE products SET price_fen = 1 WHERE sku = 'ST0001'"))
    engine.dispose()
    forced = runner.invoke(main, ["demo", "--no-serve", "--force"], env={"DATABASE_URL": url})
    assert forced.exit_code == 0, forced.output
    assert _snapshot(url) == built
