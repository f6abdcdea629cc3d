"""The plan of a catalogue import: every row of the file understood against the database (what
would be created or changed, and every problem), without writing anything. The file's format is
in ``inventory.catalogue_sheet``."""
from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import barcodes as barcode_rules
from . import catalogue, product_rules, suppliers
from .bulk_rows import key_filters
from .catalogue_import_known import KnownProduct, load_known
from .catalogue_sheet import (
    CODE_COLUMNS,
    DEFAULT_ISSUER,
    MAX_ERRORS,
    PIPE,
    UNIT_WORDS,
    VAT_WORDS,
    ImportPreview,
    RowError,
    RowPlan,
    _origin,
    _parse_barcode_kinds,
    _parse_date,
    _parse_fen,
    _parse_yuan,
    _Problems,
    _read,
    _RowProblem,
)
from .credit_codes import normalise_credit_code
from .errors import ValidationError
from .models import Barcode, Category, Certificate, Product, Supplier, Unit, VatRate, certificate_products

# --- the plan --------------------------------------------------------------------------------------

@dataclass
class _Row:
    row_no: int
    sku: str
    product: Optional[KnownProduct]                      # the catalogue's product with this sku
    values: dict = field(default_factory=dict)            # product fields to set (cleaned)
    barcodes: Optional[list[str]] = None                   # wanted codes, None = column absent
    kinds: dict = field(default_factory=dict)              # code -> its kind (checked once)
    category: Optional[str] = None                         # name, when the column is present
    has_category: bool = False
    supplier: Optional[str] = None
    has_supplier: bool = False
    origin: Optional[tuple] = None                         # (county, township, village) or None = absent
    set_origin: bool = False                               # the product's own origin is to be set …
    own_origin: Optional[tuple] = None                     # … to this (None: use the supplier's)
    county_code: Optional[str] = None
    cert_no: Optional[str] = None
    has_cert: bool = False
    cert_from: Optional[dt.date] = None
    cert_to: Optional[dt.date] = None
    issuer: Optional[str] = None
    credit_code: Optional[str] = None
    changes: dict = field(default_factory=dict)
    name: str = ""


@dataclass
class _Plan:
    preview: ImportPreview
    rows: list[_Row]
    new_categories: dict[str, int]                 # name -> first row
    new_suppliers: dict[str, dict]                 # name -> fields for create_supplier
    new_certs: dict[str, dict]                     # number -> fields for create_certificate (no products)
    cert_dates: dict[str, tuple]                   # existing number -> (from, to) when changed
    link: dict[str, list[str]]                     # cert number -> skus to add
    unlink: dict[int, set[str]]                    # cert id -> skus to remove
    headers: dict[str, str]                        # column -> its name in the file
    covered: dict[int, dict[int, str]] = field(default_factory=dict)  # known cert id -> {product id: sku}


class _Errors:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers
        self.items: list[RowError] = []
        self.cells: set[tuple[int, str]] = set()

    def add(self, row_no: int, column: str, message: Any) -> None:
        error = RowError(row_no, self.headers.get(column, column), str(message))
        if (row_no, error.column) in self.cells:   # one problem per cell: the first found
            return
        self.cells.add((row_no, error.column))
        if len(self.items) < MAX_ERRORS:
            self.items.append(error)


# Free-text columns of the file that are not product fields: (longest, label for the messages);
# built once, not per row (a lazy string costs more than the check).
TEXT_COLUMNS = {
    "category": (60, _l("分类")), "supplier": (120, _l("供应商")), "origin_county": (60, _l("产地县")),
    "origin_township": (60, _l("产地乡镇")), "origin_village": (60, _l("产地村")),
    "certificate_no": (60, _l("认定证书编号")), "certificate_issuer": (120, _l("认定机构")),
}

FIELD_COLUMNS = {
    "sku": "sku", "name": "name", "price_fen": "price_fen", "unit": "unit", "sold_by_weight": "unit",
    "scale_plu": "unit", "vat": "vat", "vat_exemption_code": "vat", "origin_county": "origin_county",
    "origin_township": "origin_township", "origin_village": "origin_village",
    "origin_county_code": "origin_county_code", "barcodes": "barcodes",
}


