"""Printing on a real network printer: a TCP server on 127.0.0.1 accepts the connection as a
thermal printer on port 9100 would, and what it receives must decode to the receipt (GB18030 in
Chinese mode, the QR command carrying the signed URL, the cut). A printer that is off never loses
or blocks a sale, and the reprint is counted and marked 重印. Printer URIs, the drawer kick."""
from __future__ import annotations

import socket

import pytest
from sqlalchemy import func, select

from inventory.models import AuditEvent
from pos.hall import printers
from pos.hall import printing
from pos.sales.escpos import FS_CHINESE_ON, drawer_kick_bytes, gb18030
from pos.models import Refund, Sale, Till
from pos.sales.links import receipt_url
from pos.sales.pricing import LineIn
from pos.sales.reading import get_sale
from pos.sales.service import PaymentIn, SaleIn, record_sale
from tests.conftest import free_port
from tests.fixtures.sales import SOLD_AT, hall  # noqa: F401  (fixture)
from tests.fixtures.printers import CUT, DRAWER, QR_STORE, FakePrinter, finished
from tests.fixtures.stock import engine, world  # noqa: F401  (fixtures)


TEST_POLICY = printers.PrinterPolicy(allowed_ports=frozenset(range(1024, 65536)), status_timeout=0.2)


def spool_policy(folder) -> printers.PrinterPolicy:
    return printers.PrinterPolicy(spool_dir=str(folder), allowed_ports=TEST_POLICY.allowed_ports, status_timeout=0.2)


@pytest.fixture
def printer():
    p = FakePrinter()
    yield p
    p.close()


def set_printer(s, till_id: int, uri: str, columns: int = 48) -> None:
    till = s.get(Till, till_id)
    till.printer_uri, till.paper_columns = uri, columns
    s.commit()


def a_sale(hall, s, *, method="cash") -> str:
    lines = [LineIn(hall.tea_id, 1000), LineIn(hall.pork_id, 523)]
    total = 16800 + 1987
    result = record_sale(s, SaleIn(channel="hall", location_id=None, lines=lines,
                                   payments=[PaymentIn(method, total, 20000 if method == "cash" else None)],
                                   till_id=hall.till_id, cashier_id=hall.cashier_id, sold_at=SOLD_AT))
    s.commit()
    return result.receipt_no


def test_a_receipt_reaches_a_network_printer_as_gb18030_with_qr_and_cut(app, hall, printer):
    with app.test_request_context(base_url="http://pos.hall.lan"):
        with hall.session() as s:
            set_printer(s, hall.till_id, f"tcp://127.0.0.1:{printer.port}", 32)
            receipt_no = a_sale(hall, s)
            result = printing.print_receipt(s, receipt_no, reprint=False, user_id=hall.cashier_id)
        url = receipt_url(receipt_no)
    assert result.ok and result.error is None and result.reprint_count == 0
    (job,) = printer.wait_jobs(1)
    assert job.startswith(DRAWER)  # a cash sale's first print opens the drawer first
    assert b"\x1b@" in job and FS_CHINESE_ON in job
    assert job.index(FS_CHINESE_ON) < job.index("梵净山珍·松桃馆".encode("gb18030"))
    for text in ("梵净山珍·松桃馆", "梵净山翠峰茶 250g", "松桃黑猪腊肉", "0.523kg", "￥168.00", "￥19.87",
                 "本单扶贫产品金额", "★ 为认定的扶贫产品", "龙燕", receipt_no):
        assert text.encode("gb18030") in job, text
    assert "梵净山".encode("utf-8") not in job  # Chinese goes as GB18030, never UTF-8
    assert "¥".encode("gb18030") not in job    # only the full-width ￥
    assert url.startswith("http://pos.hall.lan/r/") and "?t=" in url
    qr = job.index(QR_STORE)
    assert url.encode("ascii") in job[qr:] and job.index(url.encode("ascii")) > qr
    assert CUT in job[job.index(url.encode("ascii")):]  # the cut comes after the QR code
    text = job.decode("gb18030", errors="replace")
    assert "重印" not in text


