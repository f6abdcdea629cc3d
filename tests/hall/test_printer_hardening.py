"""Issue 18, critical point A and security point 7: where a printer may be, and what printing may do.

A. A till's printer URI is a place the server writes to. ``file://`` only reaches the printer
   device nodes or files under the spool folder (after resolving links), ``serial://`` only tty
   devices, ``tcp://`` only private addresses on printer ports (a host name is resolved when
   sending), unless an admin allows more; checked when set AND when sending.
7. The first print of a cash sale opens the drawer once, however often it is repeated; every kick
   is audited; a printer that says it has no paper or an open cover is a failed print the cashier
   can reprint; printing never holds a request thread (8 hung prints do not delay a sale).
"""
from __future__ import annotations

import hashlib
import http.cookiejar
import json
import os
import re
import socket
import sqlite3
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from pathlib import Path

import pytest
from sqlalchemy import func, select

from inventory.models import AuditEvent
from pos.hall import printers
from pos.hall import printing
from pos.core.db import session_scope
from pos.sales.escpos import drawer_kick_bytes
from pos.models import PrintJob, Sale, Till
from tests.conftest import TEST_PASSWORD, csrf_token
from tests.fixtures.till import hall, login, sale_body  # noqa: F401  (fixture)
from tests.fixtures.printers import COVER_OPEN, CUT, DRAWER, ONLINE, PAPER_OK, PAPER_OUT, FakePrinter, finished


def policy(**kw) -> printers.PrinterPolicy:
    return printers.PrinterPolicy(**kw)


def _set_uri(app, uri: str, code: str = "H1") -> None:
    """A URI stored directly, as one saved before the allow-list existed would be."""
    with session_scope(app) as s:
        s.scalar(select(Till).where(Till.code == code)).printer_uri = uri


def _stored_uri(app, code: str = "H1") -> str:
    with session_scope(app) as s:
        return s.scalar(select(Till.printer_uri).where(Till.code == code))


def _audits(app, action: str) -> int:
    with session_scope(app) as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action))


def _digest(path) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


@pytest.fixture
def victim(tmp_path):
    """A live-looking database beside the instance: what the attack of issue 18 destroyed."""
    folder = tmp_path / "instance"
    folder.mkdir()
    path = folder / "songtao.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE sales (id INTEGER PRIMARY KEY, total_fen INTEGER)")
        db.executemany("INSERT INTO sales (total_fen) VALUES (?)", [(n * 100,) for n in range(500)])
    db.close()
    return path


@pytest.fixture
def spool(app):
    folder = app.config["PRINTER_SPOOL_DIR"]
    os.makedirs(folder, exist_ok=True)
    return folder


@pytest.fixture
def manager(client, auth, make_user, hall):  # noqa: F811
    make_user("wumei", "manager")
    auth.login("wumei")
    return client


def _post_printer(client, uri: str):
    token = csrf_token(client, "/shifts/tills")
    return client.post("/shifts/tills/H1", data={"csrf_token": token, "printer_uri": uri, "paper_columns": "48"})


def _test_print_job(client) -> dict:
    headers = {"X-CSRFToken": csrf_token(client, "/account")}
    return finished(client, client.post("/api/v1/tills/H1/test-print", json={}, headers=headers), headers)


def _row(page: str, code: str = "H1") -> str:
    match = re.search(rf'<tr data-till="{code}">(.*?)</tr>', page, re.S)
    assert match, page
    return match.group(1)


# --- A: file:// ----------------------------------------------------------------------------------

def test_pointA_test_print_to_the_database_file_is_refused_and_leaves_it_untouched(app, manager, victim, spool):
    before = _digest(victim)
    uri = f"file://{victim}"
    # set through the manager's page: refused, with the reason, at that till's row; nothing stored
    answer = _post_printer(manager, uri)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400 and "file://" in _row(page) and "假脱机目录" in _row(page)
    assert str(victim) in _row(page)  # the URI is shown back at its row
    assert _stored_uri(app) == "none" and _audits(app, "till.printer") == 0
    # a URI stored before the rule: the page says so at its row, and the test print refuses to send
    _set_uri(app, uri)
    row = _row(manager.get("/shifts/tills").get_data(as_text=True))
    assert "data-refusal" in row and str(victim) in row and "假脱机目录" in row
    job = _test_print_job(manager)
    assert job["status"] == "failed" and job["ok"] is False and "假脱机目录" in job["error"]
    button = manager.post("/shifts/tills/H1/test_print", data={"csrf_token": csrf_token(manager, "/shifts/tills")})
    shown = manager.get(button.headers["Location"]).get_data(as_text=True)
    assert 'data-job="failed"' in _row(shown) and "假脱机目录" in _row(shown)
    assert _digest(victim) == before
    with sqlite3.connect(victim) as db:  # still a healthy database
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM sales").fetchone() == (500,)
    db.close()


