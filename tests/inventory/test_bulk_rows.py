"""inventory.bulk_rows, the catalogue import's writer (COPY on PostgreSQL, executemany on SQLite):
rows land as ``insert()`` would write them (enums, UTC datetimes, omitted columns' defaults), a
rolled-back savepoint takes them away, and a bulk update changes exactly the rows named."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from inventory.bulk_rows import insert_rows, key_filters, update_rows
from inventory.models import Product, Unit, VatRate

PRODUCTS = Product.__table__
AT = dt.datetime(2026, 11, 26, 3, 4, 5, tzinfo=dt.timezone.utc)


def _row(sku: str, **extra) -> dict:
    return {"sku": sku, "name": f"梅江绿茶 {sku}", "price_fen": 1250, "unit": Unit.KG, "vat": VatRate.EXEMPT,
            "active": True, "created_at": AT, **extra}


def _read(s, skus) -> dict:
    columns = [PRODUCTS.c[name] for name in ("sku", "name", "price_fen", "unit", "vat", "active", "created_at",
                                             "pinyin_initials", "sold_by_weight", "catalogue_version")]
    return {row.sku: row._asdict() for row in s.execute(select(*columns).where(PRODUCTS.c.sku.in_(skus)))}


def test_bulk_rows_read_back_as_insert_writes_them(session):
    insert_rows(session, PRODUCTS, [_row(f"BULK{i}") for i in range(3)])
    session.execute(PRODUCTS.insert(), [_row("ORM0")])
    got = _read(session, ["BULK0", "BULK1", "BULK2", "ORM0"])
    reference = dict(got.pop("ORM0"), sku=None, name=None)
    assert len(got) == 3
    for sku, row in got.items():
        assert row["name"] == f"梅江绿茶 {sku}"
        assert dict(row, sku=None, name=None) == reference
    assert reference["unit"] is Unit.KG and reference["vat"] is VatRate.EXEMPT
    assert reference["created_at"] == AT
    # omitted columns took their defaults, as insert() gives them
    assert (reference["pinyin_initials"], reference["sold_by_weight"], reference["catalogue_version"]) == ("", False, 0)
    session.rollback()


def test_a_rolled_back_savepoint_takes_the_bulk_rows_away(session):
    with session.begin_nested() as savepoint:
        insert_rows(session, PRODUCTS, [_row(f"GONE{i}") for i in range(5)])
        assert len(_read(session, [f"GONE{i}" for i in range(5)])) == 5
        savepoint.rollback()
    assert _read(session, [f"GONE{i}" for i in range(5)]) == {}
    session.rollback()


def test_a_bulk_update_changes_the_rows_named_and_no_other(session):
    insert_rows(session, PRODUCTS, [_row(f"UPD{i}") for i in range(4)])
    ids = dict(session.execute(select(PRODUCTS.c.sku, PRODUCTS.c.id).where(PRODUCTS.c.sku.like("UPD%"))).all())
    update_rows(session, PRODUCTS, [{"id": ids["UPD0"], "price_fen": 990, "unit": Unit.PIECE},
                                    {"id": ids["UPD2"], "price_fen": 1990, "unit": Unit.PIECE}],
                {"catalogue_version": 7})
    got = _read(session, list(ids))
    assert {sku: (row["price_fen"], row["unit"], row["catalogue_version"]) for sku, row in got.items()} == {
        "UPD0": (990, Unit.PIECE, 7), "UPD1": (1250, Unit.KG, 0),
        "UPD2": (1990, Unit.PIECE, 7), "UPD3": (1250, Unit.KG, 0)}
    session.rollback()


def test_key_filters_select_the_rows_of_every_key_given(session):
    insert_rows(session, PRODUCTS, [_row(f"KEY{i:04d}") for i in range(1234)])
    wanted = {f"KEY{i:04d}" for i in range(0, 1234, 2)} | {"NOT-THERE"}
    found = set()
    filters = key_filters(session, PRODUCTS.c.sku, wanted)
    for where in filters:
        found.update(session.scalars(select(PRODUCTS.c.sku).where(where)))
    assert found == wanted - {"NOT-THERE"}
    # one statement on PostgreSQL (an array), SQLite's parameter limit respected elsewhere
    assert len(filters) == (1 if session.get_bind().dialect.name == "postgresql" else 2)
    assert key_filters(session, PRODUCTS.c.sku, []) == []
    session.rollback()
