"""Reading the providers' trade bills: WeChat Pay's tradebill CSV (backticks, totals line) and
Alipay's trade bill (a ZIP with GBK member names holding a GBK CSV between # comment lines, or that
CSV itself); a file that is not such a bill is refused with a Chinese message, whole."""
from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest

from inventory.localtime import HALL_TZ
from pos.payments.bill_files import Row, alipay_bill, alipay_csv, wechat_bill
from pos.payments.bills import BillError, parse_alipay, parse_bill, parse_wechat

DAY = dt.date(2026, 12, 4)
AT = dt.datetime(2026, 12, 4, 0, 15, 3, tzinfo=HALL_TZ)   # 00:15 in Humen is the day before in UTC
ROWS = [
    Row("pay", "H1T0001", "4200002626120400001", 1234, AT),
    Row("refund", "H1T0001", "4200002626120400001", 234, AT + dt.timedelta(hours=2), out_refund_no="R-H1-1",
        refund_id="50300000000001"),
    Row("pay", "H1T0002", "4200002626120400002", 100_000_05, AT + dt.timedelta(hours=3)),
    Row("reversed", "H1T0002", "4200002626120400002", 100_000_05, AT + dt.timedelta(hours=3, minutes=1)),
]
EXPECTED = [("pay", "H1T0001", "4200002626120400001", None, 1234),
            ("refund", "H1T0001", "4200002626120400001", "R-H1-1", 234),
            ("pay", "H1T0002", "4200002626120400002", None, 100_000_05),
            ("reversed", "H1T0002", "4200002626120400002", None, 100_000_05)]


def shape(lines):
    return [(l.kind, l.out_trade_no, l.transaction_id, l.out_refund_no, l.amount_fen) for l in lines]


def test_wechat_tradebill_is_read_with_its_backticks_and_totals():
    data = wechat_bill(ROWS)
    text = data.decode("utf-8")
    assert "`4200002626120400001" in text and text.splitlines()[-2].startswith("总交易单数")
    lines = parse_wechat(data)
    assert shape(lines) == EXPECTED
    assert lines[0].at == dt.datetime(2026, 12, 3, 16, 15, 3, tzinfo=dt.timezone.utc)
    assert lines[0].raw["交易状态"] == "SUCCESS" and lines[0].raw["订单金额"] == "12.34"
    assert all(isinstance(l.amount_fen, int) for l in lines)


def test_a_wechat_bill_with_a_bom_and_no_trades_is_an_empty_day():
    assert parse_wechat(b"\xef\xbb\xbf" + wechat_bill([])) == []


def test_alipay_zip_with_gbk_names_and_csv():
    data = alipay_bill(ROWS, DAY)
    members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    assert not any(m.flag_bits & 0x800 for m in members)   # GBK names, as Alipay writes them
    assert len(members) == 2                                # the detail and the summary
    lines = parse_alipay(data)
    assert shape(lines) == EXPECTED
    assert lines[3].raw["业务类型"] == "退款" and lines[3].raw["订单金额（元）"] == "-100000.05"
    assert lines[0].at == dt.datetime(2026, 12, 3, 16, 15, 3, tzinfo=dt.timezone.utc)


def test_alipay_csv_itself_in_gbk():
    data = alipay_csv(ROWS, DAY)
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert shape(parse_bill("alipay", data)) == EXPECTED


def wechat_text() -> str:
    return wechat_bill(ROWS).decode("utf-8")


@pytest.mark.parametrize("provider, data, needle", [
    ("wechat", b"", "文件是空的"),
    ("wechat", "hello,world\n1,2\n".encode(), "不是微信支付交易账单的表头"),
    ("wechat", alipay_csv(ROWS, DAY), "这是支付宝的账单"),
    ("alipay", wechat_bill(ROWS), "这是微信支付的账单"),
    ("alipay", b"PK\x03\x04 not really a zip", "不是正确的 ZIP"),
    ("alipay", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\xfd", "不是支付宝交易账单"),
    # the totals say 4 lines: one lost on the way is noticed
    ("wechat", "\r\n".join(l for i, l in enumerate(wechat_text().split("\r\n")) if i != 2).encode(), "总交易单数（4）"),
    ("wechat", wechat_text().replace("`12.34", "`12.3.4").encode(), "「订单金额」不是金额"),
    ("wechat", wechat_text().replace("`12.34", "`1e3").encode(), "「订单金额」不是金额"),
    ("wechat", wechat_text().replace("`SUCCESS", "`PAYERROR", 1).encode(), "「交易状态」不认识"),
    ("wechat", wechat_text().replace("`2026-12-04 00:15:03", "`04/12/2026", 1).encode(), "「交易时间」不是时间"),
    ("wechat", wechat_text().split("总交易单数")[0].encode(), "没有汇总行"),
    ("alipay", alipay_csv(ROWS, DAY).replace("交易合计：2笔".encode("gbk"), "交易合计：3笔".encode("gbk")), "文件不完整"),
    ("alipay", alipay_csv(ROWS, DAY).replace("退款批次号/请求号".encode("gbk"), "批次".encode("gbk")), "缺少列：退款批次号/请求号"),
])
def test_what_is_not_such_a_bill_is_refused_with_a_reason(provider, data, needle):
    with pytest.raises(BillError) as refused:
        parse_bill(provider, data)
    assert needle in str(refused.value)


def test_a_zip_without_the_detail_csv_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "nothing")
    with pytest.raises(BillError, match="业务明细"):
        parse_alipay(buffer.getvalue())


def test_the_fake_gateways_bills_read_as_the_trades_it_recorded():
    """The bills pos.payments.fake_ledger serves (the gateway's own writer) read line for line: a
    payment, a partial refund, a paid payment reversed (the money went back), an order reversed
    before it was paid (nothing went back) and a refused one (not on the bill)."""
    from inventory.localtime import local_date
    from pos.payments import fake_ledger

    ledger = fake_ledger.Ledger()
    for provider, code in (("wechat", "13456789012345"), ("alipay", "284567890123")):
        paid, _ = ledger.pay(provider, f"{provider[0]}PAID", code + "0001", 12_345, "梵净山翠峰茶")
        ledger.refund(provider, f"{provider[0]}PAID", f"{provider[0]}R1", 2_345, 12_345)
        ledger.pay(provider, f"{provider[0]}GONE", code + "0001", 500, "松桃土蜂蜜")
        ledger.reverse(provider, f"{provider[0]}GONE")
        ledger.pay(provider, f"{provider[0]}WAIT", code + "0004", 700, "松桃腊肉")
        ledger.reverse(provider, f"{provider[0]}WAIT")
        ledger.pay(provider, f"{provider[0]}POOR", code + "0003", 900, "松桃贡米")
        day = local_date(paid.paid_at)
        data = fake_ledger.wechat_bill(ledger, day) if provider == "wechat" else fake_ledger.alipay_bill(ledger, day)
        lines = parse_bill(provider, data)
        got = sorted((l.kind, l.out_trade_no, l.out_refund_no, l.amount_fen) for l in lines)
        p = provider[0]
        expected = [("pay", f"{p}GONE", None, 500), ("pay", f"{p}PAID", None, 12_345),
                    ("refund", f"{p}PAID", f"{p}R1", 2_345), ("reversed", f"{p}GONE", None, 500)]
        if provider == "wechat":   # WeChat lists the unpaid order's REVOKED row, with nothing refunded
            expected.append(("reversed", f"{p}WAIT", None, 0))
        assert got == sorted(expected)
        assert {l.transaction_id for l in lines if l.out_trade_no == f"{p}PAID"} == {paid.transaction_id}