def test_a_printer_that_is_off_never_loses_the_sale_and_the_reprint_is_marked(app, hall):
    port = free_port()  # nothing listens here: the printer is off
    with app.test_request_context():
        with hall.session() as s:
            set_printer(s, hall.till_id, f"tcp://127.0.0.1:{port}")
            receipt_no = a_sale(hall, s)
            failed = printing.print_receipt(s, receipt_no, reprint=False, user_id=hall.cashier_id, timeout=1)
            assert not failed.ok and failed.error and failed.reprint_count == 0
        with hall.session() as s:
            sale = s.scalar(select(Sale).where(Sale.receipt_no == receipt_no))
            assert sale is not None and sale.total_fen == 18787 and sale.reprint_count == 0
        back = FakePrinter(port)  # the printer is switched on again
        try:
            with hall.session() as s:
                again = printing.print_receipt(s, receipt_no, reprint=True, user_id=hall.cashier_id)
            assert again.ok and again.reprint_count == 1
            (job,) = back.wait_jobs(1)
        finally:
            back.close()
    assert "重印".encode("gb18030") in job and CUT in job
    assert not job.startswith(DRAWER)  # a reprint does not open the drawer again
    with hall.session() as s:
        assert s.scalar(select(Sale.reprint_count).where(Sale.receipt_no == receipt_no)) == 1
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "sale.reprint")) == 1