def _load(s: Session, model, column, keys: set) -> dict:
    found = {}
    for where in key_filters(s, column, keys):
        for obj in s.scalars(select(model).where(where)):
            found[getattr(obj, column.key)] = obj
    return found


def _plan(s: Session, filename: str, data: bytes, today: dt.date) -> _Plan:
    raw_rows, headers, ignored = _read(filename, data)
    errors = _Errors(headers)
    present = set(headers)

    for raw in raw_rows:
        for column in CODE_COLUMNS:
            if raw.get(column):
                raw[column] = unicodedata.normalize("NFKC", raw[column]).strip()
    skus = {r["sku"] for r in raw_rows if r.get("sku")}
    categories = {c.name: c for c in s.scalars(select(Category))}
    products = load_known(s, skus, {c.id: c for c in categories.values()})
    supplier_names = {r.get("supplier", "") for r in raw_rows} - {""}
    known_suppliers = _load(s, Supplier, Supplier.name, supplier_names)
    cert_numbers = {r.get("certificate_no", "") for r in raw_rows} - {""}
    known_certs = _load(s, Certificate, Certificate.number, cert_numbers)
    covered = _covered(s, [c.id for c in known_certs.values()])
    county_codes = _county_codes(s)

    rows: list[_Row] = []
    seen_skus: dict[str, int] = {}
    for raw in raw_rows:
        row_no = raw["_row"]
        row, problems = _parse_row(s, raw, present, products, known_suppliers, county_codes, today)
        for problem in problems:
            errors.add(row_no, problem.column, problem.message)
        if row is None:
            continue
        if row.sku in seen_skus:
            errors.add(row_no, "sku", _l("商品编码 %(sku)s 在第 %(row)s 行已出现", sku=row.sku, row=seen_skus[row.sku]))
            continue
        seen_skus[row.sku] = row_no
        if problems:
            row.changes = None   # checked against the other rows and the catalogue below, never planned
        rows.append(row)

    # Barcodes: unique within the file, and not carried by a product that keeps them.
    by_sku = {r.sku: r for r in rows}
    wanted_codes: dict[str, tuple[int, str]] = {}
    for row in rows:
        for code in row.barcodes or ():
            variants = barcode_rules.scan_variants(code)
            taken = next((wanted_codes[v] for v in variants if v in wanted_codes), None)
            if taken is not None and taken[1] != row.sku:
                errors.add(row.row_no, "barcodes", _l("条码 %(code)s 在第 %(row)s 行已用于商品 %(sku)s",
                                                      code=code, row=taken[0], sku=taken[1]))
                continue
            for variant in variants:
                wanted_codes.setdefault(variant, (row.row_no, row.sku))
    owners = {}
    for where in key_filters(s, Barcode.code, wanted_codes):
        for code, sku, name in s.execute(select(Barcode.code, Product.sku, Product.name)
                                         .join(Product, Product.id == Barcode.product_id).where(where)):
            owners[code] = (sku, name)
    for code, (owner_sku, owner_name) in owners.items():
        row_no, sku = wanted_codes[code]
        if owner_sku == sku:
            continue
        owner_row = by_sku.get(owner_sku)
        if owner_row is not None and owner_row.barcodes is not None and not (
            set(barcode_rules.scan_variants(code)) & set(owner_row.barcodes)
        ):
            continue  # the file takes it off its present owner
        errors.add(row_no, "barcodes", _l("条码 %(code)s 已属于商品「%(name)s」（%(sku)s）",
                                          code=code, name=owner_name, sku=owner_sku))

    # Categories, suppliers and certificates the file names.
    new_categories: dict[str, int] = {}
    new_suppliers: dict[str, dict] = {}
    new_certs: dict[str, dict] = {}
    cert_dates: dict[str, tuple] = {}
    cert_rows: dict[str, tuple] = {}               # number -> (first row giving dates, its dates)
    link: dict[str, list[str]] = {}
    unlink: dict[int, set[str]] = {}
    credit_codes: dict[str, str] = {}
    for row in rows:
        for problem in _plan_references(s, row, categories, known_suppliers, known_certs, new_categories,
                                        new_suppliers, new_certs, cert_dates, cert_rows, link, unlink, credit_codes,
                                        today):
            errors.add(row.row_no, problem.column, problem.message)

    # A new certificate takes its dates from any of its rows; none at all is an error on each.
    for row in rows:
        if row.changes is None:
            continue
        if row.cert_no and row.cert_no not in known_certs and row.cert_no not in new_certs:
            errors.add(row.row_no, "certificate_valid_from", _l(
                "新证书 %(number)s 需要生效日期和失效日期", number=row.cert_no))
            row.changes = None
    plans = []
    for row in rows:
        if row.changes is None:
            continue
        try:
            _plan_product(row, known_suppliers, new_suppliers, known_certs, new_certs, cert_dates, unlink, today)
        except _RowProblem as problem:
            errors.add(row.row_no, problem.column, problem.message)
            continue
        if row.product is None:
            action = "create"
        else:
            action = "update" if row.changes else "unchanged"
        plans.append(RowPlan(row.row_no, row.sku, row.name, action, row.changes))

    changed_certs = set(cert_dates) | {s.get(Certificate, cert_id).number for cert_id in unlink}
    for number, linked_skus in link.items():
        known = known_certs.get(number)
        if known is not None and set(linked_skus) - set(covered.get(known.id, {}).values()):
            changed_certs.add(number)
    errors.items.sort(key=lambda e: (e.row_no, e.column))
    preview = ImportPreview(
        rows=plans, errors=errors.items, new_categories=sorted(new_categories), new_suppliers=sorted(new_suppliers),
        new_certificates=sorted(new_certs), changed_certificates=sorted(changed_certs), ignored_columns=ignored,
    )
    return _Plan(preview, rows, new_categories, new_suppliers, new_certs, cert_dates, link, unlink, headers, covered)


