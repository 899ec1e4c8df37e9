"""The staff pages' front-end files, served from the npm packages under ``/assets/``.

``make assets`` installs ``nhsuk-frontend`` and ``htmx.org`` with ``npm ci`` from
the committed ``package-lock.json`` into ``PROMBOT_ASSETS_DIR`` (``node_modules/``
beside the code; the Docker image copies it to the same place). Nothing from
those packages is copied into the repository, and only their built files are
reachable here: each URL folder below maps to one package ``dist`` folder and a
few file types, never to a subfolder, the sources or another package. The
NHS.UK stylesheet refers to its icons as ``/assets/images/...``, hence that
folder's name.

The stylesheet is served without its ``@font-face`` rules: they fetch the NHS.UK
typeface (Frutiger) from assets.nhs.uk, which the content security policy does
not allow (self only), and Chrome fetches them even when nothing uses them. The
design system's own fallback, Arial, is used instead.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import structlog
from flask import Blueprint, Flask, abort, make_response, send_from_directory
from werkzeug.wrappers import Response

from bot.web import context

log = structlog.get_logger(__name__)
bp = Blueprint("assets", __name__, url_prefix="/assets")

# URL folder -> (folder inside the assets directory, the file types served from it)
ALLOWED: dict[str, tuple[str, frozenset[str]]] = {
    "nhsuk": ("nhsuk-frontend/dist/nhsuk", frozenset({".css", ".js", ".map"})),
    "images": (
        "nhsuk-frontend/dist/nhsuk/assets/images",
        frozenset({".svg", ".png", ".ico"}),
    ),
    "htmx": ("htmx.org/dist", frozenset({".js"})),
}
# What the staff pages link to, by name: a missing one is logged at start-up.
USED = (
    "nhsuk/nhsuk-frontend.min.css",
    "nhsuk/nhsuk-frontend.min.js",
    "images/favicon.ico",
    "htmx/htmx.min.js",
)
MAX_AGE = 24 * 60 * 60
REMOTE_FONT_FACE = re.compile(r"@font-face\{[^{}]*https?://[^{}]*\}")


def init_app(app: Flask) -> None:
    """Say once, at start-up, if ``make assets`` has not been run: pages would be unstyled."""
    root = app.extensions["prombot.runtime"].settings.assets_dir
    missing = [name for name in USED if resolve(root, name) is None]
    if missing:
        log.warning("assets.missing", assets_dir=str(root), missing=missing, fix="make assets")


def resolve(root: Path, name: str) -> Path | None:
    """The file a URL under /assets/ names, if the allowlist lets it be served."""
    folder, _, filename = name.partition("/")
    allowed = ALLOWED.get(folder)
    if allowed is None or not filename or "/" in filename or "\\" in filename:
        return None
    if filename.startswith(".") or Path(filename).suffix not in allowed[1]:
        return None
    path = root / allowed[0] / filename
    return path if path.is_file() else None


@bp.get("/<folder>/<filename>")
def asset(folder: str, filename: str) -> Response:
    root = context.runtime().settings.assets_dir
    path = resolve(root, f"{folder}/{filename}")
    if path is None:
        abort(404)
    if path.suffix == ".css":
        response = make_response(_local_fonts_only(path, path.stat().st_mtime_ns))
        response.mimetype = "text/css"
        response.cache_control.max_age = MAX_AGE
        response.cache_control.public = True
    else:
        response = send_from_directory(path.parent, path.name, max_age=MAX_AGE)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@lru_cache(maxsize=8)
def _local_fonts_only(path: Path, _mtime_ns: int) -> str:
    """The stylesheet without the font faces it would fetch from another site."""
    return REMOTE_FONT_FACE.sub("", path.read_text(encoding="utf-8"))
