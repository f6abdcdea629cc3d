"""The providers' daily trade bills: parsing them (WeChat Pay's tradebill CSV, Alipay's trade bill —
a ZIP holding a GBK CSV, or that CSV itself) into ``BillLine`` rows, and storing one provider's day
(``import_bill``).

Parsing is all or nothing: a file that is not such a bill, a line that does not read, or a bill
whose own totals line disagrees with its lines raises ``BillError`` with a Chinese message naming
the line, and nothing is stored. Amounts are read from the yuan text digit by digit
(inventory.money.parse_yuan), never through a float; times are the hall's (Asia/Shanghai), stored
in UTC.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from typing import Optional

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from inventory.localtime import HALL_TZ, local_date, utcnow
from inventory.money import AmountError, parse_yuan
from pos.core.audit import record
from pos.payments.bill_models import BILL_PROVIDERS, ProviderBill, ProviderBillLine

WECHAT, ALIPAY = "wechat", "alipay"
PROVIDER_NAMES = {WECHAT: "微信支付", ALIPAY: "支付宝"}
MAX_BILL_BYTES = 20 * 1024 * 1024   # a day's bill of one hall is far smaller; a ZIP member is checked too


class BillError(ValueError):
    """A file that cannot be imported as the bill asked for; the message is for the person."""


@dataclass(frozen=True)
class BillLine:
    provider: str
    kind: str                     # pay | refund | reversed (撤销)
    out_trade_no: Optional[str]   # 商户订单号
    transaction_id: Optional[str]  # 微信订单号 / 支付宝交易号
    out_refund_no: Optional[str]  # 商户退款单号 / 退款批次号/请求号 (refunds)
    amount_fen: int               # always positive: the kind says which way the money went
    at: dt.datetime               # UTC
    raw: dict = field(default_factory=dict)


# --- WeChat Pay: tradebill (bill_type=ALL) ----------------------------------------------------------

WECHAT_HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
                 "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,"
                 "商户数据包,手续费,费率,订单金额,申请退款金额,费率备注").split(",")
WECHAT_SUMMARY = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额".split(",")
WECHAT_STATES = {"SUCCESS": "pay", "REFUND": "refund", "REVOKED": "reversed"}


def _fen(text: str, column: str, where: str) -> int:
    """A yuan amount of a bill ("12.34", Alipay's refunds "-12.34") → fen, as a positive number."""
    value = (text or "").strip()
    if value.startswith("-"):
        value = value[1:]
    try:
        return parse_yuan(value)
    except AmountError:
        raise BillError(f"{where}「{column}」不是金额：{text}") from None


def _moment(text: str, column: str, where: str) -> dt.datetime:
    try:
        local = dt.datetime.strptime((text or "").strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise BillError(f"{where}「{column}」不是时间（应为 YYYY-MM-DD HH:MM:SS）：{text}") from None
    return local.replace(tzinfo=HALL_TZ).astimezone(dt.timezone.utc)


def _text(data: bytes, what: str) -> str:
    if not data:
        raise BillError(f"文件是空的，不是{what}")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise BillError(f"文件不是文本（无法按 UTF-8 或 GBK 读取），不是{what}")


def _rows(text: str) -> list[list[str]]:
    try:
        return list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as error:
        raise BillError(f"文件不是正确的 CSV：{error}") from None


def parse_wechat(data: bytes) -> list[BillLine]:
    """WeChat Pay's trade bill: its header, the data lines (every field prefixed with a backtick),
    then 总交易单数,… and its values, which must agree with the lines."""
    what = "微信支付交易账单"
    rows = [r for r in _rows(_text(data, what)) if any(cell.strip() for cell in r)]
    if not rows or [c.strip() for c in rows[0]] != WECHAT_HEADER:
        if rows and rows[0] and rows[0][0].lstrip("#").startswith("支付宝"):
            raise BillError("这是支付宝的账单，不是微信支付交易账单")
        raise BillError(f"文件第一行不是{what}的表头（交易时间,公众账号ID,商户号,…）")
    lines: list[BillLine] = []
    summary: Optional[dict[str, str]] = None
    body = rows[1:]
    for i, row in enumerate(body):
        where = f"第 {i + 2} 行"
        if [c.strip() for c in row] == WECHAT_SUMMARY:
            if i + 1 >= len(body):
                raise BillError(f"{where}：汇总表头之后缺少汇总数值")
            values = [c.strip().lstrip("`") for c in body[i + 1]]
            if len(values) != len(WECHAT_SUMMARY):
                raise BillError(f"第 {i + 3} 行：汇总数值应有 {len(WECHAT_SUMMARY)} 列")
            if i + 2 < len(body):
                raise BillError(f"第 {i + 4} 行：汇总行之后还有内容")
            summary = dict(zip(WECHAT_SUMMARY, values))
            break
        cells = [c.strip().lstrip("`") for c in row]
        if len(cells) != len(WECHAT_HEADER):
            raise BillError(f"{where}应有 {len(WECHAT_HEADER)} 列，实际 {len(cells)} 列")
        raw = dict(zip(WECHAT_HEADER, cells))
        kind = WECHAT_STATES.get(raw["交易状态"])
        if kind is None:
            raise BillError(f"{where}「交易状态」不认识：{raw['交易状态']}")
        if kind == "refund":
            asked = _fen(raw["申请退款金额"], "申请退款金额", where) if raw["申请退款金额"] else 0
            amount = asked or _fen(raw["退款金额"], "退款金额", where)
        elif kind == "reversed" and raw["退款金额"]:
            amount = _fen(raw["退款金额"], "退款金额", where)   # what went back: 0 when nothing was paid
        else:
            amount = _fen(raw["订单金额"] or raw["应结订单金额"], "订单金额", where)
        if not raw["商户订单号"] and not raw["微信订单号"]:
            raise BillError(f"{where}既没有商户订单号也没有微信订单号")
        lines.append(BillLine(WECHAT, kind, raw["商户订单号"] or None, raw["微信订单号"] or None,
                              (raw["商户退款单号"] or None) if kind == "refund" else None, amount,
                              _moment(raw["交易时间"], "交易时间", where), raw))
    if summary is None:
        raise BillError(f"文件没有汇总行（总交易单数,…），不是完整的{what}")
    count = summary["总交易单数"]
    if not count.isdigit() or int(count) != len(lines):
        raise BillError(f"汇总行的总交易单数（{count}）与明细行数（{len(lines)}）不符，文件不完整")
    return lines


# --- Alipay: trade bill (bill_type=trade) -----------------------------------------------------------

ALIPAY_REQUIRED = ("支付宝交易号", "商户订单号", "业务类型", "完成时间", "订单金额（元）", "退款批次号/请求号")
ALIPAY_TYPES = {"交易": "pay", "退款": "refund"}
ALIPAY_TOTALS = {kind: re.compile(rf"{label}[：:]\s*(\d+)\s*笔") for kind, label in (("pay", "交易合计"), ("refund", "退款合计"))}


def _alipay_csv(data: bytes) -> bytes:
    """The 业务明细 CSV of Alipay's ZIP (member names are GBK without the UTF-8 flag), or the data
    itself when it is not a ZIP."""
    if not data.startswith(b"PK"):
        return data
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError):
        raise BillError("文件不是正确的 ZIP 压缩包") from None
    chosen = None
    for info in members:
        name = info.filename
        if not info.flag_bits & 0x800:
            try:
                name = name.encode("cp437").decode("gb18030")
            except (UnicodeEncodeError, UnicodeDecodeError):
                pass
        if name.endswith("业务明细.csv"):
            chosen = info
    if chosen is None:
        raise BillError("ZIP 压缩包里没有支付宝的业务明细 CSV（…_业务明细.csv）")
    if chosen.file_size > MAX_BILL_BYTES:
        raise BillError("ZIP 里的账单文件太大")
    try:
        return archive.read(chosen)
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError):
        raise BillError("ZIP 压缩包已损坏，无法读取账单") from None


