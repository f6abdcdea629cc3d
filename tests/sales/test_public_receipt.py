"""The public receipt page behind the receipt's QR code: signed links, the 404 that tells nothing,
traceability of certified lines from the sale line's snapshot, and the invoice request form."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from inventory.models import Supplier
from pos.models import InvoiceRequest, InvoiceStatus
from pos.sales.links import check_receipt_token, receipt_token, receipt_url
from tests.fixtures.sales import SECRET, VALID_USCC, hall, sold  # noqa: F401  (fixtures)
from tests.fixtures.stock import engine, s, world  # noqa: F401  (fixtures)


# --- the token ------------------------------------------------------------------------------

def test_token_is_22_urlsafe_chars_and_checks_only_its_own_number():
    token = receipt_token(SECRET, "H1-20261126-0001")
    assert len(token) == 22 and re.fullmatch(r"[A-Za-z0-9_-]{22}", token)
    assert receipt_token(SECRET.encode(), "H1-20261126-0001") == token
    assert check_receipt_token(SECRET, "H1-20261126-0001", token)
    assert not check_receipt_token(SECRET, "H1-20261126-0002", token)
    assert not check_receipt_token("another key", "H1-20261126-0001", token)
    assert not check_receipt_token(SECRET, "H1-20261126-0001", None)
    assert not check_receipt_token(SECRET, "H1-20261126-0001", "")
    assert not check_receipt_token(SECRET, "H1-20261126-0001", token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert not check_receipt_token(SECRET, "H1-20261126-0001", "非ASCII的令牌")


def test_receipt_url_is_absolute_and_honours_public_base_url(app):
    with app.test_request_context(base_url="http://192.168.1.20:8080"):
        url = receipt_url("H1-20261126-0001")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "192.168.1.20:8080", "/r/H1-20261126-0001")
    assert parts.query == "t=" + receipt_token(SECRET, "H1-20261126-0001")
    app.config["PUBLIC_BASE_URL"] = "https://pos.example.cn/"
    with app.test_request_context(base_url="http://192.168.1.20:8080"):
        assert receipt_url("H1-20261126-0001") == (
            "https://pos.example.cn/r/H1-20261126-0001?t=" + receipt_token(SECRET, "H1-20261126-0001"))


# --- the page ---------------------------------------------------------------------------------

def test_the_signed_link_opens_the_page_without_login_with_traceability(client, sold):
    response = client.get(sold.path)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert sold.receipt_no in body
    assert "梵净山翠峰茶 250g" in body and "松桃土蜂蜜 500g" in body
    # the certified line carries supplier, origin and certificate; the uncertified one none
    assert "松桃梵净山翠峰茶业有限公司" in body
    assert "松桃苗族自治县 · 正大镇 · 清水村" in body
    assert "黔扶认〔2026〕0001" in body
    assert body.count("data-trace") == 1
    assert "¥284.00" in body and "¥168.00" in body  # total, certified part
    assert 'name="csrf_token"' in body and 'name="title"' in body


def test_the_page_shows_the_snapshot_not_todays_catalogue(client, sold, s):
    supplier = s.get(Supplier, sold.hall.world.supplier_id)
    supplier.name, supplier.origin_village = "改名后的公司", "另一个村"
    s.commit()
    body = client.get(sold.path).get_data(as_text=True)
    assert "松桃梵净山翠峰茶业有限公司" in body and "清水村" in body
    assert "改名后的公司" not in body and "另一个村" not in body


@pytest.mark.parametrize("query", ["", "?t=", "?t=AAAAAAAAAAAAAAAAAAAAAA", "?t=%00", "?t=" + "x" * 500])
def test_a_missing_or_wrong_token_is_a_404(client, sold, query):
    response = client.get(f"/r/{sold.receipt_no}{query}")
    # a token with a control character is refused (400) before anything is looked up (issue 18.10a)
    assert response.status_code == (400 if "%00" in query else 404)
    assert sold.receipt_no not in response.get_data(as_text=True)


def test_a_tampered_token_is_refused(client, sold):
    token = receipt_token(SECRET, sold.receipt_no)
    tampered = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    assert client.get(f"/r/{sold.receipt_no}?t={tampered}").status_code == 404
    # another receipt's token does not open this one
    other = receipt_token(SECRET, "H1-20261126-0002")
    assert client.get(f"/r/{sold.receipt_no}?t={other}").status_code == 404


def test_a_well_signed_number_that_does_not_exist_is_the_same_404(client, sold):
    missing = "H1-20261126-0099"
    wrong = client.get(f"/r/{sold.receipt_no}?t=AAAAAAAAAAAAAAAAAAAAAA")
    absent = client.get(f"/r/{missing}?t={receipt_token(SECRET, missing)}")
    assert absent.status_code == wrong.status_code == 404

    def page(response, number):  # the page's CSRF token is signed with the second it was made
        body = response.get_data(as_text=True).replace(number, "N")
        return re.sub(r'(<meta name="csrf-token" content=")[^"]+', r"\1…", body)

    assert page(absent, missing) == page(wrong, sold.receipt_no)


# --- the invoice request form ------------------------------------------------------------------

def _form_token(client, sold) -> str:
    body = client.get(sold.path).get_data(as_text=True)
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', body).group(1)


def _post(client, sold, csrf=None, **data):
    t = receipt_token(SECRET, sold.receipt_no)
    data.setdefault("csrf_token", csrf if csrf is not None else _form_token(client, sold))
    return client.post(f"/r/{sold.receipt_no}/invoice?t={t}", data=data)


def _requests(s):
    s.expire_all()
    rows = s.scalars(select(InvoiceRequest).order_by(InvoiceRequest.id)).all()
    s.rollback()
    return rows


def test_an_invoice_request_is_filed_and_confirmed(client, sold, s):
    response = _post(client, sold, title="东莞市虎门镇某某公司", tax_id=" 9111 0000 6000 3734 1l ",
                     email="finance@example.cn")
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "发票申请已提交" in page and 'data-invoice-status="requested"' in page
    assert 'name="title"' not in page  # the form gives way to the request's status
    (req,) = _requests(s)
    assert (req.sale_id, req.title, req.tax_id, req.email, req.status) == (
        sold.sale_id, "东莞市虎门镇某某公司", VALID_USCC, "finance@example.cn", InvoiceStatus.REQUESTED)


def test_an_individual_may_leave_the_tax_id_empty(client, sold, s):
    assert _post(client, sold, title="个人", tax_id="", email="a@b.cn").status_code == 303
    assert _requests(s)[0].tax_id is None


@pytest.mark.parametrize("data,message", [
    ({"title": "", "tax_id": "", "email": "a@b.cn"}, "请填写发票抬头"),
    ({"title": "某公司", "tax_id": "91110000600037341X", "email": "a@b.cn"}, "纳税人识别号不是有效的统一社会信用代码"),
    ({"title": "某公司", "tax_id": "123", "email": "a@b.cn"}, "纳税人识别号不是有效的统一社会信用代码"),
    ({"title": "某公司", "tax_id": "", "email": "not-an-email"}, "请填写有效的电子邮箱"),
    ({"title": "某公司", "tax_id": "", "email": ""}, "请填写有效的电子邮箱"),
])
def test_a_bad_request_is_answered_with_the_form_and_a_message(client, sold, s, data, message):
    response = _post(client, sold, **data)
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert message in body and 'aria-invalid="true"' in body
    assert _requests(s) == []


def test_the_form_is_csrf_protected(client, sold, s):
    response = _post(client, sold, csrf="forged", title="某公司", tax_id="", email="a@b.cn")
    assert response.status_code == 400
    assert _requests(s) == []


def test_posting_without_a_valid_token_is_a_404(client, sold, s):
    csrf = _form_token(client, sold)
    response = client.post(f"/r/{sold.receipt_no}/invoice?t=AAAAAAAAAAAAAAAAAAAAAA",
                           data={"csrf_token": csrf, "title": "某公司", "email": "a@b.cn"})
    assert response.status_code == 404
    assert _requests(s) == []


def test_a_second_request_shows_the_first_and_files_nothing(client, sold, s):
    assert _post(client, sold, title="第一次", tax_id="", email="a@b.cn").status_code == 303
    second = _post(client, sold, title="第二次", tax_id="", email="c@d.cn")
    assert second.status_code == 303
    page = client.get(second.headers["Location"]).get_data(as_text=True)
    assert "此小票已有发票申请" in page and "第一次" in page
    assert [r.title for r in _requests(s)] == ["第一次"]


# --- issue 18, point 6: the requester's email is masked --------------------------------------

def test_point6_mask_email_keeps_the_first_character_and_the_domain():
    from pos.hall.public import mask_email

    assert mask_email("zhangsan@qq.com") == "z***@qq.com"
    assert mask_email("z@qq.com") == "z***@qq.com"
    assert mask_email(" Finance.Dept@example.cn ") == "F***@example.cn"
    assert mask_email("") == "" and mask_email(None) == ""


def test_point6_public_receipt_masks_the_requesters_email(app, client, sold, s):
    assert _post(client, sold, title="个人", tax_id="", email="zhangsan@qq.com").status_code == 303
    # whoever else holds the link (another phone, no session) sees the request, not the address
    stranger = app.test_client()
    page = stranger.get(sold.path).get_data(as_text=True)
    assert 'data-invoice-status="requested"' in page
    assert "z***@qq.com" in page
    assert "zhangsan" not in page
    # the confirmation shown to the requester is masked as well
    own = client.get(sold.path).get_data(as_text=True)
    assert "zhangsan" not in own
