"""Trade bills written in the providers' own formats, from plain rows: what the fake gateway serves
and what the tests import. ``wechat_bill`` gives the tradebill CSV (UTF-8, every field prefixed
with a backtick, the totals at the end); ``alipay_bill`` the trade bill's ZIP holding the GBK CSV
``…_业务明细.csv`` between its ``#`` comment lines (or the CSV itself, ``zipped=False``)."""
from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from dataclasses import dataclass
from typing import Iterable, Optional

from inventory.localtime import to_local
from inventory.money import format_plain_yuan
from pos.payments.bills import WECHAT_HEADER, WECHAT_SUMMARY

ALIPAY_HEADER = ("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,"
                 "订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,"
                 "券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注").split(",")


@dataclass(frozen=True)
class Row:
    """One line to write: kind pay | refund | reversed, amount in fen (positive), at aware."""
    kind: str
    out_trade_no: Optional[str]
    transaction_id: str
    amount_fen: int
    at: dt.datetime
    out_refund_no: Optional[str] = None
    refund_id: Optional[str] = None   # the provider's refund number (WeChat)


def _when(moment: dt.datetime) -> str:
    return to_local(moment).strftime("%Y-%m-%d %H:%M:%S")


def _csv(rows: Iterable[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(rows)
    return out.getvalue()


def wechat_bill(rows: Iterable[Row], *, mchid: str = "1900000109", appid: str = "wx8888888888888888") -> bytes:
    rows = list(rows)
    states = {"pay": "SUCCESS", "refund": "REFUND", "reversed": "REVOKED"}
    out = [WECHAT_HEADER]
    pays = refunds = 0
    for r in rows:
        amount = format_plain_yuan(r.amount_fen)
        refund = r.kind == "refund"
        back = r.kind != "pay"   # a refund, or a reversal: the money went back
        pays += 0 if refund else r.amount_fen
        refunds += r.amount_fen if back else 0
        fields = {
            "交易时间": _when(r.at), "公众账号ID": appid, "商户号": mchid, "特约商户号": "0", "设备号": "",
            "微信订单号": r.transaction_id, "商户订单号": r.out_trade_no or "", "用户标识": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
            "交易类型": "MICROPAY", "交易状态": states[r.kind], "付款银行": "OTHERS", "货币种类": "CNY",
            "应结订单金额": "0.00" if refund else amount, "代金券金额": "0.00",
            "微信退款单号": (r.refund_id or "") if refund else "0", "商户退款单号": (r.out_refund_no or "") if refund else "0",
            "退款金额": amount if back else "0.00", "充值券退款金额": "0.00", "退款类型": "ORIGINAL" if back else "",
            "退款状态": "SUCCESS" if back else "", "商品名称": "梵净山珍·松桃馆", "商户数据包": "",
            "手续费": "0.00", "费率": "0.60%", "订单金额": "0.00" if refund else amount,
            "申请退款金额": amount if back else "0.00", "费率备注": "",
        }
        out.append(["`" + fields[h] for h in WECHAT_HEADER])
    out.append(WECHAT_SUMMARY)
    out.append(["`" + v for v in (str(len(rows)), format_plain_yuan(pays), format_plain_yuan(refunds), "0.00",
                                  "0.00", format_plain_yuan(pays), format_plain_yuan(refunds))])
    return _csv(out).encode("utf-8")


def alipay_csv(rows: Iterable[Row], day: dt.date, *, account: str = "20880000000000000156") -> bytes:
    rows = list(rows)
    nxt = day + dt.timedelta(days=1)
    out: list[list[str]] = [
        ["#支付宝业务明细查询"], [f"#账号：[{account}]"],
        [f"#起始日期：[{day:%Y年%m月%d日} 00:00:00]   终止日期：[{nxt:%Y年%m月%d日} 00:00:00]"],
        ["#-----------------------------------------业务明细列表----------------------------------------"],
        ALIPAY_HEADER]
    pays = refunds = 0
    for r in rows:
        refund = r.kind != "pay"
        amount = ("-" if refund else "") + format_plain_yuan(r.amount_fen)
        pays += not refund
        refunds += refund
        fields = dict.fromkeys(ALIPAY_HEADER, "")
        fields.update({
            "支付宝交易号": r.transaction_id, "商户订单号": r.out_trade_no or "", "业务类型": "退款" if refund else "交易",
            "商品名称": "梵净山珍·松桃馆", "创建时间": _when(r.at), "完成时间": _when(r.at), "门店编号": "H",
            "门店名称": "松桃馆", "对方账户": "138****0000", "订单金额（元）": amount, "商家实收（元）": amount,
            "支付宝红包（元）": "0.00", "集分宝（元）": "0.00", "支付宝优惠（元）": "0.00", "商家优惠（元）": "0.00",
            "券核销金额（元）": "0.00", "商家红包消费金额（元）": "0.00", "卡消费金额（元）": "0.00",
            "退款批次号/请求号": (r.out_refund_no or "") if r.kind == "refund" else "", "服务费（元）": "0.00",
            "分润（元）": "0.00",
        })
        out.append([fields[h] + "\t" if h in ("支付宝交易号", "商户订单号") else fields[h] for h in ALIPAY_HEADER])
    out += [["#-----------------------------------------业务明细列表结束------------------------------------"],
            [f"#交易合计：{pays}笔，退款合计：{refunds}笔"],
            [f"#导出时间：[{nxt:%Y年%m月%d日} 09:00:00]"]]
    return _csv(out).encode("gbk")


class _GbkName(zipfile.ZipInfo):
    """A member name stored as GBK bytes without the UTF-8 flag, as Alipay's ZIP files have them
    (zipfile itself writes UTF-8 with the flag)."""

    def _encodeFilenameFlags(self):
        return self.filename.encode("gbk"), self.flag_bits


def alipay_bill(rows: Iterable[Row], day: dt.date, *, zipped: bool = True,
                account: str = "20880000000000000156") -> bytes:
    data = alipay_csv(rows, day, account=account)
    if not zipped:
        return data
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        stem = f"{account}0156_{day:%Y%m%d}"
        # the names as Alipay writes them: GBK bytes, without the UTF-8 flag
        for name, body in ((f"{stem}_业务明细.csv", data),
                           (f"{stem}_业务明细(汇总).csv", "#支付宝业务汇总查询\r\n".encode("gbk"))):
            info = _GbkName(name, date_time=(day.year, day.month, day.day, 9, 0, 0))
            archive.writestr(info, body)
    return buffer.getvalue()
