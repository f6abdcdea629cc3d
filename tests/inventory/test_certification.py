"""The certified-on-date rule: a certificate covers its valid_from..valid_to local (Asia/Shanghai)
dates, both inclusive."""
from __future__ import annotations

import datetime as dt

import pytest

from inventory.certification import (
    NOT_CERTIFIED,
    certification_at,
    certification_on,
    certified_product_ids,
)
from inventory.localtime import to_local
from inventory.models import Certificate, Product, Supplier

D = dt.date


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def supplier(session):
    s = Supplier(name="松桃苗王湖农业合作社", origin_county="松桃苗族自治县", origin_county_code="520628")
    session.add(s)
    session.flush()
    return s


@pytest.fixture
def make_product(session, supplier):
    counter = iter(range(1, 10_000))

    def make(name: str = "梵净山翠峰茶") -> Product:
        n = next(counter)
        product = Product(sku=f"SKU{n:04d}", name=f"{name}{n}", price_fen=3800, supplier=supplier)
        session.add(product)
        session.flush()
        return product

    return make


@pytest.fixture
def certify(session, supplier):
    counter = iter(range(1, 10_000))

    def make(products: list[Product], valid_from: dt.date, valid_to: dt.date, number: str | None = None) -> Certificate:
        certificate = Certificate(
            number=number or f"黔扶认字〔2026〕{next(counter):04d}号", issuer="贵州省扶贫开发办公室",
            supplier=supplier, valid_from=valid_from, valid_to=valid_to, products=list(products),
        )
        session.add(certificate)
        session.flush()
        return certificate

    return make


@pytest.fixture
def tea(make_product, certify):
    product = make_product()
    certificate = certify([product], D(2026, 1, 1), D(2026, 12, 31), number="CERT-2026")
    return product, certificate


@pytest.mark.parametrize("moment,local,certified", [
    ("2025-12-31T15:59:59Z", "2025-12-31 23:59:59", False),   # the last second before it starts
    ("2025-12-31T16:00:00Z", "2026-01-01 00:00:00", True),    # midnight in Humen: 1 January
    ("2026-06-15T04:00:00Z", "2026-06-15 12:00:00", True),
    ("2026-12-31T15:59:59Z", "2026-12-31 23:59:59", True),    # the last second of its last day
    ("2026-12-31T16:00:00Z", "2027-01-01 00:00:00", False),   # 1 January 2027 in Humen
])
def test_certified_at_the_boundaries_in_local_time(session, tea, moment, local, certified):
    product, certificate = tea
    at = utc(moment)
    assert to_local(at).strftime("%Y-%m-%d %H:%M:%S") == local
    result = certification_at(session, product.id, at)
    assert result.certified is certified
    if certified:
        assert result.certificate_no == "CERT-2026"
        assert result.valid_to == D(2026, 12, 31)
    else:
        assert result == NOT_CERTIFIED


def test_a_moment_with_another_offset_is_judged_on_its_humen_date(session, tea):
    product, _ = tea
    # 08:30 on 1 January in Humen, written in UTC+08:00 and in UTC-05:00 (still 31 December there)
    assert certification_at(session, product.id, dt.datetime(2026, 1, 1, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))).certified
    assert certification_at(session, product.id, utc("2025-12-31T19:30:00-05:00")).certified


def test_a_naive_moment_is_refused(session, tea):
    product, _ = tea
    with pytest.raises(ValueError):
        certification_at(session, product.id, dt.datetime(2026, 6, 1, 12, 0))


@pytest.mark.parametrize("day,certified", [
    (D(2025, 12, 31), False), (D(2026, 1, 1), True), (D(2026, 12, 31), True), (D(2027, 1, 1), False),
])
def test_certified_on_a_local_date_both_ends_inclusive(session, tea, day, certified):
    product, _ = tea
    assert certification_on(session, product.id, day).certified is certified


