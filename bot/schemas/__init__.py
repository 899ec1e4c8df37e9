"""One pydantic model per API request and response shape.

Request models validate (their rules are in ``fields``, shared with the staff
forms), response models serialise, and together they write the OpenAPI
document (``bot/web/openapi.py``). Services take the validated requests; the
web layer turns the records services return into responses with ``X.of(row)``.
"""