def test_pointA_a_link_in_the_spool_folder_pointing_outside_is_refused(app, manager, victim, spool):
    before = _digest(victim)
    link = os.path.join(spool, "receipt.prn")
    os.symlink(victim, link)
    answer = _post_printer(manager, f"file://{link}")
    assert answer.status_code == 400 and "假脱机目录" in _row(answer.get_data(as_text=True))
    assert _stored_uri(app) == "none"
    # the same, stored before the rule, or a file swapped for a link after it was allowed
    _set_uri(app, f"file://{link}")
    assert _test_print_job(manager)["status"] == "failed"
    os.unlink(link)
    open(link, "wb").close()
    assert _post_printer(manager, f"file://{link}").status_code == 302  # a plain spool file: allowed
    os.unlink(link)
    os.symlink(victim, link)  # swapped after it was allowed
    job = _test_print_job(manager)
    assert job["status"] == "failed" and "假脱机目录" in job["error"]
    # a path that climbs out of the spool folder, and a hard link to the victim
    dotted = f"file://{spool}/../instance/{victim.name}"
    assert _post_printer(manager, dotted).status_code == 400
    os.unlink(link)
    os.link(victim, link)
    assert printers.send(f"file://{link}", b"x", policy=policy(spool_dir=spool)).ok is False
    assert _digest(victim) == before


def test_pointA_a_spool_file_and_the_printer_device_nodes_are_allowed(app, manager, spool):
    target = os.path.join(spool, "H1.prn")
    assert _post_printer(manager, f"file://{target}").status_code == 302
    job = _test_print_job(manager)
    assert job["status"] == "printed" and CUT in Path(target).read_bytes()
    assert _audits(app, "till.printer") == 1
    strict = policy(spool_dir=None)  # outside the demo and tests: no spool files at all
    with pytest.raises(printers.PrinterUriError, match="没有配置打印机假脱机目录"):
        printers.check_uri(f"file://{target}", strict)
    assert printers.check_uri("file:///dev/usb/lp0", strict).path == "/dev/usb/lp0"
    assert printers.check_uri("file:///dev/usb/lp12", strict).path == "/dev/usb/lp12"
    for uri in ("file:///dev/usb/lp0/../../../etc/passwd", "file:///dev/usb/lp", "file:///dev/usb/lp0x",
                "file:///dev/sda", "file:///etc/passwd", "file://otherhost/dev/usb/lp0", "file:///dev/usb/lp0%00"):
        with pytest.raises(printers.PrinterUriError):
            printers.check_uri(uri, strict)


@pytest.mark.parametrize("uri, allowed", [
    ("serial:///dev/ttyUSB0?baudrate=19200", True), ("serial:///dev/ttyACM1", True), ("serial:///dev/ttyS0", True),
    ("serial:///dev/sda", False), ("serial:///etc/passwd", False), ("serial:///dev/ttyUSB0/../sda", False),
    ("serial:///dev/tty", False), ("serial:///tmp/ttyUSB0", False),
])
def test_pointA_serial_only_reaches_serial_ports(uri, allowed):
    if allowed:
        assert printers.check_uri(uri, policy()).scheme == "serial"
    else:
        with pytest.raises(printers.PrinterUriError, match="ttyUSB0"):
            printers.check_uri(uri, policy())


# --- A: tcp:// -----------------------------------------------------------------------------------

