"""Invoice requests: the rules (pos.hall.invoices, on a real database) and the finance staff's queue
(pos.hall.invoice_views): managers see the requests and mark them issued or rejected, audited."""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from inventory.models import AuditEvent
from pos.hall import invoices
from pos.core.errors import Conflict, NotFound
from pos.models import InvoiceRequest, InvoiceStatus, Sale, SaleStatus
from tests.fixtures.sales import VALID_USCC, hall, sold  # noqa: F401  (fixtures)
from tests.fixtures.stock import engine, s, world  # noqa: F401  (fixtures)


def file(s, sold, **kw):
    data = {"title": "东莞市虎门镇某某公司", "tax_id": VALID_USCC, "email": "finance@example.cn", **kw}
    filed = invoices.file_request(s, sale_id=sold.sale_id, **data)
    s.commit()
    return filed


# --- the rules --------------------------------------------------------------------------------

def test_filing_is_audited_and_a_second_request_returns_the_open_one(s, sold):
    first = file(s, sold)
    assert first.created and first.request.status == InvoiceStatus.REQUESTED
    again = file(s, sold, title="别的抬头")
    assert not again.created and again.request.id == first.request.id
    events = s.scalars(select(AuditEvent).where(AuditEvent.action == "invoice.request")).all()
    assert len(events) == 1 and json.loads(events[0].after)["receipt_no"] == sold.receipt_no


def test_the_database_allows_one_open_request_per_sale(s, sold):
    file(s, sold)
    s.add(InvoiceRequest(sale_id=sold.sale_id, title="x", email="a@b.cn", status=InvoiceStatus.REQUESTED))
    with pytest.raises(IntegrityError):
        s.flush()
    s.rollback()


def test_issued_then_no_new_request_rejected_then_a_new_one(s, sold):
    req = file(s, sold).request
    invoices.mark_issued(s, req.id, invoice_no="24442000000012345678", user_id=sold.hall.manager_id)
    s.commit()
    assert not file(s, sold).created  # once issued, the receipt has its invoice
    req.status = InvoiceStatus.REJECTED  # (as if it had been rejected instead)
    s.commit()
    assert file(s, sold, title="重新申请").created


def test_mark_issued_and_rejected_are_audited_and_only_once(s, sold):
    req = file(s, sold).request
    with pytest.raises(invoices.InvoiceError):
        invoices.mark_issued(s, req.id, invoice_no="  ", user_id=sold.hall.manager_id)
    invoices.mark_rejected(s, req.id, reason="抬头与税号不符", user_id=sold.hall.manager_id, ip="10.0.0.5")
    s.commit()
    assert (req.status, req.note, req.handled_by_id) == (InvoiceStatus.REJECTED, "抬头与税号不符", sold.hall.manager_id)
    assert req.handled_at is not None
    with pytest.raises(Conflict):
        invoices.mark_issued(s, req.id, invoice_no="1", user_id=sold.hall.manager_id)
    with pytest.raises(NotFound):
        invoices.mark_rejected(s, 2**40, reason="x", user_id=sold.hall.manager_id)
    (event,) = s.scalars(select(AuditEvent).where(AuditEvent.action == "invoice.rejected")).all()
    assert (event.user_id, event.entity_id, event.ip) == (sold.hall.manager_id, str(req.id), "10.0.0.5")
    assert json.loads(event.before) == {"status": "requested"}


def test_a_voided_sale_gets_no_invoice(s, sold):
    s.get(Sale, sold.sale_id).status = SaleStatus.VOIDED
    s.flush()
    with pytest.raises(invoices.InvoiceError):
        invoices.file_request(s, sale_id=sold.sale_id, title="x", tax_id="", email="a@b.cn")
    s.rollback()


def test_tax_ids_are_compacted_and_checked():
    assert invoices.clean_tax_id(" 9111-0000-6000-3734-1l ") == VALID_USCC
    assert invoices.clean_tax_id("") is None and invoices.clean_tax_id(None) is None
    with pytest.raises(invoices.InvoiceError):
        invoices.clean_tax_id("91110000600037341A")


# --- the finance queue --------------------------------------------------------------------------

def _csrf(client, path="/invoices"):
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


@pytest.mark.parametrize("role,status", [("manager", 200), ("admin", 200), ("cashier", 403),
                                         ("auditor", 403), ("restocker", 403)])
def test_the_queue_is_for_managers(client, auth, make_user, role, status):
    make_user("u1", role)
    auth.login("u1")
    assert client.get("/invoices").status_code == status
    assert client.post("/invoices/1/issue", data={}).status_code in (400, status)


def test_anonymous_is_sent_to_login(client):
    assert client.get("/invoices").status_code == 302


def test_a_manager_sees_the_request_and_marks_it_issued(client, auth, make_user, s, sold):
    req_id = file(s, sold).request.id
    s.rollback()
    make_user("fin", "manager")
    auth.login("fin")
    body = client.get("/invoices").get_data(as_text=True)
    assert sold.receipt_no in body and "东莞市虎门镇某某公司" in body and VALID_USCC in body
    assert f'data-request-id="{req_id}"' in body and "¥284.00" in body
    token = _csrf(client)
    # an empty invoice number is refused and nothing changes
    response = client.post(f"/invoices/{req_id}/issue", data={"csrf_token": token, "invoice_no": ""},
                           follow_redirects=True)
    assert "请填写发票号码" in response.get_data(as_text=True)
    response = client.post(f"/invoices/{req_id}/issue", data={"csrf_token": token, "invoice_no": "24442000000012345678"})
    assert response.status_code == 302
    s.expire_all()
    req = s.get(InvoiceRequest, req_id)
    assert (req.status, req.invoice_no) == (InvoiceStatus.ISSUED, "24442000000012345678")
    assert s.scalars(select(AuditEvent.action).where(AuditEvent.entity == "invoice_request")).all() == [
        "invoice.request", "invoice.issued"]
    s.rollback()
    # the open queue is empty now; the issued tab shows it
    assert f'data-request-id="{req_id}"' not in client.get("/invoices").get_data(as_text=True)
    assert "24442000000012345678" in client.get("/invoices?status=issued").get_data(as_text=True)
    # handling it twice is refused
    again = client.post(f"/invoices/{req_id}/reject", data={"csrf_token": token, "note": "x"}, follow_redirects=True)
    assert "该发票申请已处理" in again.get_data(as_text=True)


def test_a_manager_rejects_with_a_reason(client, auth, make_user, s, sold):
    req_id = file(s, sold).request.id
    s.rollback()
    make_user("fin", "manager")
    auth.login("fin")
    token = _csrf(client)
    assert client.post(f"/invoices/{req_id}/reject", data={"csrf_token": token, "note": " "},
                       follow_redirects=True).get_data(as_text=True).count("请填写驳回原因") == 1
    assert client.post(f"/invoices/{req_id}/reject", data={"csrf_token": token, "note": "税号有误"}).status_code == 302
    s.expire_all()
    assert s.get(InvoiceRequest, req_id).status == InvoiceStatus.REJECTED
    s.rollback()
    assert "税号有误" in client.get("/invoices?status=all").get_data(as_text=True)
    assert client.post("/invoices/99999999999/issue", data={"csrf_token": token, "invoice_no": "1"},
                       follow_redirects=True).status_code == 200


def test_odd_query_strings_are_harmless(client, auth, make_user):
    make_user("fin", "manager")
    auth.login("fin")
    for query in ("?status=nonsense", "?page=-3", "?page=abc", "?status=all&page=99"):
        assert client.get("/invoices" + query).status_code == 200