def test_a_printer_that_accepts_but_never_reads_gives_up_instead_of_blocking(app, hall):
    """A printer out of paper accepts the connection and stops reading: once the socket buffers
    are full the send can only end by its timeout, with ok=False (a send without a timeout would
    hang this test). A closed port fails at once."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts into the backlog, never reads
    try:
        stuck = printers.send(f"tcp://127.0.0.1:{silent.getsockname()[1]}", b"x" * (16 * 1024 * 1024), timeout=0.5,
                              policy=TEST_POLICY)
        assert not stuck.ok and stuck.error
        closed = printers.send(f"tcp://127.0.0.1:{free_port()}", b"x", timeout=1, policy=TEST_POLICY)
        assert not closed.ok and closed.error
    finally:
        silent.close()


def test_a_card_sale_opens_no_drawer_and_the_manager_button_does_audited(app, hall, printer):
    with app.test_request_context():
        with hall.session() as s:
            set_printer(s, hall.till_id, f"tcp://127.0.0.1:{printer.port}")
            receipt_no = a_sale(hall, s, method="wechat")
            assert printing.print_receipt(s, receipt_no, reprint=False, user_id=hall.cashier_id).ok
            assert printing.open_drawer(s, "H1", user_id=hall.manager_id).ok
            assert printing.test_print(s, "H1").ok
            assert s.scalar(select(func.count()).select_from(AuditEvent)
                            .where(AuditEvent.action == "till.drawer_open")) == 1
    receipt, drawer, test = printer.wait_jobs(3)
    assert DRAWER not in receipt.split(FS_CHINESE_ON)[0]
    assert drawer == drawer_kick_bytes() == b"\x1bp\x00\x32\x32"
    assert "测试打印".encode("gb18030") in test and CUT in test


@pytest.mark.parametrize("uri, expected", [
    ("tcp://192.168.1.50:9100", printers.PrinterSpec("tcp", host="192.168.1.50", port=9100)),
    ("tcp://printer.lan", printers.PrinterSpec("tcp", host="printer.lan", port=9100)),
    ("usb://0416:5011", printers.PrinterSpec("usb", vendor=0x0416, product=0x5011)),
    ("serial:///dev/ttyUSB0?baudrate=19200", printers.PrinterSpec("serial", path="/dev/ttyUSB0", baudrate=19200)),
    ("file:///dev/usb/lp0", printers.PrinterSpec("file", path="/dev/usb/lp0")),
    ("none", printers.PrinterSpec("none")),
    ("", printers.PrinterSpec("none")),
])
def test_printer_uris_are_parsed(uri, expected):
    assert printers.parse_uri(uri) == expected


@pytest.mark.parametrize("uri", ["lpt1", "tcp://", "usb://zz:11", "serial://", "tcp://h:99999",
                                 "serial:///dev/ttyS0?baudrate=fast", "http://x"])
def test_bad_printer_uris_are_refused_clearly(uri):
    with pytest.raises(printers.PrinterUriError, match="tcp://"):
        printers.parse_uri(uri)
    result = printers.send(uri, b"x")
    assert not result.ok and "tcp://" in result.error


def test_open_printer_makes_the_python_escpos_printers(tmp_path):
    from escpos import printer as ep

    net = printers.open_printer("tcp://10.0.0.9:9100", timeout=2)
    assert isinstance(net, ep.Network) and (net.host, net.port, net.timeout) == ("10.0.0.9", 9100, 2)
    assert isinstance(printers.open_printer(f"file://{tmp_path}/lp0", policy=spool_policy(tmp_path)), ep.File)
    assert printers.open_printer("none") is None


def test_none_prints_nothing_and_a_file_printer_gets_the_bytes(tmp_path):
    assert printers.send("none", b"anything") == printers.PrintResult(True)
    target = tmp_path / "lp0"
    target.write_bytes(b"")
    assert printers.send(f"file://{target}", gb18030("松桃") + b"\n", policy=spool_policy(tmp_path)).ok
    assert target.read_bytes() == "松桃".encode("gb18030") + b"\n"


# --- over the API ---------------------------------------------------------------------------------

def test_the_api_prints_reprints_and_guards_the_drawer(app, client, auth, make_user, hall):
    from tests.conftest import csrf_token

    port = free_port()
    with hall.session() as s:
        set_printer(s, hall.till_id, f"tcp://127.0.0.1:{port}")
        receipt_no = a_sale(hall, s)
    make_user("c1", "cashier")
    make_user("m1", "manager")
    auth.login("c1")
    headers = {"X-CSRFToken": csrf_token(client, "/account")}

    def post(path, body=None):
        return client.post(path, json=body if body is not None else {}, headers=headers)

    failed = finished(client, post(f"/api/v1/sales/{receipt_no}/print", {"reprint": False}), headers)
    assert failed["status"] == "failed" and failed["ok"] is False and failed["error"]
    back = FakePrinter(port)
    try:
        again = finished(client, post(f"/api/v1/sales/{receipt_no}/print", {"reprint": True}), headers)
        assert {k: again[k] for k in ("status", "ok", "error", "reprint_count")} == {
            "status": "printed", "ok": True, "error": None, "reprint_count": 1}
        assert "重印".encode("gb18030") in back.wait_jobs(1)[0]
        assert post("/api/v1/sales/H1-20991231-0001/print", {"reprint": False}).status_code == 404
        assert post(f"/api/v1/sales/{receipt_no}/print", {"reprint": "yes"}).status_code == 422
        assert client.get("/api/v1/print-jobs/nonsense").status_code == 404
        assert client.get("/api/v1/print-jobs/" + "0" * 32).status_code == 404
        assert post("/api/v1/tills/H1/drawer").status_code == 403       # a cashier alone may not
        assert post("/api/v1/tills/H1/test-print").status_code == 403   # managers only
        auth.logout()
        auth.login("m1")
        headers["X-CSRFToken"] = csrf_token(client, "/account")
        drawer = finished(client, post("/api/v1/tills/H1/drawer"), headers)
        assert (drawer["status"], drawer["ok"], drawer["error"]) == ("printed", True, None)
        assert finished(client, post("/api/v1/tills/H1/test-print"), headers)["ok"] is True
        assert post("/api/v1/tills/H9/drawer").status_code == 404
        back.wait_jobs(3)
    finally:
        back.close()
    assert back.jobs[1] == drawer_kick_bytes()
    with hall.session() as s:
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "till.drawer_open"))
        assert event is not None and event.user_id is not None


def test_a_refund_receipt_naming_the_original_reaches_the_printer(app, client, auth, make_user, hall, printer):
    from pos.sales.refunds import refund
    from tests.conftest import csrf_token

    with hall.session() as s:
        set_printer(s, hall.till_id, f"tcp://127.0.0.1:{printer.port}")
        receipt_no = a_sale(hall, s, method="wechat")
        tea_line = next(line for line in get_sale(s, receipt_no).lines if line.product_id == hall.tea_id)
        done = refund(s, receipt_no=receipt_no, lines=[(tea_line.id, 1000, True)], method="wechat", reason="口味不合",
                      cashier_id=hall.cashier_id, approved_by_id=hall.manager_id)
        s.commit()
        refund_no = s.scalar(select(Refund.refund_no).where(Refund.id == done.refund_id))
    make_user("c1", "cashier")
    auth.login("c1")
    headers = {"X-CSRFToken": csrf_token(client, "/account")}
    answer = finished(client, client.post(f"/api/v1/refunds/{refund_no}/print", json={}, headers=headers), headers)
    assert (answer["status"], answer["ok"], answer["error"]) == ("printed", True, None)
    (job,) = printer.wait_jobs(1)
    assert refund_no.encode() in job and receipt_no.encode() in job
    assert "原小票号".encode("gb18030") in job and "翠峰茶".encode("gb18030") in job and CUT in job
    assert client.post("/api/v1/refunds/R-H1-20991231-0001/print", json={}, headers=headers).status_code == 404
