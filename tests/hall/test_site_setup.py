"""Issue 13: the site's places and tills (pages and rules), the bookkeeping locations init-db
makes, PUBLIC_BASE_URL for every receipt's QR code."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from inventory import catalogue, ledger
from inventory.locations import BOOKKEEPING_CODES
from inventory.models import AuditEvent, Location, LocationKind, MoveReason, Product
from pos import create_app
from pos.cli import _only_seeded, main
from pos.core.db import session_scope
from pos.hall import setup
from pos.hall.settings import hall_settings
from pos.models import Till
from tests.conftest import csrf_token


def test_init_db_makes_the_bookkeeping_locations_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.sqlite3'}"
    runner = CliRunner()
    first = runner.invoke(main, ["init-db"], env={"DATABASE_URL": url})
    assert first.exit_code == 0 and "已建立记账位置：SUPPLIER、CUSTOMER、LOSS、COUNT-ADJ" in first.output
    again = runner.invoke(main, ["init-db"], env={"DATABASE_URL": url})
    assert again.exit_code == 0 and "记账位置" not in again.output
    assert _only_seeded(url)  # the demo may still be built here without --force
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "x"})
    try:
        with session_scope(app) as s:
            rows = {loc.code: loc.kind for loc in s.scalars(select(Location))}
            assert rows == {"SUPPLIER": LocationKind.SUPPLIER, "CUSTOMER": LocationKind.CUSTOMER,
                            "LOSS": LocationKind.LOSS, "COUNT-ADJ": LocationKind.COUNT_ADJUSTMENT}
            for kind in (LocationKind.SUPPLIER, LocationKind.CUSTOMER, LocationKind.LOSS, LocationKind.COUNT_ADJUSTMENT):
                assert ledger.virtual_location(s, kind).code in BOOKKEEPING_CODES
    finally:
        app.extensions["songtao.engine"].dispose()


def test_public_base_url_comes_from_the_environment_and_every_qr_code_uses_it(monkeypatch, database_url):
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://pos.example.cn/")
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "x"})
    try:
        assert app.config["PUBLIC_BASE_URL"] == "https://pos.example.cn"
        from pos.sales.receipts import public_url

        with app.test_request_context(base_url="http://192.168.1.20:8080"):
            assert public_url("H1-20261126-0001").startswith("https://pos.example.cn/r/H1-20261126-0001?t=")
    finally:
        app.extensions["songtao.engine"].dispose()
    monkeypatch.setenv("PUBLIC_BASE_URL", "pos.example.cn")
    with pytest.raises(setup.SetupError) as refused:
        create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "x"})
    assert "PUBLIC_BASE_URL 应为 https://域名 这样的地址" in str(refused.value)


@pytest.fixture
def admin(client, auth, make_user):
    make_user("root", "admin")
    assert auth.login("root").status_code == 302
    return client


def test_the_setup_pages_show_where_qr_codes_point(app, admin):
    page = admin.get("/setup").get_data(as_text=True)
    assert 'id="public-url-warning"' in page and "顾客的手机在店外打不开" in page
    assert 'id="first-run-notice"' in admin.get("/dashboard").get_data(as_text=True)
    app.config["PUBLIC_BASE_URL"] = "https://pos.example.cn"
    page = admin.get("/setup").get_data(as_text=True)
    assert 'id="public-url-warning"' not in page and "https://pos.example.cn" in page


def test_only_an_admin_sets_the_site_up(client, auth, make_user):
    make_user("boss", "manager")
    auth.login("boss")
    assert client.get("/site").status_code == 403 and client.get("/setup").status_code == 403
    assert 'id="first-run-notice"' not in client.get("/dashboard").get_data(as_text=True)


def test_the_site_page_refuses_bad_input_with_a_message_and_changes_nothing(app, admin):
    with session_scope(app) as s:
        setup.add_location(s, code="HALL", kind="hall", name="卖场")
        setup.add_location(s, code="BASE", kind="base", name="基地")
        setup.add_till(s, code="H1", name="1号", location="HALL")
    token = csrf_token(admin, "/site")
    cases = [
        ("/site/places", {"code": "hall", "kind": "hall", "name": "又一个"}, "位置编号 HALL 已存在"),
        ("/site/places", {"code": "X1", "kind": "garage", "name": "车库"}, "位置类型只能是"),
        ("/site/places", {"code": "X1", "kind": "van", "name": ""}, "名称不能为空"),
        ("/site/places/HALL", {"action": "retire"}, "还有 1 台收银台在用"),
        ("/site/places/SUPPLIER", {"action": "rename", "name": "x"}, "位置不存在"),
        ("/site/tills", {"code": "H2", "name": "2号", "location": "BASE"}, "收银台只能设在卖场"),
        ("/site/tills", {"code": "H1", "name": "1号", "location": "HALL"}, "收银台编号 H1 已存在"),
        ("/site/tills/H1", {"action": "save", "name": "1号", "location": "HALL", "printer": "file:///etc/passwd",
                            "paper": "80"}, "打印机"),
        ("/site/tills/H1", {"action": "save", "name": "1号", "location": "HALL", "printer": "none", "paper": "57"},
         "纸宽只能是 80 或 58"),
        ("/site/hall", {"hall_name": "", "paired_county_code": "520628"}, "请填写门店名称"),
        ("/site/hall", {"hall_name": "馆", "paired_county_code": "52062X"}, "6 位数字"),
    ]
    before = {loc.code: (loc.name, loc.active) for loc in _places(app)}
    audits = _count(app, AuditEvent)
    for path, data, message in cases:
        response = admin.post(path, data={"csrf_token": token, **data})
        body = response.get_data(as_text=True)
        assert response.status_code in (400, 404), (path, data, response.status_code)
        if response.status_code == 400:
            assert message in body, (path, message)
    assert {loc.code: (loc.name, loc.active) for loc in _places(app)} == before
    assert _count(app, AuditEvent) == audits
    with session_scope(app) as s:
        till = s.scalar(select(Till))
        assert (till.printer_uri, till.paper_columns) == ("none", 48)
    assert admin.post("/site/tills/H9", data={"csrf_token": token, "action": "retire"}).status_code == 404
    assert admin.post("/site/places/HALL", data={"csrf_token": token, "action": "explode"}).status_code == 400
    assert admin.post("/site/places", data={"code": "X"}).status_code == 400  # no CSRF token


def test_a_place_with_stock_is_retired_only_when_empty_and_comes_back(app, admin):
    with session_scope(app) as s:
        setup.add_location(s, code="BASE", kind="base", name="基地")
        from inventory.locations import ensure_bookkeeping_locations

        ensure_bookkeeping_locations(s)
        product = catalogue.create_product(s, sku="TEA", name="茶", price_fen=1000)
        base = s.scalar(select(Location).where(Location.code == "BASE"))
        ledger.move(s, product_id=product.id, qty_milli=3000, from_location_id=ledger.virtual_location(
            s, LocationKind.SUPPLIER).id, to_location_id=base.id, reason=MoveReason.OPENING)
    token = csrf_token(admin, "/site")
    refused = admin.post("/site/places/BASE", data={"csrf_token": token, "action": "retire"})
    assert refused.status_code == 400 and "账面上还有 1 种商品的库存" in refused.get_data(as_text=True)
    with session_scope(app) as s:
        base = s.scalar(select(Location).where(Location.code == "BASE"))
        ledger.move(s, product_id=s.scalar(select(Product.id)), qty_milli=3000, from_location_id=base.id,
                    to_location_id=ledger.virtual_location(s, LocationKind.LOSS).id, reason=MoveReason.WRITE_OFF)
    assert admin.post("/site/places/BASE", data={"csrf_token": token, "action": "retire"}).status_code == 302
    assert admin.post("/site/places/BASE", data={"csrf_token": token, "action": "reactivate"}).status_code == 302
    with session_scope(app) as s:
        assert s.scalar(select(Location.active).where(Location.code == "BASE")) is True
        actions = list(s.scalars(select(AuditEvent.action).where(AuditEvent.entity == "location").order_by(AuditEvent.id)))
        assert actions == ["location.create", "location.retire", "location.reactivate"]


def test_the_hall_name_is_a_setting_of_the_site_page(app, admin):
    token = csrf_token(admin, "/site")
    saved = admin.post("/site/hall", data={"csrf_token": token, "hall_name": "松桃馆·虎门店",
                                           "hall_address": "虎门镇连升中路 8 号", "paired_county_code": "520628",
                                           "paired_county_name": "松桃苗族自治县"})
    assert saved.status_code == 302
    with session_scope(app) as s:
        assert hall_settings(s).hall_name == "松桃馆·虎门店"


def test_the_first_run_page_makes_everything_or_nothing(app, admin):
    token = csrf_token(admin, "/setup")
    form = {"csrf_token": token, "hall_name": "松桃馆", "hall_address": "", "paired_county_code": "520628",
            "paired_county_name": "松桃苗族自治县", "floor_code": "HALL", "floor_name": "卖场", "store_code": "",
            "store_name": "", "base_code": "BASE", "base_name": "基地", "van1_code": "VAN1", "van1_name": "车 1",
            "till_code": "H1", "till_name": "1号", "till_printer": "none", "till_paper": "80"}
    bad = admin.post("/setup", data=dict(form, base_code="K007", till_paper="99"))
    text = bad.get_data(as_text=True)
    assert bad.status_code == 400 and "留给消费专柜" in text and "纸宽只能是 80 或 58" in text
    assert _places(app) == [] or {p.code for p in _places(app)} <= BOOKKEEPING_CODES
    assert _count(app, Till) == 0
    made = admin.post("/setup", data=form)
    assert made.status_code == 302 and made.headers["Location"].endswith("/site")
    assert {p.code for p in _places(app)} == {"HALL", "BASE", "VAN1"}
    again = admin.post("/setup", data=form)  # set up already: nothing is made twice
    assert again.status_code == 302 and _count(app, Till) == 1
    assert admin.get("/setup").status_code == 302


def _places(app):
    with session_scope(app) as s:
        return list(s.scalars(select(Location).where(Location.code.not_in(list(BOOKKEEPING_CODES)))))


def _count(app, model) -> int:
    with session_scope(app) as s:
        return s.scalar(select(func.count()).select_from(model))


def test_a_till_with_an_open_shift_is_not_retired(app, admin, make_user):
    from pos.hall.shifts import open_shift

    cashier = make_user("cash", "cashier")
    with session_scope(app) as s:
        setup.add_location(s, code="HALL", kind="hall", name="卖场")
        till = setup.add_till(s, code="H1", name="1号", location="HALL")
        open_shift(s, till_id=till.id, cashier_id=cashier, opening_float_fen=0)
    token = csrf_token(admin, "/site")
    refused = admin.post("/site/tills/H1", data={"csrf_token": token, "action": "retire"})
    assert refused.status_code == 400 and "还没交班" in refused.get_data(as_text=True)
    with session_scope(app) as s:
        assert s.scalar(select(Till.active)) is True
