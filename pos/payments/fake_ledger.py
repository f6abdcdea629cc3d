"""What the fake gateway remembers and decides, for both providers: the trades it saw (in memory, per
process), the behaviour chosen by a payment code's last four digits, and the daily bills in the
providers' formats.

Codes by their last four digits: 0001 pays at once; 0002 waits for the customer's password and the
second query after it answers SUCCESS; 0003 is refused (insufficient balance); 0004 waits forever
until reversed; 0005 pays, but the pay call answers only after the slow delay. One more, for the
adapters' own tests: 0009 pays, but the pay call answers a system error (WeChat HTTP 500
SYSTEM_ERROR, Alipay code 20000). Any other code pays at once."""
from __future__ import annotations

import csv
import io
import itertools
import random
import threading
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Optional
from zoneinfo import ZoneInfo

from pos.payments.common import yuan

SHANGHAI = ZoneInfo("Asia/Shanghai")
WECHAT_MCHID = "1900000109"
WECHAT_APPID = "wx5f3a7c0e2b9d41a6"
ALIPAY_APP_ID = "2021000149600001"
ALIPAY_PID = "2088000000000001"


@dataclass
class Refund:
    out_refund_no: str
    refund_id: str
    amount_fen: int
    at: datetime


@dataclass
class Trade:
    provider: str
    out_trade_no: str
    amount_fen: int
    transaction_id: str
    code_tail: str = ""
    description: str = ""
    state: str = "USERPAYING"  # USERPAYING | SUCCESS | PAYERROR | REVOKED
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    paid_at: Optional[datetime] = None
    reversed_at: Optional[datetime] = None
    was_paid: bool = False  # paid before it was reversed (the money went back)
    queries: int = 0
    refunds: dict = field(default_factory=dict)  # out_refund_no -> Refund

    @property
    def refunded_fen(self) -> int:
        return sum(r.amount_fen for r in self.refunds.values())


class Ledger:
    """The trades of one gateway process; every method holds the lock."""

    def __init__(self):
        self._lock = threading.Lock()
        self._trades: dict[tuple[str, str], Trade] = {}
        self._serial = itertools.count(1)

    def _new_id(self, provider: str, now: datetime) -> str:
        day = now.astimezone(SHANGHAI).strftime("%Y%m%d")
        n = next(self._serial)
        if provider == "wechat":
            return f"4200{random.randint(100000, 999999)}{day}{n:010d}"[:32]
        return f"{day}22001{random.randint(10000, 99999)}{n:010d}"

    def get(self, provider: str, out_trade_no: str) -> Optional[Trade]:
        with self._lock:
            return self._trades.get((provider, out_trade_no))

    def pay(self, provider: str, out_trade_no: str, code: str, amount_fen: int, description: str) -> tuple[Trade, str]:
        """(trade, outcome): outcome "success", "userpaying", "refused", "slow" (succeeded, answer late)
        or "error" (succeeded, the answer is a system error);
        "used" when the out_trade_no is already taken by another payment."""
        now = datetime.now(timezone.utc)
        tail = code[-4:]
        with self._lock:
            existing = self._trades.get((provider, out_trade_no))
            if existing is not None:
                if existing.state == "SUCCESS":
                    return existing, "success"
                if existing.state == "USERPAYING":
                    return existing, "userpaying"
                return existing, "used"
            trade = Trade(provider, out_trade_no, amount_fen, self._new_id(provider, now), code_tail=tail,
                          description=description, created_at=now)
            self._trades[(provider, out_trade_no)] = trade
            if tail == "0003":
                trade.state = "PAYERROR"
                return trade, "refused"
            if tail in ("0002", "0004"):
                trade.state = "USERPAYING"
                return trade, "userpaying"
            trade.state, trade.paid_at, trade.was_paid = "SUCCESS", now, True
            return trade, {"0005": "slow", "0009": "error"}.get(tail, "success")

    def query(self, provider: str, out_trade_no: str) -> Optional[Trade]:
        with self._lock:
            trade = self._trades.get((provider, out_trade_no))
            if trade is None:
                return None
            trade.queries += 1
            if trade.state == "USERPAYING" and trade.code_tail == "0002" and trade.queries >= 2:
                trade.state, trade.paid_at, trade.was_paid = "SUCCESS", datetime.now(timezone.utc), True
            return trade

    def reverse(self, provider: str, out_trade_no: str) -> tuple[Optional[Trade], str]:
        """(trade, outcome): "closed" (nothing was paid), "refunded" (the money went back),
        "refused" (refunds were made: it can no longer be reversed). A reverse of a trade never seen
        closes that number, so a late pay with it fails (as Alipay's cancel does)."""
        now = datetime.now(timezone.utc)
        with self._lock:
            trade = self._trades.get((provider, out_trade_no))
            if trade is None:
                trade = Trade(provider, out_trade_no, 0, self._new_id(provider, now), state="REVOKED",
                              created_at=now, reversed_at=now)
                self._trades[(provider, out_trade_no)] = trade
                return trade, "closed"
            if trade.refunds:
                return trade, "refused"
            if trade.state == "REVOKED":
                return trade, ("refunded" if trade.was_paid else "closed")
            was_paid = trade.state == "SUCCESS"
            trade.state, trade.reversed_at = "REVOKED", now
            return trade, ("refunded" if was_paid else "closed")

    def refund(self, provider: str, out_trade_no: str, out_refund_no: str, amount_fen: int,
               total_fen: Optional[int]) -> tuple[Optional[Trade], Optional[Refund], str]:
        """(trade, refund, outcome): "done", "again" (this out_refund_no was done before), "no_trade",
        "not_paid", "too_much", "bad_total"."""
        now = datetime.now(timezone.utc)
        with self._lock:
            trade = self._trades.get((provider, out_trade_no))
            if trade is None:
                return None, None, "no_trade"
            if out_refund_no in trade.refunds:
                return trade, trade.refunds[out_refund_no], "again"
            if trade.state != "SUCCESS":
                return trade, None, "not_paid"
            if total_fen is not None and total_fen != trade.amount_fen:
                return trade, None, "bad_total"
            if amount_fen <= 0 or trade.refunded_fen + amount_fen > trade.amount_fen:
                return trade, None, "too_much"
            refund_id = (f"5030{random.randint(1000, 9999)}{now.astimezone(SHANGHAI):%Y%m%d}"
                         f"{next(self._serial):012d}")
            refund = Refund(out_refund_no, refund_id, amount_fen, now)
            trade.refunds[out_refund_no] = refund
            return trade, refund, "done"

    def find_refund(self, provider: str, out_refund_no: str) -> tuple[Optional[Trade], Optional[Refund]]:
        with self._lock:
            for trade in self._trades.values():
                if trade.provider == provider and out_refund_no in trade.refunds:
                    return trade, trade.refunds[out_refund_no]
        return None, None

    def trades(self, provider: str) -> list[Trade]:
        with self._lock:
            return [t for t in self._trades.values() if t.provider == provider]


