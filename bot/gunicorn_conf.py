"""gunicorn's settings for prombot in production: ``gunicorn --config python:bot.gunicorn_conf``.

``prombot serve`` (werkzeug) stays the development server; the Dockerfile and
docker-compose.yml run gunicorn with this module, and so does
tests/e2e/test_production_layout.py. gunicorn reads the module-level names
below that are its own settings and ignores the rest. Anything here can be
overridden for one run with ``GUNICORN_CMD_ARGS`` (e.g.
``GUNICORN_CMD_ARGS="--bind 127.0.0.1:8000"``) or on the command line.

- **Workers**: ``WEB_CONCURRENCY`` (a prombot setting, checked like every
  other), else 2 x the CPU cores this process may use + 1, at most
  ``MAX_WORKERS`` (each worker holds its own database connection pool).
  Synchronous workers: one request at a time each, so ``timeout`` really
  bounds a request. Put a buffering reverse proxy or load balancer in front
  (and set ``PROMBOT_PROXY_HOPS``) so slow clients cannot hold workers.
- **Timeouts**: a worker stuck on one request for ``timeout`` seconds is
  killed and replaced; 10 s is under the 15 s Twilio waits for a webhook's
  answer, so a hung request frees its worker before Twilio gives up.
  ``graceful_timeout``: on SIGTERM, requests in flight get this long to
  finish (docker-compose.yml gives the web service a longer stop grace).
- **No preloading**: each worker builds the app (and its database engine)
  after the fork, so no connection is ever shared between processes.
- **Logs without personal data**: the access log names the path only
  (``%(U)s``), never the request line, query string, referrer or body, which
  could carry a phone number or a search for a name (``ACCESS_LOG_FORMAT``);
  gunicorn's own error messages have query strings cut out too
  (``PrivateLogger``).
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from gunicorn import glogging

from bot.settings import load_settings

MAX_WORKERS = 8
TWILIO_WEBHOOK_TIMEOUT = 15  # seconds Twilio waits for a webhook's answer
# remote address, "METHOD path", status, response bytes, duration in milliseconds
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
# gunicorn atoms that can carry personal data: %(r)s request line, %(q)s query
# string, %(f)s referrer (a page's address, with its query), %(i)s request headers
FORBIDDEN_ATOMS = ("%(r)s", "%(q)s", "%(f)s", "%({")


def usable_cpus() -> int:
    """The CPU cores this process may run on (its affinity where the OS says)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def worker_count(cpus: int, configured: int | None = None) -> int:
    """``configured`` (WEB_CONCURRENCY) if set, else 2 x cpus + 1, at most MAX_WORKERS."""
    if configured is not None:
        return configured
    return min(2 * max(1, cpus) + 1, MAX_WORKERS)


_QUERY = re.compile(r"\?[^\s'\"<>]*")


def without_query_strings(text: str) -> str:
    """``text`` with every ``?query`` after a path cut to ``?...``."""
    return _QUERY.sub("?...", text)


class _NoQueryStrings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = without_query_strings(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class PrivateLogger(glogging.Logger):
    """gunicorn's logger, whose error log never repeats a request's query string.

    gunicorn names the request's URI when a request fails outside the app
    (``Error handling request /sms/status?...``) or cannot be parsed.
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        if not any(isinstance(f, _NoQueryStrings) for f in self.error_log.filters):
            self.error_log.addFilter(_NoQueryStrings())


def post_worker_init(worker: Any) -> None:
    """One line once a worker has loaded the app and can take requests."""
    worker.log.info("Worker ready (pid: %s)", worker.pid)


_settings = load_settings()

wsgi_app = "bot.app:create_app()"
bind = ["0.0.0.0:5000"]
worker_class = "sync"
workers = worker_count(usable_cpus(), _settings.web_concurrency)
timeout = 10
graceful_timeout = 10
preload_app = False
# A worker is replaced after this many requests (with jitter, so not all at once).
max_requests = 1000
max_requests_jitter = 100
# The workers' heartbeat files on a memory file system where there is one (containers).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
accesslog = "-"
errorlog = "-"
loglevel = "info"
access_log_format = ACCESS_LOG_FORMAT
logger_class = PrivateLogger