def _covered(s: Session, cert_ids: list[int]) -> dict[int, dict[int, str]]:
    """Certificate id -> {product id: sku} of the products it covers (ids, not ORM objects: a
    certificate may cover thousands)."""
    covered: dict[int, dict[int, str]] = {cert_id: {} for cert_id in cert_ids}
    for where in key_filters(s, certificate_products.c.certificate_id, cert_ids):
        for cert_id, product_id, sku in s.execute(
                select(certificate_products.c.certificate_id, Product.id, Product.sku)
                .join(Product, Product.id == certificate_products.c.product_id).where(where)):
            covered[cert_id][product_id] = sku
    return covered


def _county_codes(s: Session) -> dict[str, str]:
    """County name -> administrative code, as already recorded on suppliers and products."""
    codes: dict[str, str] = {}
    for model in (Product, Supplier):
        for county, code in s.execute(select(model.origin_county, model.origin_county_code)
                                      .where(model.origin_county.is_not(None), model.origin_county_code.is_not(None))
                                      .distinct()):
            codes.setdefault(county, code)
    return codes


def _parse_row(s: Session, raw: dict, present: set, products: dict, known_suppliers: dict,
               county_codes: dict, today: dt.date) -> tuple[Optional[_Row], list[_RowProblem]]:
    """The row understood, and every problem found in it (each column checked on its own). The
    row is None when it has no sku (nothing more can be said about it)."""
    problems = _Problems()

    def text(column: str) -> Optional[str]:
        value = raw.get(column, "")
        max_len, label = TEXT_COLUMNS[column]
        if len(value) > max_len:
            raise _RowProblem(column, _l("%(label)s最多 %(n)s 个字符", label=label, n=max_len))
        if "\n" in value or "\r" in value:
            raise _RowProblem(column, _l("%(label)s不能换行", label=label))
        return value or None

    def fail(column: str, message: Any) -> None:
        problems.items.append(_RowProblem(column, message))

    sku = raw.get("sku", "")
    if not sku:
        fail("sku", _l("商品编码不能为空"))
    product = products.get(sku) if sku else None
    row = _Row(row_no=raw["_row"], sku=sku, product=product)
    values: dict[str, Any] = {}
    if product is None:
        values["sku"] = sku
    if "name" in present and raw["name"]:
        values["name"] = raw["name"]
    elif product is None:
        fail("name", _l("新商品需要名称"))
    price_column = "price_yuan" if "price_yuan" in present else "price_fen"
    if price_column in present and raw[price_column]:
        parse_price = _parse_yuan if price_column == "price_yuan" else _parse_fen
        price = problems.check(parse_price, raw[price_column], price_column)
        if price is not None:
            values["price_fen"] = price
    elif product is None:
        fail(price_column, _l("新商品需要售价（分）") if price_column == "price_fen" else _l("新商品需要售价"))
    if "unit" in present and raw["unit"]:
        unit = UNIT_WORDS.get(raw["unit"].lower())
        if unit is None:
            fail("unit", _l("单位只能是 piece（件）或 kg（千克）：%(text)s", text=raw["unit"][:20]))
        elif product is None or product.unit != unit:
            values["unit"] = unit
            values["sold_by_weight"] = unit == Unit.KG
    elif product is None:
        values["unit"], values["sold_by_weight"] = Unit.PIECE, False
    if "vat" in present and raw["vat"]:
        vat = VAT_WORDS.get(raw["vat"].lower())
        if vat is None:
            fail("vat", _l("税率只能是 9、13 或 exempt（免税）：%(text)s", text=raw["vat"][:20]))
        else:
            values["vat"] = vat
    elif product is None:
        values["vat"] = VatRate.AGRICULTURAL_9
    if "barcodes" in present:
        kinds = problems.check(_parse_barcode_kinds, raw["barcodes"], "barcodes")
        if kinds is not None:
            row.barcodes, row.kinds = [code for code, _kind in kinds], dict(kinds)
    if "category" in present:
        row.has_category, row.category = True, problems.check(text, "category")
    if "supplier" in present:
        row.has_supplier, row.supplier = True, problems.check(text, "supplier")
    if present & {"origin_county", "origin_township", "origin_village"}:
        row.origin = _origin(problems.check(text, "origin_county"),
                             problems.check(text, "origin_township"),
                             problems.check(text, "origin_village"))
        if "origin_county_code" in present and raw["origin_county_code"]:
            try:
                row.county_code = catalogue.fields.county_code(raw["origin_county_code"])
            except ValidationError as error:
                fail("origin_county_code", error)
        elif row.origin[0]:
            row.county_code = county_codes.get(row.origin[0])
    if "certificate_no" in present:
        row.has_cert = True
        row.cert_no = problems.check(text, "certificate_no")
        row.cert_from = problems.check(_parse_date, raw.get("certificate_valid_from", ""), "certificate_valid_from")
        row.cert_to = problems.check(_parse_date, raw.get("certificate_valid_to", ""), "certificate_valid_to")
        if not row.cert_no and (row.cert_from or row.cert_to) and "certificate_no" not in problems.columns():
            fail("certificate_no", _l("填写了证书日期，但没有证书编号"))
        if row.cert_from and row.cert_to and row.cert_to < row.cert_from:
            fail("certificate_valid_to", _l("失效日期不能早于生效日期"))
        row.issuer = problems.check(text, "certificate_issuer")
    if "supplier_credit_code" in present and raw["supplier_credit_code"]:
        try:
            row.credit_code = normalise_credit_code(raw["supplier_credit_code"])
        except ValidationError as error:
            fail("supplier_credit_code", error)
    # The product's own fields, checked by the catalogue's own rules, each problem once: a field
    # it refuses is left out and the rest checked again.
    pending = dict(values)
    for _attempt in range(len(values) + 1):
        try:
            row.values = product_rules.clean_product(s, pending, product, check_sku=False)  # skus looked up in bulk
            break
        except ValidationError as error:
            column = FIELD_COLUMNS.get(error.field or "", "")
            if column == "price_fen":
                column = price_column
            if column not in problems.columns():
                fail(column, error)
            if error.field not in pending:
                break       # a rule on the product as a whole: nothing left to drop
            pending.pop(error.field)
    row.name = row.values.get("name") or (product.name if product else "")
    return (row if sku else None), problems.items