def _on(moment: Optional[datetime], day: date) -> bool:
    return moment is not None and moment.astimezone(SHANGHAI).date() == day


def _local(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def _fee(amount_fen: int) -> int:
    """0.6% service fee, rounded half away from zero, in integer fen."""
    sign = -1 if amount_fen < 0 else 1
    return sign * ((abs(amount_fen) * 6 + 500) // 1000)


WECHAT_HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
                 "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,"
                 "商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注")
WECHAT_SUMMARY = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"


def wechat_bill(ledger: Ledger, day: date) -> bytes:
    """The WeChat Pay trade bill (bill_type=ALL) of ``day`` (Asia/Shanghai): a SUCCESS row per payment
    made that day, a REFUND row per refund, a REVOKED row per reversed payment; then the totals."""
    rows = []  # (time, status, order_fen, settled_fen, refund_fen, fee_fen, trade, refund numbers)
    for t in ledger.trades("wechat"):
        if t.was_paid and _on(t.paid_at, day):
            rows.append((t.paid_at, "SUCCESS", t.amount_fen, t.amount_fen, 0, _fee(t.amount_fen), t, ("0", "0")))
        if t.state == "REVOKED" and t.amount_fen and _on(t.reversed_at, day):
            refunded = t.amount_fen if t.was_paid else 0
            rows.append((t.reversed_at, "REVOKED", t.amount_fen, 0, refunded, -_fee(refunded), t,
                         (t.transaction_id if t.was_paid else "0", "0")))
        for r in t.refunds.values():
            if _on(r.at, day):
                rows.append((r.at, "REFUND", 0, 0, r.amount_fen, -_fee(r.amount_fen), t, (r.refund_id, r.out_refund_no)))
    rows.sort(key=lambda row: row[0])
    out = io.StringIO()
    out.write(WECHAT_HEADER + "\r\n")
    totals = [0, 0, 0, 0, 0]  # settled, refund, fee, order, requested refund
    for at, status, order, settled, refunded, fee, t, (refund_id, out_refund_no) in rows:
        refund_type, refund_status = ("ORIGINAL", "SUCCESS") if status != "SUCCESS" else ("", "")
        fields = [_local(at), WECHAT_APPID, WECHAT_MCHID, "0", "", t.transaction_id, t.out_trade_no,
                  "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "MICROPAY", status, "OTHERS", "CNY", yuan(settled), "0.00",
                  refund_id, out_refund_no, yuan(refunded), "0.00", refund_type, refund_status,
                  t.description or "商品", "", yuan(fee), "0.60%", yuan(order), yuan(refunded), ""]
        out.write(",".join("`" + f for f in fields) + "\r\n")
        for i, value in enumerate((settled, refunded, fee, order, refunded)):
            totals[i] += value
    out.write(WECHAT_SUMMARY + "\r\n")
    summary = [str(len(rows)), yuan(totals[0]), yuan(totals[1]), "0.00", yuan(totals[2]), yuan(totals[3]), yuan(totals[4])]
    out.write(",".join("`" + f for f in summary) + "\r\n")
    return out.getvalue().encode("utf-8")


ALIPAY_HEADER = ["支付宝交易号", "商户订单号", "业务类型", "商品名称", "创建时间", "完成时间", "门店编号", "门店名称", "操作员",
                 "终端号", "对方账户", "订单金额（元）", "商家实收（元）", "支付宝红包（元）", "集分宝（元）", "支付宝优惠（元）",
                 "商家优惠（元）", "券核销金额（元）", "券名称", "商家红包消费金额（元）", "卡消费金额（元）",
                 "退款批次号/请求号", "服务费（元）", "分润（元）", "备注"]


def alipay_bill(ledger: Ledger, day: date) -> bytes:
    """The Alipay trade bill of ``day``: a ZIP holding the GBK CSV ``…_业务明细.csv`` (comment lines
    starting with #, the header, a 交易 row per payment and a 退款 row, negative, per refund or
    reversal of a paid trade) and its ``…_业务明细(汇总).csv``."""
    rows = []
    for t in ledger.trades("alipay"):
        if t.was_paid and _on(t.paid_at, day):
            rows.append((t.paid_at, t, "交易", t.amount_fen, "", t.created_at))
        if t.state == "REVOKED" and t.was_paid and _on(t.reversed_at, day):
            rows.append((t.reversed_at, t, "退款", -t.amount_fen, "", t.reversed_at))
        for r in t.refunds.values():
            if _on(r.at, day):
                rows.append((r.at, t, "退款", -r.amount_fen, r.out_refund_no, r.at))
    rows.sort(key=lambda row: row[0])
    start = day.strftime("%Y年%m月%d日")
    end = (day + timedelta(days=1)).strftime("%Y年%m月%d日")
    out = io.StringIO()
    out.write("#支付宝业务明细查询\r\n")
    out.write(f"#账号：[{ALIPAY_PID}0156]\r\n")
    out.write(f"#起始日期：[{start} 00:00:00]   终止日期：[{end} 00:00:00]\r\n")
    out.write("#-----------------------------------------业务明细列表----------------------------------------\r\n")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(ALIPAY_HEADER)
    paid = refunded = 0
    for at, t, kind, amount, request_no, created in rows:
        writer.writerow([t.transaction_id, t.out_trade_no, kind, t.description or "商品", _local(created), _local(at),
                         "", "", "", "", "159****5620", yuan(amount), yuan(amount), "0.00", "0.00", "0.00", "0.00",
                         "0.00", "", "0.00", "0.00", request_no, yuan(-_fee(amount)), "0.00", ""])
        if amount > 0:
            paid += amount
        else:
            refunded += amount
    out.write("#-----------------------------------------业务明细列表结束------------------------------------\r\n")
    count_paid = sum(1 for row in rows if row[2] == "交易")
    out.write(f"#交易合计：{count_paid}笔，商家实收共{yuan(paid)}元，商家优惠共0.00元\r\n")
    out.write(f"#退款合计：{len(rows) - count_paid}笔，商家实收退款共{yuan(refunded)}元，商家优惠退款共0.00元\r\n")
    out.write(f"#导出时间：[{datetime.now(SHANGHAI):%Y年%m月%d日 %H:%M:%S}]\r\n")
    stem = f"{ALIPAY_PID}0156_{day:%Y%m%d}"
    summary = ("#支付宝业务汇总查询\r\n门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）\r\n"
               f"合计,,{count_paid},{len(rows) - count_paid},{yuan(paid + refunded)},{yuan(paid + refunded)}\r\n")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{stem}_业务明细.csv", out.getvalue().encode("gbk"))
        archive.writestr(f"{stem}_业务明细(汇总).csv", summary.encode("gbk"))
    return buffer.getvalue()
