"""The Songtao hall POS application. ``create_app`` is the composition root: the only place that
knows every blueprint."""
from __future__ import annotations

from flask import Flask

import pos.schema  # noqa: F401  (every table, before anything touches the database)
from pos.core.config import PROJECT_ROOT, from_environment, instance_path

__all__ = ["create_app"]


def create_app(config: dict | None = None) -> Flask:
    app = Flask(
        "pos",
        instance_path=str(instance_path()),
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    # A test configuration that brings its own key never creates one in the instance folder.
    app.config.update(from_environment(load_secret=not (config and "SECRET_KEY" in config)))
    if config:
        app.config.update(config)

    from pos.core import control_chars, db, i18n, web
    from pos.hall import printers, setup

    printers.policy_from_config(app.config)  # a bad printer setting stops start-up, not every print
    app.config["PUBLIC_BASE_URL"] = setup.check_public_base_url(app.config.get("PUBLIC_BASE_URL"))
    db.init_app(app)
    i18n.init_app(app)
    web.init_app(app)
    control_chars.init_app(app)  # no control characters in query strings, forms, path arguments

    from pos.accounts import admin, auth
    from pos.group import views as group_views
    from pos.payments import views as reconcile_views
    from pos.hall import api, invoice_views, label_views, payment_settings, print_api, public, setup_views, shift_views, till
    from pos.reports import api as reports_api
    from pos.reports import dashboard
    from pos.reports import views as reports_views

    app.register_blueprint(auth.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(till.bp)
    app.register_blueprint(print_api.bp)  # receipts to the till's printer, drawer, test print
    app.register_blueprint(shift_views.bp)
    app.register_blueprint(reports_views.bp)  # every view behind requires("reports")
    app.register_blueprint(reports_api.bp)  # JSON reports under /api/v1/reports, requires("reports")
    app.register_blueprint(public.bp)  # the receipt QR code's page: no login, an HMAC-signed link instead
    app.register_blueprint(reconcile_views.bp)  # the daily bill check (对账), requires("reconcile")
    app.register_blueprint(invoice_views.bp)  # the finance queue, requires("dashboard")
    app.register_blueprint(group_views.bp)  # group purchases (团购), requires("dashboard")
    app.register_blueprint(label_views.bp)  # shelf labels, requires("inventory")
    app.register_blueprint(setup_views.bp)  # the first-run page and the site's places and tills, requires("admin")
    app.register_blueprint(payment_settings.bp)  # merchant credentials of the payment codes, requires("site")
    setup_views.first_run_notice(app)  # every admin page leads to the set-up page until the site has places

    from inventory import catalogue_views, stock_views
    from pos.core.web import protect_blueprint

    protect_blueprint(app, catalogue_views.bp, "inventory")
    protect_blueprint(app, stock_views.bp, "inventory")

    from kiosks import api as kiosk_api
    from kiosks import fleet_views, refill_views
    from kiosks.registry import is_serving_counter_token
    from pos.core.db import get_session
    from pos.core.openapi import accept_document_token

    app.register_blueprint(fleet_views.bp)  # every view behind requires("fleet")
    app.register_blueprint(kiosk_api.bp)  # bearer tokens, not users: see kiosks.api.machine_api
    app.register_blueprint(refill_views.bp)  # every view behind requires("counters")
    # counter integrators read /api/v1/openapi.json with a counter's token
    accept_document_token(app, lambda token: is_serving_counter_token(get_session(), token))

    db.retry_views(app)  # last: wraps every view registered above

    from pos.core import ticker
    from pos.reports.upkeep import tick

    if not app.config.get("TESTING") or (config and "TICK_SECONDS" in config):
        # alerts keep themselves true: every TICK_SECONDS (default 5 min) in each serving process
        ticker.start_when_serving(app, tick)
    return app