@pytest.mark.parametrize("uri", [
    "tcp://192.168.1.50:9100", "tcp://10.0.0.9:9109", "tcp://172.16.0.5", "tcp://127.0.0.1:9100",
    "tcp://169.254.10.1:9100", "tcp://[fe80::1]:9100", "tcp://[fd00::5]:9100", "tcp://[::1]:9100",
    "tcp://printer.lan:9100",  # a name: resolved, and checked, when sending
])
def test_pointA_private_printers_on_printer_ports_are_allowed(uri):
    assert printers.check_uri(uri, policy()).scheme == "tcp"


@pytest.mark.parametrize("uri, reason", [
    ("tcp://8.8.8.8:9100", "不是局域网地址"), ("tcp://1.1.1.1", "不是局域网地址"),
    ("tcp://[2001:4860:4860::8888]:9100", "不是局域网地址"), ("tcp://[::ffff:8.8.8.8]:9100", "不是局域网地址"),
    ("tcp://100.64.0.1:9100", "不是局域网地址"), ("tcp://0.0.0.0:9100", "不是局域网地址"),
    ("tcp://224.0.0.1:9100", "不是局域网地址"),
    ("tcp://192.168.1.50:22", "端口 22"), ("tcp://127.0.0.1:5432", "端口 5432"), ("tcp://10.0.0.9:80", "端口 80"),
    ("tcp://127.0.0.1:6379", "端口 6379"), ("tcp://10.0.0.9:9110", "端口 9110"),
])
def test_pointA_public_addresses_and_odd_ports_are_refused(uri, reason):
    with pytest.raises(printers.PrinterUriError, match=reason):
        printers.check_uri(uri, policy())
    result = printers.send(uri, b"x", policy=policy())
    assert not result.ok and result.code == "refused" and reason in result.error


def test_pointA_an_admin_may_allow_more_hosts_and_ports(app, monkeypatch):
    monkeypatch.setenv("SONGTAO_PRINTER_ALLOWED_HOSTS", "93.184.216.34, 1.2.3.0/24, cloudprint.example.com")
    monkeypatch.setenv("SONGTAO_PRINTER_ALLOWED_PORTS", "9100-9109,515")
    from pos.core.config import from_environment

    wider = printers.policy_from_config(from_environment(load_secret=False))
    for uri in ("tcp://93.184.216.34:9100", "tcp://1.2.3.9:515", "tcp://cloudprint.example.com:9101",
                "tcp://192.168.1.5:515"):
        assert printers.check_uri(uri, wider).scheme == "tcp", uri
    for uri in ("tcp://8.8.8.8:9100", "tcp://93.184.216.35:9100", "tcp://192.168.1.5:516"):
        with pytest.raises(printers.PrinterUriError):
            printers.check_uri(uri, wider)
    assert printers.tcp_address(printers.parse_uri("tcp://cloudprint.example.com"), wider) == "cloudprint.example.com"
    monkeypatch.setenv("SONGTAO_PRINTER_ALLOWED_PORTS", "lots")
    from pos import create_app

    with pytest.raises(ValueError):  # a bad setting stops start-up rather than every print
        create_app({"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": app.config["DATABASE_URL"]})


def test_pointA_a_host_name_is_resolved_when_sending_and_must_stay_private(monkeypatch):
    real = socket.getaddrinfo
    answers = {"evil.example": ["93.184.216.34"], "mixed.example": ["192.168.1.9", "93.184.216.34"]}

    def fake(host, port, *args, **kwargs):
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[host]]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(printers.socket, "getaddrinfo", fake)
    for host in answers:
        assert printers.check_uri(f"tcp://{host}:9100", policy()).host == host  # allowed when set …
        result = printers.send(f"tcp://{host}:9100", b"x", policy=policy())  # … refused when sending
        assert not result.ok and result.code == "refused" and "93.184.216.34" in result.error
    printer = FakePrinter()
    try:  # a name that resolves to loopback prints (the test's printer listens on a free port)
        wide = policy(allowed_ports=frozenset([printer.port]), status_timeout=0.2)
        assert printers.send(f"tcp://localhost:{printer.port}", b"hello", policy=wide).ok
        assert printer.wait_jobs(1) == [b"hello"]
    finally:
        printer.close()


