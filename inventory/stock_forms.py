"""Forms of the manager's stock pages (Flask-WTF: CSRF on every post).

Every field is text as a person typed it; the forms turn it into the plain values the services
take (integer fen, integer qty_milli, dates, ids) and put a Chinese message on the field that is
wrong. WTForms' own coercion and choice checks are not used: their messages are English and a
typed "abc" must never become a 500.
"""
from __future__ import annotations

import re
from typing import Iterable, Optional

from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import Session
from wtforms import FieldList, Form, FormField, HiddenField, SelectField
from wtforms import StringField as _StringField

from .catalogue import resolve_scan, search_products
from .errors import InventoryError
from .localtime import parse_local_date
from .models import Location, LocationKind, Product, Supplier
from .money import AmountError, format_qty, parse_qty_milli, parse_yuan
from .expiry import MAX_EXPIRY_DAYS, WRITE_OFF_REASONS

try:  # WTForms 3.3 deprecates (value, label) tuples as choices; 3.4 drops them
    from wtforms.fields.choices import SelectChoice as _SelectChoice
except ImportError:  # pragma: no cover - WTForms < 3.3
    _SelectChoice = None

# Where goods may be received, and between which locations the manager transfers.
RECEIVING_KINDS = (LocationKind.BASE, LocationKind.HALL_STORE)
TRANSFER_KINDS = (LocationKind.BASE, LocationKind.HALL_STORE, LocationKind.HALL_FLOOR)
WRITE_OFF_LABELS = {"expiry": _l("过期"), "damage": _l("损坏"), "other": _l("其他")}


def choice(value: str, label):
    """One option of a SelectField, in the form the installed WTForms expects."""
    return _SelectChoice(value=value, label=label) if _SelectChoice else (value, label)


# --- values as typed -----------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean_text(value) -> str:
    """Text as typed, without control characters: a NUL byte cannot even be sent to PostgreSQL,
    and a line break has no place in a one-line field."""
    if value is None:
        return ""
    return _CONTROL.sub(lambda m: " " if m.group(0) in "\t\r\n" else "", str(value))


def StringField(label=None, validators=None, **kwargs):
    """A one-line text field whose value never holds control characters."""
    return _StringField(label, validators, filters=[clean_text], **kwargs)


_ZERO = re.compile(r"0*(\.0*)?")


def parse_qty(text: str, product: Product, *, allow_zero: bool = False) -> int:
    """A quantity of ``product`` as typed (pieces, or kg for weighed goods) → qty_milli."""
    text = (text or "").strip()
    if not text:
        raise AmountError(_("请输入数量"))
    if allow_zero and _ZERO.fullmatch(text) and text != ".":
        return 0
    if allow_zero and text.startswith("-"):
        raise AmountError(_("数量不能为负数"))
    return parse_qty_milli(text, by_weight=product.weighed)


def parse_int_id(text) -> Optional[int]:
    try:
        value = int(str(text).strip())
    except (TypeError, ValueError):
        return None
    return value if 0 < value < 2**31 else None


def parse_days(text: Optional[str], default: int = 30) -> int:
    """?days=N of the expiry page: a whole number of days, 0 to ten years."""
    if text is None or not str(text).strip():
        return default
    text = str(text).strip()
    if not re.fullmatch(r"[0-9]+", text):
        raise InventoryError(_("天数必须是 0 到 %(max)s 之间的整数：%(text)s", max=MAX_EXPIRY_DAYS, text=text[:20]))
    days = int(text[:6])
    if days > MAX_EXPIRY_DAYS or len(text) > 6:
        raise InventoryError(_("天数必须是 0 到 %(max)s 之间的整数：%(text)s", max=MAX_EXPIRY_DAYS, text=text[:20]))
    return days


def product_hint(product: Product) -> str:
    """What the hint under a line's product field says: name · sku · unit."""
    return f"{product.name} · {product.sku} · {'kg' if product.weighed else _('件')}"