def parse_alipay(data: bytes) -> list[BillLine]:
    """Alipay's trade bill: ``#`` comment lines around a header and the detail lines; 业务类型 交易 or
    退款 (refunds carry negative amounts and the refund request number; one without a request
    number is the cancellation of a payment, a reversal)."""
    what = "支付宝交易账单"
    rows = _rows(_text(_alipay_csv(data), what))
    header: Optional[list[str]] = None
    lines: list[BillLine] = []
    totals: dict[str, int] = {}
    for index, row in enumerate(rows, start=1):
        where = f"第 {index} 行"
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if cells[0].startswith("#"):   # the footer's 交易合计 / 退款合计: on one line or two
            for kind, pattern in ALIPAY_TOTALS.items():
                match = pattern.search(",".join(cells))
                if match:
                    totals[kind] = int(match.group(1))
            continue
        if header is None:
            if cells[:len(WECHAT_HEADER)] == WECHAT_HEADER or cells[0].lstrip("\ufeff") == "交易时间":
                raise BillError("这是微信支付的账单，不是支付宝交易账单")
            missing = [c for c in ALIPAY_REQUIRED if c not in cells]
            if missing:
                raise BillError(f"找不到{what}的表头（缺少列：{'、'.join(missing)}）")
            header = cells
            continue
        if len(cells) != len(header):
            raise BillError(f"{where}应有 {len(header)} 列，实际 {len(cells)} 列")
        raw = dict(zip(header, cells))
        kind = ALIPAY_TYPES.get(raw["业务类型"])
        if kind is None:
            raise BillError(f"{where}「业务类型」不认识：{raw['业务类型']}")
        refund_no = raw["退款批次号/请求号"] or None
        if kind == "refund" and refund_no is None:
            kind = "reversed"
        if not raw["商户订单号"] and not raw["支付宝交易号"]:
            raise BillError(f"{where}既没有商户订单号也没有支付宝交易号")
        moment = raw["完成时间"] or raw.get("创建时间", "")
        lines.append(BillLine(ALIPAY, kind, raw["商户订单号"] or None, raw["支付宝交易号"] or None,
                              refund_no if kind == "refund" else None,
                              _fen(raw["订单金额（元）"], "订单金额（元）", where), _moment(moment, "完成时间", where), raw))
    if header is None:
        raise BillError(f"文件里没有{what}的表头（支付宝交易号,商户订单号,业务类型,…）")
    pays = sum(1 for line in lines if line.kind == "pay")
    found = {"pay": pays, "refund": len(lines) - pays}
    if any(totals[k] != found[k] for k in totals):
        raise BillError(f"账单末尾的合计（交易 {totals.get('pay', '—')} 笔，退款 {totals.get('refund', '—')} 笔）与明细"
                        f"（交易 {pays} 笔，退款 {len(lines) - pays} 笔）不符，文件不完整")
    return lines