def _plan_references(s, row: _Row, categories, known_suppliers, known_certs, new_categories, new_suppliers,
                     new_certs, cert_dates, cert_rows, link, unlink, credit_codes, today) -> list[_RowProblem]:
    """The categories, suppliers and certificates the row names; its problems with them (the
    supplier's and the certificate's, each checked on its own)."""
    if row.category and row.category not in categories:
        new_categories.setdefault(row.category, row.row_no)
    problems = _Problems()
    problems.check(_plan_supplier, s, row, known_suppliers, new_suppliers, credit_codes)
    problems.check(_plan_certificate, row, known_certs, new_certs, cert_dates, cert_rows, link, unlink, today)
    return problems.items


def _plan_supplier(s, row: _Row, known_suppliers, new_suppliers, credit_codes) -> None:
    if row.supplier:
        known = known_suppliers.get(row.supplier)
        if known is not None:
            if row.credit_code and known.credit_code and known.credit_code != row.credit_code:
                raise _RowProblem("supplier_credit_code", _l(
                    "供应商「%(name)s」登记的统一社会信用代码是 %(code)s，与表格不同", name=known.name,
                    code=known.credit_code))
        elif row.supplier not in new_suppliers:
            if row.credit_code:
                if row.credit_code in credit_codes:
                    raise _RowProblem("supplier_credit_code", _l(
                        "统一社会信用代码 %(code)s 已用于供应商「%(name)s」", code=row.credit_code,
                        name=credit_codes[row.credit_code]))
                try:
                    suppliers._clean_supplier(s, {"credit_code": row.credit_code}, None)
                except ValidationError as error:
                    raise _RowProblem("supplier_credit_code", error) from None
                credit_codes[row.credit_code] = row.supplier
            origin = row.origin or (None, None, None)
            new_suppliers[row.supplier] = dict(
                name=row.supplier, credit_code=row.credit_code, origin_county=origin[0],
                origin_county_code=row.county_code if origin[0] else None, origin_township=origin[1],
                origin_village=origin[2],
            )