def test_pointA_a_uri_is_checked_again_when_sending_after_the_configuration_changed(app, manager):
    printer = FakePrinter()
    try:
        assert _post_printer(manager, f"tcp://127.0.0.1:{printer.port}").status_code == 302
        assert _test_print_job(manager)["status"] == "printed"
        app.config["PRINTER_ALLOWED_PORTS"] = "9100-9109"  # the admin narrows the ports
        job = _test_print_job(manager)
        assert job["status"] == "failed" and f"端口 {printer.port}" in job["error"]
        row = _row(manager.get("/shifts/tills").get_data(as_text=True))
        assert "data-refusal" in row and f"端口 {printer.port}" in row
        time.sleep(0.3)
        assert len(printer.jobs) == 1  # the refused job never connected
    finally:
        printer.close()


# --- 7: the drawer -------------------------------------------------------------------------------

@pytest.fixture
def till_printer(app, hall):  # noqa: F811
    printer = FakePrinter()
    _set_uri(app, f"tcp://127.0.0.1:{printer.port}")
    yield printer
    printer.close()


def _sale(till_api, hall, method="cash") -> str:  # noqa: F811
    payments = [{"method": "cash", "amount_fen": 18787, "tendered_fen": 20000}] if method == "cash" else \
        [{"method": "wechat", "amount_fen": 18787}]
    answer = till_api.post("/api/v1/sales", sale_body(hall, payments=payments))
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.get_json()["receipt_no"]


def test_point7_drawer_kicks_once(app, client, auth, hall, till_printer):  # noqa: F811
    till = login(client, auth, "cash")
    receipt_no = _sale(till, hall)
    headers = {"X-CSRFToken": till.token}
    for _ in range(3):  # the cashier repeats the "first print"
        job = finished(client, till.post(f"/api/v1/sales/{receipt_no}/print", {"reprint": False}), headers)
        assert job["status"] == "printed"
    first, *again = till_printer.wait_jobs(3)
    assert first.startswith(DRAWER) and CUT in first
    assert len(again) == 2 and all(DRAWER not in job.split(CUT)[0][:8] and not job.startswith(DRAWER)
                                   for job in again)
    assert _audits(app, "sale.drawer_kick") == 1
    with session_scope(app) as s:
        sale = s.scalar(select(Sale).where(Sale.receipt_no == receipt_no))
        assert sale.drawer_kicked_at is not None
        kicks = s.scalar(select(func.count()).select_from(PrintJob).where(PrintJob.drawer_kick.is_(True)))
        assert kicks == 1
    # a card sale never kicks
    card = _sale(till, hall, method="wechat")
    finished(client, till.post(f"/api/v1/sales/{card}/print", {"reprint": False}), headers)
    assert not till_printer.wait_jobs(4)[3].startswith(DRAWER) and _audits(app, "sale.drawer_kick") == 1


def test_point7_two_first_prints_at_once_open_the_drawer_once(app, client, auth, hall, till_printer):  # noqa: F811
    till = login(client, auth, "cash")
    receipt_no = _sale(till, hall)
    start = threading.Barrier(4)
    errors = []

    def first_print():
        try:
            with app.app_context(), session_scope(app) as s:
                start.wait()
                printing.print_receipt(s, receipt_no, reprint=False, user_id=None)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=first_print) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    jobs = till_printer.wait_jobs(4)
    assert len(jobs) == 4 and sum(job.startswith(DRAWER) for job in jobs) == 1
    assert _audits(app, "sale.drawer_kick") == 1


def test_point7_every_kick_is_audited(app, client, auth, make_user, hall, till_printer):  # noqa: F811
    make_user("m1", "manager")
    till = login(client, auth, "cash")
    receipt_no = _sale(till, hall)
    finished(client, till.post(f"/api/v1/sales/{receipt_no}/print", {}), {"X-CSRFToken": till.token})
    auth.logout()
    auth.login("m1")
    headers = {"X-CSRFToken": csrf_token(client, "/account")}
    for _ in range(2):
        assert finished(client, client.post("/api/v1/tills/H1/drawer", json={}, headers=headers), headers)["ok"]
    token = csrf_token(client, "/shifts/tills")
    assert client.post("/shifts/tills/H1/drawer", data={"csrf_token": token}).status_code == 302
    jobs = till_printer.wait_jobs(4)
    assert sum(job.startswith(DRAWER) for job in jobs) == 4
    assert jobs[1:] == [drawer_kick_bytes()] * 3
    assert _audits(app, "sale.drawer_kick") == 1 and _audits(app, "till.drawer_open") == 3
    with session_scope(app) as s:
        users = s.scalars(select(AuditEvent.user_id).where(AuditEvent.action == "till.drawer_open")).all()
        assert len(users) == 3 and None not in users