def test_a_product_with_two_certificates(session, make_product, certify):
    product = make_product()
    certify([product], D(2025, 1, 1), D(2025, 12, 31), number="OLD")
    certify([product], D(2025, 7, 1), D(2026, 6, 30), number="NEW")

    assert certification_on(session, product.id, D(2025, 3, 1)).certificate_no == "OLD"
    # while both are valid, the one valid longest is named
    overlap = certification_on(session, product.id, D(2025, 9, 1))
    assert (overlap.certified, overlap.certificate_no, overlap.valid_to) == (True, "NEW", D(2026, 6, 30))
    assert certification_on(session, product.id, D(2026, 6, 30)).certificate_no == "NEW"
    assert certification_on(session, product.id, D(2026, 7, 1)) == NOT_CERTIFIED
    assert certification_on(session, product.id, D(2024, 12, 31)) == NOT_CERTIFIED


def test_a_gap_between_two_certificates_is_not_certified(session, make_product, certify):
    product = make_product()
    certify([product], D(2025, 1, 1), D(2025, 3, 31))
    certify([product], D(2025, 5, 1), D(2025, 12, 31))
    assert certification_on(session, product.id, D(2025, 3, 31)).certified
    assert not certification_on(session, product.id, D(2025, 4, 1)).certified
    assert not certification_on(session, product.id, D(2025, 4, 30)).certified
    assert certification_on(session, product.id, D(2025, 5, 1)).certified


def test_an_expired_certificate_does_not_certify(session, make_product, certify):
    product = make_product()
    certify([product], D(2024, 1, 1), D(2024, 12, 31), number="EXPIRED")
    assert certification_on(session, product.id, D(2025, 1, 1)) == NOT_CERTIFIED
    assert certification_at(session, product.id, utc("2026-03-01T02:00:00Z")) == NOT_CERTIFIED
    assert certified_product_ids(session, [product.id], D(2025, 1, 1)) == {product.id: NOT_CERTIFIED}


def test_a_certificate_covers_only_its_own_products(session, make_product, certify):
    covered, other = make_product(), make_product()
    certify([covered], D(2026, 1, 1), D(2026, 12, 31))
    assert certification_on(session, covered.id, D(2026, 5, 1)).certified
    assert not certification_on(session, other.id, D(2026, 5, 1)).certified


def test_a_single_day_certificate(session, make_product, certify):
    product = make_product()
    certify([product], D(2026, 11, 1), D(2026, 11, 1))
    assert certification_at(session, product.id, utc("2026-10-31T16:00:00Z")).certified      # 00:00 local
    assert certification_at(session, product.id, utc("2026-11-01T15:59:59Z")).certified      # 23:59:59 local
    assert not certification_at(session, product.id, utc("2026-10-31T15:59:59Z")).certified
    assert not certification_at(session, product.id, utc("2026-11-01T16:00:00Z")).certified


def test_many_products_agree_with_one_at_a_time(session, make_product, certify):
    products = [make_product() for _ in range(8)]
    p = products
    certify([p[0], p[1]], D(2026, 1, 1), D(2026, 12, 31), number="A")
    certify([p[1], p[2]], D(2026, 3, 1), D(2027, 2, 28), number="B")       # p1 has two
    certify([p[2]], D(2026, 3, 1), D(2027, 2, 28), number="AA")            # same valid_to as B
    certify([p[3]], D(2025, 1, 1), D(2025, 12, 31), number="C")            # expired
    certify([p[4]], D(2026, 6, 2), D(2026, 12, 31), number="D")            # starts later
    certify([p[5]], D(2026, 6, 1), D(2026, 6, 1), number="E")              # that day only
    # p[6] and p[7] have none
    ids = [product.id for product in products] + [999_999]                 # and an unknown id
    for day in (D(2025, 12, 31), D(2026, 1, 1), D(2026, 6, 1), D(2026, 6, 2), D(2026, 12, 31), D(2027, 1, 1)):
        many = certified_product_ids(session, ids, day)
        assert set(many) == set(ids)
        for pid in ids:
            assert many[pid] == certification_on(session, pid, day), (pid, day)

    on_june_first = certified_product_ids(session, ids, D(2026, 6, 1))
    assert [on_june_first[product.id].certified for product in products] == [
        True, True, True, False, False, True, False, False]
    assert on_june_first[p[1].id].certificate_no == "B"   # valid longest
    assert on_june_first[p[2].id].certificate_no == "AA"  # equal validity: the first number


def test_no_products_no_query(session):
    assert certified_product_ids(session, [], D(2026, 1, 1)) == {}
