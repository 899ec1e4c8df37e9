"""The HTTP shell: thin views over the service layer."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from bot.web import api, assets, fhir_api, health, patients, simulator, staff, webhook

    app.register_blueprint(health.bp)
    app.register_blueprint(webhook.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(fhir_api.bp)
    api.init_app(app)
    fhir_api.init_app(app)
    app.register_blueprint(simulator.bp)
    app.register_blueprint(staff.bp)
    staff.init_app(app)
    from bot.web import passwords  # one's own password, an admin's reset, must-change

    app.register_blueprint(passwords.bp)
    app.register_blueprint(patients.bp)
    app.register_blueprint(assets.bp)
    assets.init_app(app)
    from bot.web import settings_pages  # the practice's settings, protocols, staff

    app.register_blueprint(settings_pages.bp)