def test_point7_a_print_refused_at_once_keeps_the_drawer_kick_for_later(app, client, auth, hall, till_printer,  # noqa: F811
                                                                        monkeypatch):
    from pos.hall import print_queue

    till = login(client, auth, "cash")
    receipt_no = _sale(till, hall)
    headers = {"X-CSRFToken": till.token}
    monkeypatch.setattr(print_queue, "MAX_PENDING", 0)  # as if the printer had too much waiting
    busy = finished(client, till.post(f"/api/v1/sales/{receipt_no}/print", {}), headers)
    assert busy["status"] == "failed" and "打印机忙" in busy["error"] and _audits(app, "sale.drawer_kick") == 0
    monkeypatch.setattr(print_queue, "MAX_PENDING", 20)
    assert finished(client, till.post(f"/api/v1/sales/{receipt_no}/print", {}), headers)["status"] == "printed"
    assert till_printer.wait_jobs(1)[0].startswith(DRAWER) and _audits(app, "sale.drawer_kick") == 1


def test_point7_a_job_lost_with_its_process_is_failed_after_a_while(app, client, auth, hall):  # noqa: F811
    import datetime as dt

    from inventory.localtime import utcnow

    with session_scope(app) as s:
        s.add(PrintJob(id="a" * 32, kind="receipt", status="pending", drawer_kick=False,
                       created_at=utcnow() - dt.timedelta(minutes=5)))
        s.add(PrintJob(id="b" * 32, kind="receipt", status="pending", drawer_kick=False, created_at=utcnow()))
    till = login(client, auth, "cash")
    lost = till.get("/api/v1/print-jobs/" + "a" * 32).get_json()
    assert (lost["status"], lost["ok"]) == ("failed", False) and lost["error"]
    assert till.get("/api/v1/print-jobs/" + "b" * 32).get_json()["status"] == "pending"


# --- 7: the printer's status ---------------------------------------------------------------------

def test_point7_paper_out_is_a_failed_print_the_cashier_can_reprint(app, client, auth, hall):  # noqa: F811
    printer = FakePrinter(status={"paper": PAPER_OUT, "cause": ONLINE})
    try:
        _set_uri(app, f"tcp://127.0.0.1:{printer.port}")
        till = login(client, auth, "cash")
        headers = {"X-CSRFToken": till.token}
        receipt_no = _sale(till, hall)
        job = finished(client, till.post(f"/api/v1/sales/{receipt_no}/print", {"reprint": False}), headers)
        assert job["status"] == "failed" and job["ok"] is False and "打印机缺纸" in job["error"]
        (sent,) = printer.wait_jobs(1)
        assert sent == drawer_kick_bytes()  # the drawer opens (it needs no paper); no receipt was sent
        printer.status = {"paper": PAPER_OK, "cause": ONLINE}  # paper loaded
        again = finished(client, till.post(f"/api/v1/sales/{receipt_no}/print", {"reprint": True}), headers)
        assert (again["status"], again["ok"], again["reprint_count"]) == ("printed", True, 1)
        reprinted = printer.wait_jobs(2)[1]
        assert "重印".encode("gb18030") in reprinted and not reprinted.startswith(DRAWER)
    finally:
        printer.close()


def test_point7_the_printers_answer_is_said_in_the_cashiers_language(app, client, auth, hall):  # noqa: F811
    """The worker thread makes the message in the language of the cashier who asked."""
    printer = FakePrinter(status={"paper": PAPER_OUT, "cause": ONLINE})
    try:
        _set_uri(app, f"tcp://127.0.0.1:{printer.port}")
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
        till = login(client, auth, "cash")
        receipt_no = _sale(till, hall, method="wechat")
        job = finished(client, till.post(f"/api/v1/sales/{receipt_no}/print", {}), {"X-CSRFToken": till.token})
        assert job["status"] == "failed" and job["error"].startswith("Printer out of paper")
    finally:
        printer.close()


