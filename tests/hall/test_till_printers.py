"""The manager's till and printer page: a printer URI and paper width per till (validated,
audited), and the test-print and open-drawer buttons reaching a real network printer."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from inventory.models import AuditEvent, Location, LocationKind
from pos.core.db import session_scope
from pos.sales.escpos import drawer_kick_bytes
from pos.models import Till
from tests.conftest import csrf_token, free_port
from tests.fixtures.printers import FakePrinter


def job_page(client, answer, timeout: float = 10) -> str:
    """A button's redirect followed, and the tills page reloaded (as its refresh does) until the
    job is no longer pending."""
    assert answer.status_code == 302
    end = time.monotonic() + timeout
    while True:
        page = client.get(answer.headers["Location"]).get_data(as_text=True)
        if 'data-job="pending"' not in page or time.monotonic() > end:
            return page
        time.sleep(0.05)


@pytest.fixture
def till(app):
    with session_scope(app) as s:
        hall = Location(code="HALL", name="卖场", kind=LocationKind.HALL_FLOOR)
        s.add(hall)
        s.flush()
        s.add(Till(code="H1", name="1号收银台", location_id=hall.id, printer_uri="none", paper_columns=48))
    return "H1"


@pytest.fixture
def manager(client, auth, make_user):
    make_user("wumei", "manager")
    auth.login("wumei")
    return client


def _till(app) -> Till:
    with session_scope(app) as s:
        till = s.scalar(select(Till).where(Till.code == "H1"))
        s.expunge(till)
        return till


def _audits(app, action: str) -> int:
    with session_scope(app) as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action))


def test_the_manager_sets_a_printer_and_a_bad_uri_changes_nothing(app, manager, till):
    token = csrf_token(manager, "/shifts/tills")
    bad = manager.post("/shifts/tills/H1", data={"csrf_token": token, "printer_uri": "lpt1", "paper_columns": "48"})
    assert bad.status_code == 400 and "打印机地址应为" in bad.get_data(as_text=True)
    assert _till(app).printer_uri == "none"
    narrow = manager.post("/shifts/tills/H1", data={"csrf_token": token, "printer_uri": "tcp://10.0.0.9:9100",
                                                    "paper_columns": "40"})
    assert narrow.status_code == 400 and _till(app).printer_uri == "none"
    good = manager.post("/shifts/tills/H1", data={"csrf_token": token, "printer_uri": " tcp://10.0.0.9:9100 ",
                                                  "paper_columns": "32"})
    assert good.status_code == 302
    saved = _till(app)
    assert (saved.printer_uri, saved.paper_columns) == ("tcp://10.0.0.9:9100", 32)
    assert _audits(app, "till.printer") == 1
    assert manager.post("/shifts/tills/H9", data={"csrf_token": token, "printer_uri": "none",
                                                  "paper_columns": "48"}).status_code == 404


def test_test_print_and_drawer_reach_the_printer_and_the_drawer_is_audited(app, manager, till):
    printer = FakePrinter()
    try:
        token = csrf_token(manager, "/shifts/tills")
        manager.post("/shifts/tills/H1", data={"csrf_token": token, "printer_uri": f"tcp://127.0.0.1:{printer.port}",
                                               "paper_columns": "48"})
        tested = job_page(manager, manager.post("/shifts/tills/H1/test_print", data={"csrf_token": token}))
        assert 'data-job="printed"' in tested and "已打印测试页" in tested
        page = job_page(manager, manager.post("/shifts/tills/H1/drawer", data={"csrf_token": token}))
        test_page, kick = printer.wait_jobs(2)
    finally:
        printer.close()
    assert "测试".encode("gb18030") in test_page
    assert kick == drawer_kick_bytes()
    assert _audits(app, "till.drawer_open") == 1
    assert "钱箱已打开" in page


def test_a_printer_that_is_off_gives_a_message_not_an_error_page(app, manager, till):
    token = csrf_token(manager, "/shifts/tills")
    manager.post("/shifts/tills/H1", data={"csrf_token": token, "printer_uri": f"tcp://127.0.0.1:{free_port()}",
                                           "paper_columns": "48"})
    page = job_page(manager, manager.post("/shifts/tills/H1/test_print", data={"csrf_token": token}))
    assert 'data-job="failed"' in page and "打印机没有响应" in page


@pytest.mark.parametrize("role, status", [("cashier", 403), ("restocker", 403), ("auditor", 403),
                                          ("manager", 200), ("admin", 200)])
def test_only_managers_see_the_till_page(client, auth, make_user, till, role, status):
    make_user("someone", role)
    auth.login("someone")
    assert client.get("/shifts/tills").status_code == status
