"""Forms of the manager's catalogue pages (Flask-WTF: CSRF on every form), messages in Chinese.

The fields here only check what a person typed (is it a number, a date, a file of the right
kind); the catalogue's rules (unique skus, check digits, credit codes …) live in the services and
come back as their own messages. ``inventory`` does not import ``pos``, so the little helpers that
pos.core.forms has are repeated here.
"""
from __future__ import annotations

import datetime as dt
import re

from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired, FileSize
from wtforms import BooleanField, HiddenField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from .money import AmountError, parse_yuan

try:  # WTForms 3.3 deprecates (value, label) tuples as choices; 3.4 drops them
    from wtforms.fields.choices import SelectChoice as _SelectChoice
except ImportError:  # pragma: no cover - WTForms < 3.3
    _SelectChoice = None

MB = 1024 * 1024
IMAGE_EXTENSIONS = ["jpg", "jpeg", "png", "gif", "webp"]
SCAN_EXTENSIONS = IMAGE_EXTENSIONS + ["pdf"]
SHEET_EXTENSIONS = ["csv", "xlsx"]


def choice(value: str, label):
    """One option of a SelectField, in the form the installed WTForms expects."""
    return _SelectChoice(value=value, label=label) if _SelectChoice else (value, label)


class Choice(SelectField):
    """A select whose refusals are in Chinese (WTForms' own messages are English)."""

    def __init__(self, label=None, validators=None, **kwargs):
        kwargs.setdefault("invalid_value_message", _l("请从列表中选择"))
        kwargs.setdefault("invalid_choice_message", _l("请从列表中选择"))
        super().__init__(label, validators, **kwargs)


