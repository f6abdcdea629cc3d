"""The Songtao hall POS application. ``create_app`` is the composition root: the only place that
knows every blueprint."""
from __future__ import annotations

from flask import Flask

from pos.config import PROJECT_ROOT, from_environment, instance_path

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

    from pos import db, i18n, printers, web

    printers.policy_from_config(app.config)  # a bad printer setting stops start-up, not every print

    db.init_app(app)
    i18n.init_app(app)
    web.init_app(app)
    from pos import control_chars

    control_chars.init_app(app)  # no control characters in query strings, forms, path arguments

    from pos import admin, api, auth, shell, shifts_views, till

    app.register_blueprint(auth.bp)
    app.register_blueprint(shell.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(till.bp)
    from pos import print_api
    app.register_blueprint(print_api.bp)  # receipts to the till's printer, drawer, test print
    app.register_blueprint(shifts_views.bp)
    from pos import reports_views
    app.register_blueprint(reports_views.bp)  # every view behind requires("reports")

    from pos import reports_api
    app.register_blueprint(reports_api.bp)  # JSON reports under /api/v1/reports, requires("reports")

    from pos import invoice_views, label_views, public

    app.register_blueprint(public.bp)  # the receipt QR code's page: no login, an HMAC-signed link instead
    app.register_blueprint(invoice_views.bp)  # the finance queue, requires("dashboard")
    from pos import group_views

    app.register_blueprint(group_views.bp)  # group purchases (团购), requires("dashboard")
    app.register_blueprint(label_views.bp)  # shelf labels, requires("inventory")

    from inventory import catalogue_views, stock_views
    from pos.web import protect_blueprint

    protect_blueprint(app, catalogue_views.bp, "inventory")
    protect_blueprint(app, stock_views.bp, "inventory")

    from kiosks import fleet_views

    app.register_blueprint(fleet_views.bp)  # every view behind requires("fleet")

    from kiosks import api as kiosk_api

    app.register_blueprint(kiosk_api.bp)  # bearer tokens, not users: see kiosks.api.machine_api
    from kiosks.registry import is_serving_counter_token
    from pos.db import get_session
    from pos.openapi import accept_document_token

    # counter integrators read /api/v1/openapi.json with a counter's token
    accept_document_token(app, lambda token: is_serving_counter_token(get_session(), token))

    from kiosks import refill_views

    app.register_blueprint(refill_views.bp)  # every view behind requires("counters")

    db.retry_views(app)  # last: wraps every view registered above
    return app