def find_product(session: Session, text: str) -> Product:
    """The product a person means by what they typed or scanned: a barcode, a scale label or a
    sku (the till's own resolver), else a name: exact, or the single product that the catalogue
    search (name, pinyin initials) finds."""
    text = clean_text(text).strip()
    if not text:
        raise InventoryError(_("请输入商品编码、条码或名称"))
    if len(text) > 120:
        raise InventoryError(_("找不到商品：%(text)s", text=text[:40] + "…"))
    try:
        scanned = resolve_scan(session, text)
    except InventoryError:
        scanned = None
    if scanned is not None:
        product = session.get(Product, scanned.product_id)
        if product is not None:
            return product
    exact = session.scalars(select(Product).where(Product.name == text).order_by(Product.id).limit(2)).all()
    if len(exact) == 1:
        return exact[0]
    found = search_products(session, text, per_page=6)
    if found.total == 1:
        return found.items[0]
    if not found.total:
        raise InventoryError(_("找不到商品：%(text)s", text=text))
    names = "、".join(f"{p.name}（{p.sku}）" for p in found.items[:5])
    raise InventoryError(_("「%(text)s」对应多个商品，请输入商品编码：%(names)s", text=text, names=names))


def location_choices(session: Session, kinds: Iterable[LocationKind], *, blank: Optional[str] = None):
    locations = session.scalars(
        select(Location).where(Location.kind.in_(tuple(kinds)), Location.active.is_(True)).order_by(Location.id)
    ).all()
    out = [choice("", blank)] if blank is not None else []
    return out + [choice(str(loc.id), loc.name) for loc in locations]


def _allowed_ids(field: SelectField) -> set[str]:
    out = set()
    for c in field.choices:
        value = c.value if _SelectChoice and isinstance(c, _SelectChoice) else c[0]
        if value:
            out.add(str(value))
    return out


def check_choice(field: SelectField, message) -> Optional[int]:
    """The id chosen in a select of ids, or None with ``message`` on the field."""
    value = (field.data or "").strip() if isinstance(field.data, str) else field.data
    if not value or str(value) not in _allowed_ids(field):
        field.errors = list(field.errors or []) + [str(message)]
        return None
    return int(value)


def _add_error(field, message) -> None:
    if not isinstance(field.errors, list):
        field.errors = list(field.errors or [])
    field.errors.append(str(message))


class _LinesMixin:
    """Shared by the forms with product lines: blank rows are skipped; every other row must name a
    product and a quantity."""

    def _line_rows(self):
        for entry in self.lines.entries:
            row = entry.form
            values = [getattr(row, name).data for name in row._fields]
            if any((v or "").strip() for v in values if isinstance(v, str)):
                yield row

    def _product_and_qty(self, session: Session, row) -> tuple[Optional[Product], Optional[int]]:
        product = qty = None
        try:
            product = find_product(session, row.product.data)
        except InventoryError as exc:
            _add_error(row.product, exc)
        if product is None:
            typed = (row.qty.data or "").strip()
            if typed:  # say what is wrong with the quantity too, whatever the product turns out to be
                try:
                    parse_qty_milli(typed, by_weight=True)
                except AmountError as exc:
                    _add_error(row.qty, exc)
        if product is not None:
            row.hint_text = product_hint(product)
            try:
                qty = parse_qty(row.qty.data, product)
            except AmountError as exc:
                _add_error(row.qty, exc)
        return product, qty


# --- receiving -----------------------------------------------------------------------------


class ReceiptLineForm(Form):
    product = StringField(_l("商品"))
    qty = StringField(_l("数量"))
    cost = StringField(_l("进价（元/单位）"))
    lot_no = StringField(_l("批号"))
    produced_on = StringField(_l("生产日期"))
    expires_on = StringField(_l("到期日期"))