def parse_bill(provider: str, data: bytes) -> list[BillLine]:
    """The lines of ``provider``'s trade bill in ``data`` (the file's bytes), or BillError."""
    if provider not in BILL_PROVIDERS:
        raise BillError("支付渠道应为微信支付或支付宝")
    if len(data) > MAX_BILL_BYTES:
        raise BillError("文件太大，不是一天的交易账单")
    return parse_wechat(data) if provider == WECHAT else parse_alipay(data)


# --- storing a day's bill ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Imported:
    bill_id: int
    lines: int
    replaced: bool   # another file of the same day was there before


def import_bill(s: Session, *, provider: str, day: dt.date, data: bytes, user_id: Optional[int],
                source: str = "upload") -> Imported:
    """Parse and store ``provider``'s bill of ``day`` (all or nothing, audited). The same file again
    is refused; another file of the same day replaces the one imported before."""
    lines = parse_bill(provider, data)
    days = {local_date(line.at) for line in lines}
    if lines and day not in days:
        raise BillError(f"账单中的交易日期（{'、'.join(sorted(d.isoformat() for d in days)[:3])}）"
                        f"与所选日期 {day.isoformat()} 不符")
    digest = hashlib.sha256(data).hexdigest()
    bill = s.scalar(select(ProviderBill).where(ProviderBill.provider == provider, ProviderBill.bill_date == day))
    replaced = bill is not None
    if bill is not None:
        if bill.file_sha256 == digest:
            raise BillError(f"{day.isoformat()} 的{PROVIDER_NAMES[provider]}账单已导入过（同一文件），未作改动")
        before = {"file_sha256": bill.file_sha256, "lines": bill.line_count, "imported_at": bill.imported_at}
        s.execute(delete(ProviderBillLine).where(ProviderBillLine.bill_id == bill.id))
        bill.imported_at, bill.imported_by_id, bill.source = utcnow(), user_id, source
        bill.file_sha256, bill.line_count, bill.checked_at = digest, len(lines), None
    else:
        before = None
        bill = ProviderBill(provider=provider, bill_date=day, imported_by_id=user_id, source=source,
                            file_sha256=digest, line_count=len(lines), open_items=0)
        s.add(bill)
    s.flush()
    if lines:
        s.execute(insert(ProviderBillLine), [
            {"bill_id": bill.id, "line_no": n, "kind": line.kind, "out_trade_no": line.out_trade_no,
             "transaction_id": line.transaction_id, "out_refund_no": line.out_refund_no,
             "amount_fen": line.amount_fen, "at": line.at, "raw": json.dumps(line.raw, ensure_ascii=False)}
            for n, line in enumerate(lines, start=1)])
    record(s, user_id=user_id, action="bill.replace" if replaced else "bill.import", entity="provider_bill",
           entity_id=bill.id, before=before,
           after={"provider": provider, "bill_date": day, "file_sha256": digest, "lines": len(lines),
                  "source": source})
    return Imported(bill.id, len(lines), replaced)


def fetch_bill(s: Session, *, provider: str, day: dt.date, credentials: dict, base_url: Optional[str],
               user_id: Optional[int], timeout: float = 30.0) -> Imported:  # ok-float: seconds
    """自动获取: download ``provider``'s bill of ``day`` through its adapter with the merchant's
    credentials (pos.payments.providers), then import it as an upload would be (source "download").
    A bill that cannot be had is a BillError with the provider's Chinese reason (never a secret)."""
    from pos.payments.providers import ProviderError, build_provider

    try:
        data = build_provider(provider, credentials, base_url=base_url, timeout=timeout).download_bill(day)
    except ProviderError as error:
        raise BillError(f"无法从{PROVIDER_NAMES[provider]}获取 {day.isoformat()} 的账单：{error}") from None
    return import_bill(s, provider=provider, day=day, data=data, user_id=user_id, source="download")
