"""Forms (Flask-WTF: CSRF and validation), with messages in the hall's language."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional, Regexp

from pos.models import Role

try:  # WTForms 3.3 deprecates (value, label) tuples as choices; 3.4 drops them
    from wtforms.fields.choices import SelectChoice as _SelectChoice
except ImportError:  # pragma: no cover - WTForms < 3.3
    _SelectChoice = None


def choice(value: str, label):
    """One option of a SelectField, in the form the installed WTForms expects."""
    return _SelectChoice(value=value, label=label) if _SelectChoice else (value, label)


PIN_VALIDATOR = Regexp(r"^\d{4,6}$", message=_l("PIN 必须是 4 到 6 位数字"))


class LoginForm(FlaskForm):
    username = StringField(_l("用户名"), validators=[DataRequired(_l("请输入用户名")), Length(max=40)])
    password = PasswordField(_l("密码"), validators=[DataRequired(_l("请输入密码")), Length(max=200)])
    next = HiddenField()


class PinLoginForm(FlaskForm):
    username = StringField(_l("工号"), validators=[DataRequired(_l("请输入工号")), Length(max=40)])
    pin = PasswordField(_l("PIN"), validators=[DataRequired(_l("请输入 PIN")), PIN_VALIDATOR])
    next = HiddenField()


class PasswordChangeForm(FlaskForm):
    current = PasswordField(_l("当前密码"), validators=[DataRequired(_l("请输入当前密码"))])
    new = PasswordField(_l("新密码"), validators=[DataRequired(_l("请输入新密码")), Length(min=8, max=200, message=_l("密码至少需要 8 位"))])
    confirm = PasswordField(_l("确认新密码"), validators=[EqualTo("new", message=_l("两次输入的新密码不一致"))])


class PinForm(FlaskForm):
    pin = PasswordField(_l("新 PIN"), validators=[DataRequired(_l("请输入 PIN")), PIN_VALIDATOR])


class LanguageForm(FlaskForm):
    locale = SelectField(_l("界面语言"), choices=[
        choice("", _l("跟随浏览器")), choice("zh", "简体中文"), choice("en", "English"),
    ])


def role_choices():
    from pos.accounts.roles import ROLE_LABELS

    return [choice(r.value, ROLE_LABELS[r]) for r in Role]


class UserCreateForm(FlaskForm):
    username = StringField(_l("用户名"), validators=[DataRequired(_l("请输入用户名")), Length(min=2, max=40)])
    display_name = StringField(_l("姓名"), validators=[DataRequired(_l("请输入姓名")), Length(max=60)])
    # Most new users are cashiers; an admin must be chosen deliberately.
    role = SelectField(_l("角色"), choices=[], default=Role.CASHIER.value)
    password = PasswordField(_l("初始密码"), validators=[DataRequired(_l("请输入密码")), Length(min=8, max=200, message=_l("密码至少需要 8 位"))])
    pin = PasswordField(_l("PIN（可选，收银员/店长用）"), validators=[Optional(), PIN_VALIDATOR])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.role.choices = role_choices()


class UserRoleForm(FlaskForm):
    role = SelectField(_l("角色"), choices=[])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.role.choices = role_choices()


class PasswordResetForm(FlaskForm):
    password = PasswordField(_l("新密码"), validators=[DataRequired(_l("请输入密码")), Length(min=8, max=200, message=_l("密码至少需要 8 位"))])


class EmptyForm(FlaskForm):
    """A form with only the CSRF token, for buttons that change something."""