class WholeNumber(IntegerField):
    """A whole number typed into a text box; text, decimals or an empty box give a Chinese message
    (an empty box is None, for optional fields)."""

    def __init__(self, label=None, validators=None, *, minimum: int | None = None, maximum: int | None = None, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.minimum, self.maximum = minimum, maximum

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        text = (valuelist[0] or "").strip()
        self.raw_data = [text]
        if not text:
            self.data = None
            return
        if not re.fullmatch(r"[+-]?\d{1,12}", text):
            self.data = None
            raise ValueError(_l("请输入整数：%(text)s", text=text[:40]))
        self.data = int(text)

    def post_validate(self, form, validation_stopped):
        if self.errors or self.data is None:
            return
        if self.minimum is not None and self.data < self.minimum:
            self.errors.append(_l("不能小于 %(n)s", n=self.minimum))
        elif self.maximum is not None and self.data > self.maximum:
            self.errors.append(_l("不能大于 %(n)s", n=self.maximum))


class YuanField(StringField):
    """A price as people type it, in yuan (12.8, ¥12.80); ``.fen`` is the integer fen."""

    fen: int | None = None

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        self.fen = None
        text = (self.data or "").strip()
        self.data = text
        if text:
            try:
                self.fen = parse_yuan(text)
            except AmountError as error:
                raise ValueError(str(error)) from None

    def _value(self):
        return self.data or ""


class DateText(StringField):
    """A YYYY-MM-DD date (the browser's date picker sends that); ``.date`` is a datetime.date."""

    date: dt.date | None = None

    def process_data(self, value):
        self.date = value if isinstance(value, dt.date) else None
        self.data = value.isoformat() if isinstance(value, dt.date) else (value or "")

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        text = (self.data or "").strip()
        self.data, self.date = text, None
        if text:
            try:
                self.date = dt.date.fromisoformat(text)
            except ValueError:
                raise ValueError(_l("日期格式应为 YYYY-MM-DD：%(text)s", text=text[:40])) from None


# Control characters (a NUL above all, which PostgreSQL refuses in text) never belong in what a
# person types; tabs and line breaks do, in the text areas.
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def strip_control(text: str) -> str:
    return CONTROL_CHARS.sub("", text or "")


class CatalogueForm(FlaskForm):
    """Every catalogue form: refuses control characters in any text field."""

    def validate(self, extra_validators=None):
        ok = super().validate(extra_validators)
        for f in self:
            raw = f.raw_data[0] if f.raw_data and isinstance(f.raw_data[0], str) else None
            if raw is not None and CONTROL_CHARS.search(raw):
                f.errors = list(f.errors) + [_l("不能包含控制字符（可能是扫描枪或复制粘贴带进来的）")]
                ok = False
        return ok


def _required(message):
    return DataRequired(message)


# --- products ----------------------------------------------------------------------------------

UNIT_CHOICES = lambda: [choice("piece", _l("件")), choice("kg", _l("千克"))]  # noqa: E731
def VAT_CHOICES():  # noqa: N802 (called when the form is rendered, in the request's language)
    return [choice("9", "9% · " + _("农产品")), choice("13", "13% · " + _("一般货物")), choice("exempt", _("免税"))]


class ProductForm(CatalogueForm):
    sku = StringField(_l("商品编码"), validators=[_required(_l("请输入商品编码")), Length(max=32, message=_l("商品编码最多 32 个字符"))])
    name = StringField(_l("名称"), validators=[_required(_l("请输入商品名称")), Length(max=120, message=_l("名称最多 120 个字符"))])
    category_id = Choice(_l("分类"), choices=[])
    new_category = StringField(_l("或新建分类"), validators=[Optional(), Length(max=60, message=_l("分类名最多 60 个字符"))])
    supplier_id = Choice(_l("供应商"), choices=[])
    unit = Choice(_l("单位"), choices=UNIT_CHOICES, default="piece")
    sold_by_weight = BooleanField(_l("称重销售（按千克计价，秤签条码）"))
    price = YuanField(_l("售价（元）"), validators=[_required(_l("请输入售价"))])
    cost = YuanField(_l("进价（元，可不填）"))
    vat = Choice(_l("增值税"), choices=VAT_CHOICES, default="9")
    vat_exemption_code = StringField(_l("免税代码"), validators=[Optional(), Length(max=20, message=_l("最多 20 个字符"))])
    tax_code = StringField(_l("税收分类编码"), validators=[Optional(), Length(max=19, message=_l("最多 19 位"))])
    shelf_life_days = WholeNumber(_l("保质期（天）"), minimum=1, maximum=36500)
    scale_plu = WholeNumber(_l("秤码 PLU"), minimum=0, maximum=99999999)
    origin_county = StringField(_l("产地县（不填则用供应商的）"), validators=[Optional(), Length(max=60)])
    origin_county_code = StringField(_l("县级行政区划代码"), validators=[Optional(), Length(max=6, message=_l("行政区划代码为 6 位数字"))])
    origin_township = StringField(_l("乡镇"), validators=[Optional(), Length(max=60)])
    origin_village = StringField(_l("村"), validators=[Optional(), Length(max=60)])
    barcodes = TextAreaField(_l("条码（每行一个，可不填）"))

    def __init__(self, *args, categories=(), suppliers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.category_id.choices = [choice("", _l("（无分类）"))] + [choice(str(c.id), c.name) for c in categories]
        self.supplier_id.choices = [choice("", _l("（无供应商）"))] + [choice(str(s.id), s.name) for s in suppliers]

    def validate_origin_county_code(self, field):
        if field.data and not re.fullmatch(r"\d{6}", field.data.strip()):
            raise ValidationError(_l("行政区划代码为 6 位数字"))

    def barcode_list(self) -> list[str]:
        return [code for code in re.split(r"[\s|,，]+", strip_control(self.barcodes.data)) if code]


class BarcodeForm(CatalogueForm):
    code = StringField(_l("新条码"), validators=[_required(_l("请输入条码")), Length(max=32, message=_l("条码最多 32 个字符"))])


class PhotoForm(CatalogueForm):
    photo = FileField(_l("商品照片"), validators=[
        FileRequired(_l("请选择一张照片")),
        FileAllowed(IMAGE_EXTENSIONS, _l("照片只能是 JPG、PNG、GIF 或 WebP 图片")),
        FileSize(5 * MB, message=_l("照片不能超过 5 MB")),
    ])


class EmptyForm(CatalogueForm):
    """Only the CSRF token, for buttons that change something."""


# --- scale-label rules -------------------------------------------------------------------------

class ScaleRuleForm(CatalogueForm):
    name = StringField(_l("规则名称"), validators=[_required(_l("请输入规则名称")), Length(max=60, message=_l("最多 60 个字符"))])
    pattern = StringField(_l("条码格式"), validators=[_required(_l("请输入条码格式")), Length(max=40, message=_l("最多 40 个字符"))])
    priority = WholeNumber(_l("优先级（大的先试）"), minimum=-1000, maximum=1000, default=0)


class TryCodeForm(CatalogueForm):
    class Meta:
        csrf = False  # a read-only GET form

    code = StringField(_l("扫描或输入条码"), validators=[_required(_l("请输入条码")), Length(max=40, message=_l("条码最多 40 个字符"))])


# --- suppliers and certificates ----------------------------------------------------------------

class SupplierForm(CatalogueForm):
    name = StringField(_l("名称"), validators=[_required(_l("请输入供应商名称")), Length(max=120, message=_l("名称最多 120 个字符"))])
    credit_code = StringField(_l("统一社会信用代码"), validators=[Optional(), Length(max=18, message=_l("统一社会信用代码为 18 位"))])
    province = StringField(_l("省份"), default="贵州省", validators=[Optional(), Length(max=40)])
    origin_county = StringField(_l("产地县"), validators=[Optional(), Length(max=60)])
    origin_county_code = StringField(_l("县级行政区划代码"), validators=[Optional(), Length(max=6, message=_l("行政区划代码为 6 位数字"))])
    origin_township = StringField(_l("乡镇"), validators=[Optional(), Length(max=60)])
    origin_village = StringField(_l("村"), validators=[Optional(), Length(max=60)])
    contact_name = StringField(_l("联系人"), validators=[Optional(), Length(max=60)])
    contact_phone = StringField(_l("联系电话"), validators=[Optional(), Length(max=30)])

    def validate_origin_county_code(self, field):
        if field.data and not re.fullmatch(r"\d{6}", field.data.strip()):
            raise ValidationError(_l("行政区划代码为 6 位数字"))


class CertificateForm(CatalogueForm):
    number = StringField(_l("证书编号"), validators=[_required(_l("请输入证书编号")), Length(max=60, message=_l("最多 60 个字符"))])
    issuer = StringField(_l("认定机构"), validators=[_required(_l("请输入认定机构")), Length(max=120, message=_l("最多 120 个字符"))])
    supplier_id = Choice(_l("供应商"), choices=[])
    valid_from = DateText(_l("生效日期"), validators=[_required(_l("请输入生效日期"))])
    valid_to = DateText(_l("失效日期"), validators=[_required(_l("请输入失效日期"))])
    skus = TextAreaField(_l("或输入商品编码（每行一个）"))
    note = TextAreaField(_l("备注"), validators=[Optional(), Length(max=1000, message=_l("备注最多 1000 个字符"))])

    def __init__(self, *args, suppliers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.supplier_id.choices = [choice("", _l("（不指定）"))] + [choice(str(s.id), s.name) for s in suppliers]

    def validate_valid_to(self, field):
        if self.valid_from.date and field.date and field.date < self.valid_from.date:
            raise ValidationError(_l("失效日期不能早于生效日期"))

    def sku_list(self) -> list[str]:
        return [sku for sku in re.split(r"[\s|,，]+", strip_control(self.skus.data)) if sku]


class ScanForm(CatalogueForm):
    scan = FileField(_l("证书扫描件"), validators=[
        FileRequired(_l("请选择扫描件")),
        FileAllowed(SCAN_EXTENSIONS, _l("扫描件只能是 PDF 或图片（JPG、PNG）")),
        FileSize(5 * MB, message=_l("扫描件不能超过 5 MB")),
    ])


# --- import ------------------------------------------------------------------------------------

class ImportForm(CatalogueForm):
    file = FileField(_l("商品表格（CSV 或 Excel .xlsx）"), validators=[
        FileRequired(_l("请选择要导入的文件")),
        FileAllowed(SHEET_EXTENSIONS, _l("文件不是 CSV 或 Excel 表格")),
        FileSize(5 * MB, message=_l("文件不能超过 5 MB")),
    ])


class ImportConfirmForm(CatalogueForm):
    token = HiddenField(validators=[_required(_l("导入文件已失效，请重新上传"))])