def test_point7_an_open_cover_is_a_failed_print(app, client, auth, hall):  # noqa: F811
    printer = FakePrinter(status={"paper": PAPER_OK, "cause": COVER_OPEN})
    try:
        _set_uri(app, f"tcp://127.0.0.1:{printer.port}")
        till = login(client, auth, "cash")
        receipt_no = _sale(till, hall, method="wechat")
        job = finished(client, till.post(f"/api/v1/sales/{receipt_no}/print", {"reprint": False}),
                       {"X-CSRFToken": till.token})
        assert job["status"] == "failed" and job["ok"] is False and "打印机开盖" in job["error"]
        assert printer.wait_jobs(1) == [b""]  # nothing sent to a printer with its cover open
    finally:
        printer.close()


def test_point7_a_printer_that_answers_ok_prints_and_one_that_cannot_answer_is_taken_as_printed():
    answering, silent = FakePrinter(status={"paper": PAPER_OK, "cause": ONLINE}), FakePrinter()
    try:
        for printer, queries in ((answering, 4), (silent, 1)):  # asked before and after; or once, unanswered
            wide = policy(allowed_ports=frozenset([printer.port]), status_timeout=0.2)
            assert printers.send(f"tcp://127.0.0.1:{printer.port}", b"receipt", policy=wide) == printers.PrintResult(True)
            assert printer.wait_jobs(1) == [b"receipt"] and printer.queries == queries
    finally:
        answering.close()
        silent.close()


# --- 7: printing never holds a request thread ------------------------------------------------------

class Browser:
    """A cashier's browser over real HTTP: cookies, the page's CSRF token, JSON."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.token = None

    def _token(self, path):
        html = self.opener.open(self.base + path, timeout=30).read().decode()
        return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)

    def login(self, username):
        data = urllib.parse.urlencode({"pw-username": username, "pw-password": TEST_PASSWORD,
                                       "pw-csrf_token": self._token("/login")}).encode()
        self.opener.open(self.base + "/login", data=data, timeout=30).read()
        self.token = self._token("/account")

    def call(self, method, path, body=None):
        request = urllib.request.Request(self.base + path, method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Content-Type": "application/json", "X-CSRFToken": self.token})
        try:
            with self.opener.open(request, timeout=60) as answer:
                return answer.status, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


def test_point7_eight_hung_prints_do_not_delay_an_unrelated_request(app, live_server, hall):  # noqa: F811
    """A printer that accepts the connection and never reads (nor answers its status) holds each
    print for its whole timeout. Eight prints to it are queued; a sale made meanwhile is recorded
    while all eight are still pending (on the old code each print held one of the server's four
    threads for seconds)."""
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)  # the kernel accepts the connections; nobody ever reads them
    app.config["PRINTER_STATUS_TIMEOUT"] = 10  # each hung print waits this long for an answer
    _set_uri(app, f"tcp://127.0.0.1:{hung.getsockname()[1]}")

    cashier = Browser(live_server)
    cashier.login("cash")
    receipts = []
    for _ in range(8):
        status, body = cashier.call("POST", "/api/v1/sales", sale_body(hall))
        assert status == 201
        receipts.append(body["receipt_no"])
    answers = [None] * 8

    def print_one(i):
        answers[i] = Browser.call(cashier, "POST", f"/api/v1/sales/{receipts[i]}/print", {"reprint": False})

    threads = [threading.Thread(target=print_one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(a is not None and a[0] == 202 and a[1]["status"] == "pending" for a in answers), answers
    # the unrelated sale goes through while the eight prints are all still waiting for the printer
    status, sale = cashier.call("POST", "/api/v1/sales", sale_body(hall))
    assert status == 201 and sale["receipt_no"] not in receipts
    still = [cashier.call("GET", f"/api/v1/print-jobs/{a[1]['job_id']}")[1]["status"] for a in answers]
    assert still == ["pending"] * 8
    hung.close()  # the printer is unplugged: every waiting print fails quickly, none is lost
    end = time.monotonic() + 60
    while time.monotonic() < end:
        outcomes = [cashier.call("GET", f"/api/v1/print-jobs/{a[1]['job_id']}")[1] for a in answers]
        if all(o["status"] != "pending" for o in outcomes):
            break
        time.sleep(0.1)
    assert all(o["status"] == "failed" and o["error"] for o in outcomes), outcomes
