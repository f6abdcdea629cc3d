"""Payment codes in the demo: the fake gateway (``pos.payments.fake_gateway``) plays the merchant's
WeChat Pay and Alipay, so anyone can rehearse every payment code at the demo's till.

``rehearse(app, folder)`` does it all: rehearsal key pairs under the instance folder (made once),
the merchant credentials that match them written through the credentials store (never over real
ones), ``songtao fake-gateway`` started as a child process on a free local port, and the app's
adapters pointed at it (``WECHATPAY_URL`` / ``ALIPAY_URL``). The caller stops the gateway with the
demo (``Gateway.stop``; also at exit). ``songtao demo --no-serve`` does none of this.
"""
from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

# The rehearsal codes by their last four digits (the fake gateway's rule), with what each shows.
REHEARSAL_CODES = (
    ("134567890123450001", "2845678901230001", "立即支付成功"),
    ("134567890123450002", "2845678901230002", "顾客输入密码（等待约 4 秒）后成功"),
    ("134567890123450003", "2845678901230003", "余额不足，支付失败"),
    ("134567890123450004", "2845678901230004", "一直等待密码：30 秒后自动撤销，或按 Esc 取消"),
    ("134567890123450005", "2845678901230005", "支付请求超时，查询后确认已成功（约 15 秒）"),
)

KEYS_FOLDER = "fake-gateway"  # the default of `songtao fake-gateway --keys`


@dataclass
class Gateway:
    url: str                 # WeChat Pay's base URL (the gateway's root)
    alipay_url: str          # Alipay's gateway.do on the same port
    process: subprocess.Popen
    errors: Any = None       # the child's stderr (a temporary file), closed when it stops

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.errors is not None:
            self.errors.close()
            self.errors = None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gateway(keys: Path, *, port: Optional[int] = None, slow_seconds: Optional[int] = None,
                  wait_seconds: float = 20.0) -> Gateway:
    """``songtao fake-gateway`` as a child process on 127.0.0.1, answering before this returns."""
    port = port or free_port()
    args = [sys.executable, "-c", "from pos.cli import main; main()", "fake-gateway",
            "--port", str(port), "--keys", str(keys)]
    if slow_seconds is not None:
        args += ["--slow-seconds", str(slow_seconds)]
    errors = tempfile.TemporaryFile()  # not a pipe: nobody reads it while the gateway runs
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=errors)
    urls = fake_gateway_urls(port)
    gateway = Gateway(url=urls["SONGTAO_WECHATPAY_URL"], alipay_url=urls["SONGTAO_ALIPAY_URL"], process=process,
                      errors=errors)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            errors.seek(0)
            error = errors.read().decode("utf-8", "replace").strip().splitlines()
            gateway.stop()
            raise RuntimeError("测试网关未能启动：" + (error[-1] if error else f"退出码 {process.returncode}"))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return gateway
        except OSError:
            time.sleep(0.1)
    gateway.stop()
    raise RuntimeError(f"测试网关 {wait_seconds:.0f} 秒内没有在端口 {port} 上应答")


def fake_gateway_urls(port: int) -> dict:
    from pos.payments import fake_gateway

    return fake_gateway.urls("127.0.0.1", port)


def install_rehearsal_credentials(app, keys: Path) -> list[str]:
    """The credentials matching the fake gateway's keys, through the credentials store, for each
    provider that has none yet (or has these already). Returns the providers that use them."""
    from pos.payments import credentials, fake_gateway

    fake_gateway.ensure_keys(keys)
    rehearsal = fake_gateway.rehearsal_credentials(keys)
    used = []
    for provider, values in rehearsal.items():
        existing = credentials.read(app, provider)
        if existing is not None and existing != credentials.check(provider, values):
            continue  # real (or other) credentials: the demo never replaces them
        if existing is None:
            credentials.write(app, provider, values)
        used.append(provider)
    return used


def rehearse(app, folder: Path) -> tuple[Gateway, list[str]]:
    """Everything the demo needs for code payments; the caller stops the gateway."""
    keys = folder / KEYS_FOLDER
    used = install_rehearsal_credentials(app, keys)
    gateway = start_gateway(keys)
    atexit.register(gateway.stop)
    app.config["WECHATPAY_URL"] = gateway.url
    app.config["ALIPAY_URL"] = gateway.alipay_url
    os.environ["SONGTAO_WECHATPAY_URL"] = gateway.url  # for anything the server starts itself
    os.environ["SONGTAO_ALIPAY_URL"] = gateway.alipay_url
    return gateway, used


def describe(gateway: Gateway, used: list[str]) -> list[str]:
    """What the demo prints: where the gateway runs and the codes to try."""
    names = {"wechat": "微信支付", "alipay": "支付宝"}
    lines = [f"付款码演示：测试网关 {gateway.url}（{'、'.join(names[p] for p in used) or '无'}使用演示商户凭据）"]
    if len(used) < len(names):
        lines.append("  实例目录中已有其他商户凭据，演示未替换它们：这些方式的付款码演示不可用")
    lines.append("  收款时（F12）扫描或输入以下付款码并回车：")
    for wechat, alipay, what in REHEARSAL_CODES:
        lines.append(f"  微信 {wechat}  支付宝 {alipay}  {what}")
    return lines