def _plan_certificate(row: _Row, known_certs, new_certs, cert_dates, cert_rows, link, unlink, today) -> None:
    if not row.has_cert:
        return
    if row.cert_no:
        known = known_certs.get(row.cert_no)
        if known is None and (row.cert_from or row.cert_to) and not (row.cert_from and row.cert_to):
            raise _RowProblem("certificate_valid_from", _l(
                "新证书 %(number)s 需要生效日期和失效日期", number=row.cert_no))
        if row.cert_from or row.cert_to:
            # Rows that give a certificate's dates must agree; empty dates mean "as on record".
            wanted = (row.cert_from or known.valid_from, row.cert_to or known.valid_to)
            if wanted[1] < wanted[0]:
                raise _RowProblem("certificate_valid_to", _l("失效日期不能早于生效日期"))
            first = cert_rows.setdefault(row.cert_no, (row.row_no, wanted))
            if first[1] != wanted:
                raise _RowProblem("certificate_valid_from", _l(
                    "证书 %(number)s 的日期与第 %(row)s 行不同", number=row.cert_no, row=first[0]))
            if known is None:
                new_certs.setdefault(row.cert_no, dict(
                    number=row.cert_no, issuer=row.issuer or DEFAULT_ISSUER, valid_from=wanted[0],
                    valid_to=wanted[1], supplier=row.supplier))
            elif wanted != (known.valid_from, known.valid_to):
                cert_dates[row.cert_no] = wanted
        link.setdefault(row.cert_no, []).append(row.sku)
    elif row.product is not None:
        for cert in row.product.certificates:
            if cert.valid_to >= today:
                unlink.setdefault(cert.id, set()).add(row.sku)


