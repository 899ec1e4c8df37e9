"""Twilio's webhooks: inbound messages and delivery status callbacks.

Both require a valid ``X-Twilio-Signature`` computed by Twilio over
PUBLIC_BASE_URL + path (with its query string) and every posted parameter;
anything else is a 403 with nothing stored and nothing sent. A status
callback's URL names the text it is about (``?message_id=``, set when the
text was handed to Twilio), so the signature also vouches for that id.
"""

from __future__ import annotations

import re
from functools import wraps

import structlog
from flask import Blueprint, Response, abort, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from werkzeug.exceptions import HTTPException

from bot.services.inbound import InboundSms, handle_inbound
from bot.services.status import record_status
from bot.web import context

bp = Blueprint("sms", __name__, url_prefix="/sms")
# Twilio's SIDs are two letters and 32 hex digits; allow some slack, never more than we store.
SID = re.compile(r"[A-Za-z]{2}[A-Za-z0-9]{1,62}")
ERROR_CODE = re.compile(r"[0-9]{1,9}")
MESSAGE_ID = re.compile(r"[0-9a-f]{32}")  # our ids (bot.store.models.new_id)
log = structlog.get_logger(__name__)


@bp.errorhandler(HTTPException)
def _plain(exc: HTTPException) -> Response:
    """Errors to Twilio are short plain text: nobody reads an HTML page here."""
    return Response(f"{exc.code} {exc.name}\n", exc.code or 500, mimetype="text/plain")


def signed_by_twilio(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        signature = request.headers.get("X-Twilio-Signature", "")
        settings = context.runtime().settings
        url = settings.public_base_url.rstrip("/") + request.full_path.rstrip("?")
        validator = RequestValidator(settings.twilio_auth_token)
        if not signature or not validator.validate(url, request.form, signature):
            log.warning("webhook.bad_signature", path=request.path)
            # Twilio (or whoever this is) needs no HTML page: a short plain answer
            return Response("Forbidden: invalid Twilio signature\n", 403, mimetype="text/plain")
        return view(*args, **kwargs)

    return wrapper


@bp.post("/inbound")
@signed_by_twilio
def inbound() -> Response:
    form = request.form
    try:
        num_media = int(form.get("NumMedia", "0") or 0)
    except ValueError:
        num_media = 0
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    if not SID.fullmatch(sid) or not form.get("From") or not form.get("To"):
        abort(400)
    outcome = handle_inbound(
        context.runtime(),
        InboundSms(
            sid=sid,
            from_=form["From"],
            to=form["To"],
            body=form.get("Body", ""),
            num_media=num_media,
        ),
        context.now(),
    )
    response = MessagingResponse()
    for text in outcome.replies:
        response.message(text)
    return Response(str(response), mimetype="application/xml")


@bp.post("/status")
@signed_by_twilio
def status() -> Response:
    form = request.form
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    message_id = request.args.get("message_id")
    if not SID.fullmatch(sid) or (message_id is not None and not MESSAGE_ID.fullmatch(message_id)):
        abort(400)
    error = form.get("ErrorCode") or ""
    record_status(
        context.runtime(),
        sid=sid,
        status=form.get("MessageStatus") or form.get("SmsStatus") or "",
        error_code=int(error) if ERROR_CODE.fullmatch(error) else None,
        now=context.now(),
        message_id=message_id,
    )
    return Response(status=204)