class ReceiptForm(_LinesMixin, FlaskForm):
    supplier_id = SelectField(_l("供应商"), choices=[], validate_choice=False)
    location_id = SelectField(_l("收货位置"), choices=[], validate_choice=False)
    supplier_ref = StringField(_l("供应商送货单号"))
    note = StringField(_l("备注"))
    lines = FieldList(FormField(ReceiptLineForm), min_entries=6, max_entries=200)

    def __init__(self, session: Session, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.session = session
        suppliers = session.scalars(select(Supplier).where(Supplier.active.is_(True)).order_by(Supplier.name)).all()
        self.supplier_id.choices = [choice("", _("请选择供应商"))] + [choice(str(s.id), s.name) for s in suppliers]
        self.location_id.choices = location_choices(session, RECEIVING_KINDS)
        self.values: dict = {}
        self.extra_errors: list[str] = []
        self.line_rows: list = []

    def parse(self) -> bool:
        """Fill ``self.values`` with what :func:`inventory.receiving.receive` takes; False (and
        messages on the fields) when anything is wrong."""
        if not self.validate():
            return False
        ok = True
        supplier_id = check_choice(self.supplier_id, _("请选择供应商"))
        location_id = check_choice(self.location_id, _("请选择收货位置（物流基地或馆内仓库）"))
        ok = supplier_id is not None and location_id is not None
        supplier_ref = (self.supplier_ref.data or "").strip()
        if len(supplier_ref) > 60:
            _add_error(self.supplier_ref, _("送货单号最多 60 个字"))
            ok = False
        lines = []
        for row in self._line_rows():
            product, qty = self._product_and_qty(self.session, row)
            line_ok = product is not None and qty is not None
            cost_fen = None
            if not (row.cost.data or "").strip():
                _add_error(row.cost, _("请输入进价"))
                line_ok = False
            else:
                try:
                    cost_fen = parse_yuan(row.cost.data)
                except AmountError as exc:
                    _add_error(row.cost, exc)
                    line_ok = False
            lot_no = (row.lot_no.data or "").strip() or None
            if lot_no and len(lot_no) > 40:
                _add_error(row.lot_no, _("批号最多 40 个字"))
                line_ok = False
            dates = {}
            for name in ("produced_on", "expires_on"):
                text = (getattr(row, name).data or "").strip()
                dates[name] = None
                if text:
                    try:
                        dates[name] = parse_local_date(text)
                    except ValueError:
                        _add_error(getattr(row, name), _("日期格式应为 YYYY-MM-DD：%(text)s", text=text[:20]))
                        line_ok = False
            if dates["produced_on"] and dates["expires_on"] and dates["expires_on"] < dates["produced_on"]:
                _add_error(row.expires_on, _("到期日期不能早于生产日期"))
                line_ok = False
            if line_ok:
                self.line_rows.append(row)
                lines.append({"product_id": product.id, "qty_milli": qty, "cost_fen": cost_fen, "lot_no": lot_no,
                              "produced_on": dates["produced_on"], "expires_on": dates["expires_on"]})
            ok = ok and line_ok
        if ok and not lines:
            self.extra_errors.append(_("请至少填写一行商品"))
            ok = False
        if ok:
            self.values = {"supplier_id": supplier_id, "location_id": location_id, "lines": lines,
                           "supplier_ref": supplier_ref or None, "note": (self.note.data or "").strip() or None}
        return ok

    def fill_from(self, receipt) -> None:
        """Show a draft receipt's lines for editing."""
        self.supplier_id.data = str(receipt.supplier_id)
        self.location_id.data = str(receipt.location_id)
        self.supplier_ref.data = receipt.supplier_ref or ""
        self.note.data = receipt.note or ""
        while len(self.lines.entries):
            self.lines.pop_entry()
        for line in receipt.lines:
            self.lines.append_entry()
            row = self.lines.entries[-1].form
            row.product.data = line.product.sku
            row.hint_text = product_hint(line.product)
            row.qty.data = _qty_text(line.qty_milli, line.product)
            row.cost.data = f"{line.cost_fen // 100}.{line.cost_fen % 100:02d}"
            row.lot_no.data = line.lot_no or ""
            row.produced_on.data = line.produced_on.isoformat() if line.produced_on else ""
            row.expires_on.data = line.expires_on.isoformat() if line.expires_on else ""
        for _i in range(max(2, 6 - len(receipt.lines))):
            self.lines.append_entry()


def _qty_text(qty_milli: int, product: Product) -> str:
    return format_qty(qty_milli, by_weight=product.weighed)


class ReverseForm(FlaskForm):
    note = StringField(_l("冲销原因"))

    def parse(self) -> Optional[str]:
        if not self.validate():
            return None
        note = (self.note.data or "").strip()
        if not note:
            _add_error(self.note, _("请填写冲销原因"))
            return None
        if len(note) > 200:
            _add_error(self.note, _("原因最多 200 个字"))
            return None
        return note


# --- transfers -----------------------------------------------------------------------------


class TransferLineForm(Form):
    product = StringField(_l("商品"))
    qty = StringField(_l("数量"))


class TransferForm(_LinesMixin, FlaskForm):
    from_location_id = SelectField(_l("调出位置"), choices=[], validate_choice=False)
    to_location_id = SelectField(_l("调入位置"), choices=[], validate_choice=False)
    note = StringField(_l("备注"))
    lines = FieldList(FormField(TransferLineForm), min_entries=6, max_entries=200)

    def __init__(self, session: Session, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.session = session
        self.from_location_id.choices = location_choices(session, TRANSFER_KINDS, blank=_("请选择"))
        self.to_location_id.choices = location_choices(session, TRANSFER_KINDS, blank=_("请选择"))
        self.values: dict = {}
        self.extra_errors: list[str] = []
        self.line_rows: list = []

    def parse(self) -> bool:
        if not self.validate():
            return False
        source = check_choice(self.from_location_id, _("请选择调出位置"))
        target = check_choice(self.to_location_id, _("请选择调入位置"))
        ok = source is not None and target is not None
        if ok and source == target:
            _add_error(self.to_location_id, _("调出和调入位置不能相同"))
            ok = False
        lines = []
        for row in self._line_rows():
            product, qty = self._product_and_qty(self.session, row)
            if product is not None and qty is not None:
                self.line_rows.append(row)
                lines.append({"product_id": product.id, "qty_milli": qty})
            else:
                ok = False
        if ok and not lines:
            self.extra_errors.append(_("请至少填写一行商品"))
            ok = False
        if ok:
            self.values = {"from_location_id": source, "to_location_id": target, "lines": lines,
                           "note": (self.note.data or "").strip() or None}
        return ok


# --- counts --------------------------------------------------------------------------------


class CountStartForm(FlaskForm):
    location_id = SelectField(_l("盘点位置"), choices=[], validate_choice=False)
    scope = StringField(_l("盘点范围（如：货架 A、茶叶区）"))

    def __init__(self, session: Session, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.location_id.choices = location_choices(session, TRANSFER_KINDS, blank=_("请选择"))
        self.values: dict = {}

    def parse(self) -> bool:
        if not self.validate():
            return False
        location_id = check_choice(self.location_id, _("请选择盘点位置"))
        scope = (self.scope.data or "").strip()
        ok = location_id is not None
        if len(scope) > 120:
            _add_error(self.scope, _("范围最多 120 个字"))
            ok = False
        if ok:
            self.values = {"location_id": location_id, "scope": scope or None}
        return ok


class CountLineForm(FlaskForm):
    product = StringField(_l("扫码或输入商品"))
    counted = StringField(_l("实盘数量"))

    def parse(self, session: Session) -> Optional[tuple[Product, int]]:
        if not self.validate():
            return None
        try:
            product = find_product(session, self.product.data)
        except InventoryError as exc:
            _add_error(self.product, exc)
            return None
        try:
            counted = parse_qty(self.counted.data, product, allow_zero=True)
        except AmountError as exc:
            _add_error(self.counted, exc)
            return None
        return product, counted


class CountPostForm(FlaskForm):
    reason = StringField(_l("调整原因"))

    def parse(self) -> Optional[str]:
        if not self.validate():
            return None
        reason = (self.reason.data or "").strip()
        if not reason:
            _add_error(self.reason, _("请填写调整原因"))
            return None
        if len(reason) > 200:
            _add_error(self.reason, _("原因最多 200 个字"))
            return None
        return reason


# --- expiry and write-off ------------------------------------------------------------------


class WriteOffForm(FlaskForm):
    location_id = HiddenField(filters=[clean_text])
    product = StringField(_l("商品"))
    lot_id = HiddenField(filters=[clean_text])
    qty = StringField(_l("数量"))
    reason = SelectField(_l("原因"), choices=[], validate_choice=False, default="damage")
    note = StringField(_l("说明"))

    def __init__(self, session: Session, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.session = session
        self.reason.choices = [choice(r, WRITE_OFF_LABELS[r]) for r in WRITE_OFF_REASONS]
        self.values: dict = {}

    def parse(self) -> bool:
        if not self.validate():
            return False
        ok = True
        location_id = parse_int_id(self.location_id.data)
        location = self.session.get(Location, location_id) if location_id else None
        if location is None or location.kind.is_virtual:
            _add_error(self.location_id, _("请选择报损的位置"))
            ok = False
        try:
            product = find_product(self.session, self.product.data)
        except InventoryError as exc:
            _add_error(self.product, exc)
            product = None
            ok = False
        lot_id = None
        if (self.lot_id.data or "").strip():
            lot_id = parse_int_id(self.lot_id.data)
            if lot_id is None:
                _add_error(self.lot_id, _("批次不存在"))
                ok = False
        qty = None
        if product is not None:
            try:
                qty = parse_qty(self.qty.data, product)
            except AmountError as exc:
                _add_error(self.qty, exc)
                ok = False
        reason = (self.reason.data or "").strip()
        if reason not in WRITE_OFF_REASONS:
            _add_error(self.reason, _("请选择报损原因"))
            ok = False
        note = (self.note.data or "").strip()
        if len(note) > 200:
            _add_error(self.note, _("说明最多 200 个字"))
            ok = False
        if ok:
            self.values = {"location_id": location_id, "product_id": product.id, "lot_id": lot_id,
                           "qty_milli": qty, "reason": reason, "note": note or None}
        return ok

    def all_errors(self) -> list[str]:
        return [e for f in self for e in (f.errors or []) if isinstance(e, str)]


# --- reorder points ------------------------------------------------------------------------


class ReorderPointForm(FlaskForm):
    location_id = SelectField(_l("位置"), choices=[], validate_choice=False)
    product = StringField(_l("商品"))
    min_qty = StringField(_l("最低库存（补货点）"))

    def __init__(self, session: Session, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.session = session
        kinds = TRANSFER_KINDS + (LocationKind.KIOSK,)
        self.location_id.choices = location_choices(session, kinds, blank=_("请选择"))
        self.values: dict = {}

    def parse(self) -> bool:
        if not self.validate():
            return False
        location_id = check_choice(self.location_id, _("请选择位置"))
        ok = location_id is not None
        try:
            product = find_product(self.session, self.product.data)
        except InventoryError as exc:
            _add_error(self.product, exc)
            return False
        try:
            min_qty = parse_qty(self.min_qty.data, product, allow_zero=True)
        except AmountError as exc:
            _add_error(self.min_qty, exc)
            return False
        if ok:
            self.values = {"location_id": location_id, "product_id": product.id, "min_qty_milli": min_qty}
        return ok


_LINE_FIELD = re.compile(r"lines-(\d+)-(\w+)")
_SERVICE_FIELDS = {"product_id": "product", "lot_id": "product", "qty_milli": "qty", "cost_fen": "cost",
                   "counted_qty_milli": "counted", "min_qty_milli": "min_qty"}


def attach_error(form, exc: Exception) -> None:
    """Show a service's refusal on the field it names (``ValidationError.field``), if the form
    has that field; the message is flashed at the top in any case."""
    name = getattr(exc, "field", None)
    if not name:
        return
    match = _LINE_FIELD.fullmatch(name)
    if match and hasattr(form, "line_rows"):
        index, sub = int(match.group(1)), _SERVICE_FIELDS.get(match.group(2), match.group(2))
        if index < len(form.line_rows) and hasattr(form.line_rows[index], sub):
            _add_error(getattr(form.line_rows[index], sub), str(exc))
        return
    name = _SERVICE_FIELDS.get(name, name)
    if name in getattr(form, "_fields", {}):
        _add_error(form[name], str(exc))


def form_errors(form) -> list[str]:
    """Every message on a form and its line rows, in order, for the flash at the top."""
    out: list[str] = []

    def walk(field, prefix=""):
        if hasattr(field, "entries"):
            for n, entry in enumerate(field.entries, start=1):
                walk(entry, _("第 %(n)s 行：", n=n))
        elif hasattr(field, "form") and hasattr(field.form, "_fields"):
            for sub in field.form:
                walk(sub, prefix)
        else:
            for e in field.errors or []:
                if isinstance(e, str):
                    out.append(e if e.startswith(prefix) else prefix + e)

    out.extend(getattr(form, "extra_errors", []))
    for field in form:
        walk(field)
    return out