def _show(value: Any) -> str:
    if type(value) is str:
        return value
    if value is None:
        return ""
    if isinstance(value, (Unit, VatRate)):
        return value.value
    if isinstance(value, (list, tuple)):
        return PIPE.join(str(v) for v in value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _plan_product(row: _Row, known_suppliers, new_suppliers, known_certs, new_certs, cert_dates, unlink,
                  today) -> None:
    """Fill row.changes: column -> (old, new) as display strings; empty for an unchanged product."""
    product = row.product
    changes: dict[str, tuple[str, str]] = {}

    def change(column: str, old: Any, new: Any) -> None:
        old, new = _show(old), _show(new)
        if old != new:
            changes[column] = (old, new)

    for key, value in row.values.items():
        column = FIELD_COLUMNS.get(key, key)
        if key in ("sku", "sold_by_weight", "vat_exemption_code"):
            continue
        change(column, getattr(product, key) if product is not None else None, value)
    if row.barcodes is not None:
        old = [b.code for b in product.barcodes] if product is not None else []
        if sorted(old) != sorted(row.barcodes):
            changes["barcodes"] = (_show(old), _show(row.barcodes))
    if row.has_category:
        change("category", product.category.name if product is not None and product.category else None, row.category)
    if row.has_supplier:
        change("supplier", product.supplier.name if product is not None and product.supplier else None, row.supplier)
    supplier_origin = _supplier_origin(row, product, known_suppliers, new_suppliers)
    if row.origin is not None:
        # Empty origin cells, or the supplier's origin, mean "the supplier's": not copied.
        own = None if (not any(row.origin) or row.origin == supplier_origin) else row.origin
        before = _effective_origin(product) if product is not None else (None, None, None)
        after = own or supplier_origin
        if after != before:
            row.set_origin, row.own_origin = True, own
            for i, column in enumerate(("origin_county", "origin_township", "origin_village")):
                change(column, before[i], after[i])
    if row.has_cert:
        if row.cert_no:
            linked = product is not None and any(c.number == row.cert_no for c in product.certificates)
            if not linked:
                changes["certificate_no"] = ("", row.cert_no)
            if row.cert_no in cert_dates:
                known = known_certs[row.cert_no]
                new_from, new_to = cert_dates[row.cert_no]
                change("certificate_valid_from", known.valid_from, new_from)
                change("certificate_valid_to", known.valid_to, new_to)
            elif row.cert_no in new_certs and product is None:
                changes["certificate_valid_from"] = ("", _show(new_certs[row.cert_no]["valid_from"]))
                changes["certificate_valid_to"] = ("", _show(new_certs[row.cert_no]["valid_to"]))
        elif product is not None:
            lost = [c.number for c in product.certificates if c.id in unlink and row.sku in unlink[c.id]]
            if lost:
                changes["certificate_no"] = ("、".join(sorted(lost)), "")
    row.changes = changes


def _effective_origin(product: KnownProduct) -> tuple:
    origin = product.origin()
    return _origin(origin["county"], origin["township"], origin["village"])


def _current_supplier_origin(product: KnownProduct) -> tuple:
    s = product.supplier
    return _origin(s.origin_county, s.origin_township, s.origin_village) if s else (None, None, None)


def _supplier_origin(row: _Row, product, known_suppliers, new_suppliers) -> tuple:
    """The origin of the supplier the product will have after the import."""
    if row.has_supplier:
        if not row.supplier:
            return (None, None, None)
        known = known_suppliers.get(row.supplier)
        if known is not None:
            return _origin(known.origin_county, known.origin_township, known.origin_village)
        new = new_suppliers.get(row.supplier, {})
        return _origin(new.get("origin_county"), new.get("origin_township"), new.get("origin_village"))
    return _current_supplier_origin(product) if product is not None else (None, None, None)
