"""Where each role lands after logging in, and the manager's dashboard: today's sales and takings
(the reports' daily summary), group orders to confirm or deliver and what buyers owe
(``pos.group.payments``), open stock alerts, and the database's refusal to write while it lasts."""
from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import func, select

from inventory.alerts import open_alert_counts, open_alerts
from inventory.localtime import local_today
from inventory.models import Alert, Location, Product
from kiosks.models import Kiosk
from pos.group import payments as group_payments
from pos.reports import monthly as report_monthly
from pos.core.db import get_session
from pos.core.web import STORAGE_MESSAGES, landing_url, requires

bp = Blueprint("shell", __name__)


@bp.route("/")
def index():
    if current_user.is_authenticated:
        return redirect(landing_url(current_user))
    return redirect(url_for("auth.login"))


@bp.route("/dashboard")
@requires("dashboard")
def dashboard():
    session = get_session()
    today = local_today()
    facts = {
        "products": session.scalar(select(func.count()).select_from(Product).where(Product.active.is_(True))),
        "kiosks": session.scalar(select(func.count()).select_from(Kiosk)),
        "locations": session.scalar(select(func.count()).select_from(Location)),
        "open_alerts": session.scalar(select(func.count()).select_from(Alert).where(Alert.resolved_at.is_(None))),
    }
    group = group_payments.dashboard_figures(session, today)
    daily = report_monthly.daily_summary(session, day=today)  # today so far, by channel: the reports' figures
    facts["sales_today"], facts["takings_today"] = daily["sales"], daily["total_fen"]
    alerts = open_alerts(session, limit=50)
    location_ids = {a.location_id for a in alerts if a.location_id}
    product_ids = {a.product_id for a in alerts if a.product_id}
    locations = {loc.id: loc for loc in session.scalars(select(Location).where(Location.id.in_(location_ids)))} \
        if location_ids else {}
    products = {p.id: p for p in session.scalars(select(Product).where(Product.id.in_(product_ids)))} \
        if product_ids else {}
    return render_template("pos/reports/dashboard.html", facts=facts, today=today, daily=daily, alerts=alerts, group=group,
                           alert_counts=open_alert_counts(session), alert_locations=locations,
                           alert_products=products, storage_problem=_storage_problem())


def _storage_problem():
    """The database's refusal to write (a full disk, read-only), while it lasts (pos.core.db)."""
    problem = current_app.extensions.get("songtao.storage_problem")
    if problem is None:
        return None
    return {"message": STORAGE_MESSAGES[problem["kind"]], "since": problem["since"]}
