"""Issue 13: counters from a spreadsheet (``songtao import-kiosks`` and the manager's fleet pages),
the "add counter" form, and the set-up commands that refuse bad input as a whole."""
from __future__ import annotations

import io
import json

import pytest
from click.testing import CliRunner
from openpyxl import Workbook
from sqlalchemy import func, select

from inventory.models import AuditEvent, Location, LocationKind
from kiosks import fleet_import
from kiosks.models import Kiosk, SiteType
from pos.cli import main
from pos.core.db import session_scope
from tests.conftest import csrf_token

HEADER = "code,name,site_type,host,town,address,lat,lng\n"
GOOD = HEADER + (
    "K001,虎门镇政府专柜,government,虎门镇人民政府,虎门镇,虎门镇银龙路 1 号,22.8150,113.6730\n"
    "K002,沙田医院专柜,医院,沙田镇人民医院,沙田镇,沙田镇港口大道 2 号,,\n"
)
BAD = HEADER + (
    "K001,,school,单位,虎门镇,地址,22.8,113.6\n"          # empty name
    "K002,站点,swimming pool,单位,虎门镇,地址,22.8,113.6\n"  # unknown site type
    "K003,站点,school,单位,虎门镇,地址,95,113.6\n"          # latitude out of range
    "K003,站点,school,单位,虎门镇,地址,22.8,113.6\n"        # duplicate code
)


def count(app, model, *where) -> int:
    with session_scope(app) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def xlsx(rows: list[list]) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_file_creates_counters_with_their_stock_locations_and_a_rerun_updates(app):
    with session_scope(app) as s:
        plan = fleet_import.apply_import(s, "k.csv", GOOD.encode(), actor_id=None)
    assert (plan.created, plan.updated, plan.unchanged) == (2, 0, 0)
    with session_scope(app) as s:
        k1 = s.scalar(select(Kiosk).where(Kiosk.code == "K001"))
        assert (k1.site_name, k1.host_org, k1.site_type, k1.latitude) == ("虎门镇政府专柜", "虎门镇人民政府",
                                                                          SiteType.GOVERNMENT, 22.815)
        assert s.get(Location, k1.location_id).kind == LocationKind.KIOSK
        assert s.scalar(select(Kiosk.site_type).where(Kiosk.code == "K002")) == SiteType.HOSPITAL
    changed = GOOD.replace("沙田医院专柜", "沙田医院门诊专柜")
    with session_scope(app) as s:
        again = fleet_import.apply_import(s, "k.csv", changed.encode(), actor_id=None)
    assert (again.created, again.updated, again.unchanged) == (0, 1, 1)
    assert count(app, Kiosk) == 2 and count(app, Location, Location.kind == LocationKind.KIOSK) == 2
    with session_scope(app) as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "kiosk.update")).one()
        assert json.loads(event.after) == {"site_name": "沙田医院门诊专柜"}


def test_chinese_headers_in_an_xlsx_file(app):
    data = xlsx([["编号", "名称", "场所类型", "所在单位", "镇街", "地址", "纬度", "经度"],
                 ["K010", "中堂学校专柜", "学校", "中堂中学", "中堂镇", "中堂镇某路", 22.95, 113.65]])
    with session_scope(app) as s:
        assert fleet_import.apply_import(s, "k.xlsx", data).created == 1
    with session_scope(app) as s:
        k = s.scalar(select(Kiosk).where(Kiosk.code == "K010"))
        assert (k.site_type, k.town, k.longitude) == (SiteType.SCHOOL, "中堂镇", 113.65)


def test_a_bad_file_is_refused_as_a_whole_with_every_rows_errors(app):
    with session_scope(app) as s:
        plan = fleet_import.plan_import(s, "bad.csv", BAD.encode())
    described = [e.describe() for e in plan.errors]
    assert described == [
        "第 2 行「name」：名称不能为空",
        "第 3 行「site_type」：场所类型「swimming pool」不认识，可用：机关、医院、学校、企业、饭堂、其他",
        "第 4 行「lat」：纬度应在 −90 到 90 之间：95",
        "第 5 行「code」：专柜编号 K003 重复（第 4 行已有）",
    ]
    locations = count(app, Location)
    with session_scope(app) as s, pytest.raises(fleet_import.KiosksRefused) as refused:
        fleet_import.apply_import(s, "bad.csv", BAD.encode())
    assert len(refused.value.errors) == 4
    assert count(app, Kiosk) == 0 and count(app, Location) == locations


