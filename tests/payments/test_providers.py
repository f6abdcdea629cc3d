"""Payment codes recognised by shape alone, and the money helpers the adapters share (issue 15)."""
import pytest

from pos.payments.common import fen, mask_code, scrub, yuan
from pos.payments.providers import ALIPAY, WECHAT, provider_for_code


@pytest.mark.parametrize("code, provider", [
    ("134567890123450001", WECHAT),           # 18 digits starting 13
    ("104567890123450001", WECHAT),           # prefixes 10 … 15
    ("154567890123450001", WECHAT),
    ("164567890123450001", None),             # 16 is no WeChat prefix
    ("094567890123450001", None),             # nor 09
    ("13456789012345001", None),              # 17 digits
    ("1345678901234500011", None),            # 19 digits
    ("2845678901230001", ALIPAY),             # 16 digits starting 28
    ("254567890123456789012345", ALIPAY),     # 24 digits starting 25
    ("304567890123450001", ALIPAY),           # 18 digits starting 30 (not WeChat: 30 is Alipay's)
    ("314567890123450001", None),             # 31 is nobody's
    ("244567890123450001", None),             # nor 24
    ("254567890123456", None),                # 15 digits
    ("2545678901234567890123456", None),      # 25 digits
    ("13456789012345000a", None),             # letters
    ("ABCDEFGHIJKLMNOPQR", None),
    ("１３４５６７８９０１２３４５０００１", None),  # full-width digits
    (" 134567890123450001", None),            # a stray space: the caller strips the scan
    ("6901234567892", None),                  # an EAN-13 product barcode
    ("", None),
])
def test_provider_for_code(code, provider):
    assert provider_for_code(code) == provider


def test_provider_for_code_takes_only_strings():
    assert provider_for_code(134567890123450001) is None  # type: ignore[arg-type]
    assert provider_for_code(None) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("amount, text", [(0, "0.00"), (1, "0.01"), (1234, "12.34"), (100, "1.00"),
                                          (123456789, "1234567.89"), (-5, "-0.05"), (-1200, "-12.00")])
def test_yuan_strings_from_fen_and_back(amount, text):
    assert yuan(amount) == text
    assert fen(text) == amount


def test_yuan_strings_read_one_decimal_and_whole_yuan_and_refuse_the_rest():
    assert (fen("12.3"), fen("12"), fen(" 0.10 ")) == (1230, 1200, 10)
    for bad in ("12.345", "1e3", "", "12,34", "abc", "12.3.4"):
        with pytest.raises(ValueError):
            fen(bad)
    with pytest.raises(TypeError):
        yuan(12.34)  # ok-float: refused, amounts are integer fen


def test_a_masked_code_keeps_its_first_and_last_four_digits_only():
    assert mask_code("134567890123450002") == "1345**********0002"
    assert mask_code("2845678901230001") == "2845********0001"


def test_scrub_removes_signatures_and_keys_and_masks_codes():
    answer = {"code": "10000", "sign": "SIG", "auth_code": "134567890123450002",
              "nested": {"private_key_pem": "-----BEGIN", "apiv3_key": "K", "keep": "v",
                         "list": [{"signature": "S", "n": 1}]}}
    assert scrub(answer) == {"code": "10000", "auth_code": "1345**********0002",
                             "nested": {"keep": "v", "list": [{"n": 1}]}}
