"""Is a product certified poverty-alleviation produce (认定的扶贫产品) on a given day?

A product is certified on a local date when a certificate covering it is valid on that date:
``valid_from <= day <= valid_to``, both inclusive, in the hall's calendar (Asia/Shanghai). A sale
at 00:30 on 1 January in Humen is judged against 1 January even though it is still 31 December
in UTC. Sale lines keep a snapshot of the answer, so later certificate edits never rewrite history.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from .localtime import local_date
from .models import Certificate, certificate_products


@dataclass(frozen=True)
class Certification:
    certified: bool
    certificate_no: Optional[str] = None
    valid_to: Optional[dt.date] = None


NOT_CERTIFIED = Certification(False)


def certification_on(session: Session, product_id: int, day: dt.date) -> Certification:
    """The certificate covering the product on the local date ``day`` (the one valid longest,
    if several are)."""
    row = session.execute(
        select(Certificate.number, Certificate.valid_to)
        .join(certificate_products, certificate_products.c.certificate_id == Certificate.id)
        .where(
            certificate_products.c.product_id == product_id,
            Certificate.valid_from <= day,
            Certificate.valid_to >= day,
        )
        .order_by(Certificate.valid_to.desc(), Certificate.number)
        .limit(1)
    ).first()
    if row is None:
        return NOT_CERTIFIED
    return Certification(True, row.number, row.valid_to)


def certification_at(session: Session, product_id: int, moment: dt.datetime) -> Certification:
    """The same, for a moment in time (judged on its Asia/Shanghai date)."""
    return certification_on(session, product_id, local_date(moment))


_C = Certificate.__table__
# Table columns, built once: a Core statement that a checkout may run on its connection.
_CERTIFIED = (
    select(certificate_products.c.product_id, _C.c.number, _C.c.valid_to)
    .join(_C, certificate_products.c.certificate_id == _C.c.id)
    .where(
        certificate_products.c.product_id.in_(bindparam("ids", expanding=True)),
        _C.c.valid_from <= bindparam("day"),
        _C.c.valid_to >= bindparam("day"),
    )
    .order_by(certificate_products.c.product_id, _C.c.valid_to, _C.c.number.desc())
)


def certified_product_ids(session: Session | Connection, product_ids: list[int], day: dt.date
                          ) -> dict[int, Certification]:
    """Certification of many products on one day, in one query (for baskets and planograms); on a
    Session or on its Connection (a checkout's Core reads)."""
    result = {pid: NOT_CERTIFIED for pid in product_ids}
    if not product_ids:
        return result
    rows = session.execute(_CERTIFIED, {"ids": list(product_ids), "day": day})
    for product_id, number, valid_to in rows:
        result[product_id] = Certification(True, number, valid_to)  # the last (longest valid) wins
    return result