def test_the_command_prints_every_error_and_writes_nothing(app, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD, encoding="utf-8")
    runner = CliRunner()
    env = {"DATABASE_URL": app.config["DATABASE_URL"], "SECRET_KEY": "x"}
    result = runner.invoke(main, ["import-kiosks", str(bad)], env=env)
    assert result.exit_code == 1
    for fragment in ("第 2 行「name」", "第 3 行「site_type」", "第 4 行「lat」", "第 5 行「code」",
                     "导入被拒绝：4 处错误，未写入任何数据"):
        assert fragment in result.output
    assert count(app, Kiosk) == 0
    missing = runner.invoke(main, ["import-kiosks", str(tmp_path / "nope.csv")], env=env)
    assert missing.exit_code == 1 and "找不到文件" in missing.output
    not_a_sheet = tmp_path / "x.csv"
    not_a_sheet.write_bytes(b"\x00\x01\x02")
    refused = runner.invoke(main, ["import-kiosks", str(not_a_sheet)], env=env)
    assert refused.exit_code == 1 and "文件不是 CSV 或 Excel 表格" in refused.output


@pytest.fixture
def manager(client, auth, make_user):
    make_user("boss", "manager")
    assert auth.login("boss").status_code == 302
    return client


def test_the_fleet_page_imports_a_file_and_refuses_a_bad_one(app, manager):
    page = manager.get("/fleet/import")
    assert page.status_code == 200 and "编号" in page.get_data(as_text=True)
    token = csrf_token(manager, "/fleet/import")
    bad = manager.post("/fleet/import", data={"csrf_token": token, "file": (io.BytesIO(BAD.encode()), "bad.csv")},
                       content_type="multipart/form-data")
    text = bad.get_data(as_text=True)
    assert bad.status_code == 400
    assert "第 2 行「name」：名称不能为空" in text and "第 5 行「code」：专柜编号 K003 重复" in text
    assert count(app, Kiosk) == 0
    empty = manager.post("/fleet/import", data={"csrf_token": token}, content_type="multipart/form-data")
    assert empty.status_code == 400 and "请选择一个 CSV 或 Excel 文件" in empty.get_data(as_text=True)
    good = manager.post("/fleet/import", data={"csrf_token": token, "file": (io.BytesIO(GOOD.encode()), "k.csv")},
                        content_type="multipart/form-data")
    assert good.status_code == 200 and "新建 2 个专柜" in good.get_data(as_text=True)
    assert count(app, Kiosk) == 2
    assert "导入专柜" in manager.get("/fleet/").get_data(as_text=True)


def test_the_add_counter_form(app, manager):
    assert manager.get("/fleet/new").status_code == 200
    token = csrf_token(manager, "/fleet/new")
    form = {"csrf_token": token, "code": "k127", "site_name": "麻涌镇政府专柜", "host_org": "麻涌镇人民政府",
            "site_type": "government", "town": "麻涌镇", "address": "麻涌镇某路 1 号", "latitude": "23.05",
            "longitude": "113.58", "food_filing_no": ""}
    bad = manager.post("/fleet/new", data=dict(form, latitude="123"))
    assert bad.status_code == 400 and "坐标不正确" in bad.get_data(as_text=True)
    assert count(app, Kiosk) == 0
    made = manager.post("/fleet/new", data=form)
    assert made.status_code == 302 and made.headers["Location"].endswith("/fleet/K127")
    again = manager.post("/fleet/new", data=form)
    assert again.status_code == 400 and "K127 已存在" in again.get_data(as_text=True)
    with session_scope(app) as s:
        k = s.scalar(select(Kiosk).where(Kiosk.code == "K127"))
        assert k.town == "麻涌镇" and s.get(Location, k.location_id).code == "K127"
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "kiosk.create")) == 1


def test_set_up_commands_refuse_bad_input_with_one_line_and_write_nothing(app):
    runner = CliRunner()
    env = {"DATABASE_URL": app.config["DATABASE_URL"], "SECRET_KEY": "x"}

    def run(*args):
        return runner.invoke(main, list(args), env=env)

    assert run("add-location", "HALL", "--kind", "hall", "--name", "卖场").exit_code == 0
    cases = [
        (("add-location", "HALL", "--kind", "hall", "--name", "又一个"), "位置编号 HALL 已存在"),
        (("add-location", "K001", "--kind", "base", "--name", "基地"), "留给消费专柜"),
        (("add-location", "BASE", "--kind", "base", "--name", " "), "名称不能为空"),
        (("add-till", "H1", "--name", "一号", "--location", "NOPE"), "位置不存在：NOPE"),
        (("add-till", "H1", "--name", "一号", "--location", "HALL", "--printer", "tcp://8.8.8.8:9100"), "打印机"),
        (("add-till", "h 1", "--name", "一号", "--location", "HALL"), "收银台编号"),
    ]
    for args, message in cases:
        result = run(*args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    wrong_kind = run("add-location", "X", "--kind", "warehouse", "--name", "x")
    assert wrong_kind.exit_code == 2
    assert run("add-till", "H1", "--name", "一号", "--location", "HALL", "--paper", "58").exit_code == 0
    from pos.models import Till

    with session_scope(app) as s:
        till = s.scalar(select(Till))
        assert (till.code, till.paper_columns, till.printer_uri) == ("H1", 32, "none")
    assert count(app, Location, Location.code == "HALL") == 1
