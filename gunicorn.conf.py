"""Production gunicorn settings: ``gunicorn -c gunicorn.conf.py wsgi:app``.

Several workers share nothing in memory, so set ``RATELIMIT_STORAGE_URI=redis://...``
for login throttling to hold across them, and ``SECRET_KEY``.
"""

import os

from gunicorn.glogging import Logger

from volunteer_market.config import check_shared_limits

os.environ.setdefault("VM_ENV", "production")

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
check_shared_limits(workers, os.environ)  # no per-worker rate limits in production
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# A sync worker answering one request sends no heartbeat, so a request longer than this is
# killed (and answered 502 by the proxy). The longest request served is the district's
# annual report as XLSX: 100,000 rows take 8-25 s of openpyxl (docs/benchmarks.md,
# "Annual report and year close"); 120 s leaves that a margin on a loaded machine.
timeout = 120
graceful_timeout = 20
max_requests = 5000
max_requests_jitter = 500
accesslog = "-"
# No query strings in the access log: they may carry search text.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(D)sus'


class AccessLogger(Logger):
    """gunicorn's logger with control characters of the request escaped in access lines:
    the path is percent-decoded, so ``%0A`` would start a forged line."""

    def atoms(self, resp, req, environ, request_time):  # type: ignore[no-untyped-def]
        return {
            key: escape_controls(value) if isinstance(value, str) else value
            for key, value in super().atoms(resp, req, environ, request_time).items()
        }


def escape_controls(text: str) -> str:
    """Return ``text`` with C0/C1 controls and DEL written as ``\\xNN``."""
    return "".join(f"\\x{ord(c):02x}" if ord(c) < 32 or 127 <= ord(c) < 160 else c for c in text)


logger_class = AccessLogger
