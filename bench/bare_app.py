"""The webhook benchmark's baseline: the least a Flask TwiML endpoint can do.

It reads Twilio's form and answers with twilio's ``MessagingResponse``, as the
framework's and the library's own examples do, with no database, signature
check or logging of its own. ``bench/webhook.py`` serves it with gunicorn
under bot/gunicorn_conf.py, the same settings as prombot.
"""

from __future__ import annotations

from flask import Flask, Response, request
from twilio.twiml.messaging_response import MessagingResponse


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/sms/inbound")
    def inbound() -> Response:
        reply = MessagingResponse()
        reply.message(f"Thank you. You said {len(request.form.get('Body', ''))} characters.")
        return Response(str(reply), mimetype="application/xml")

    return app
