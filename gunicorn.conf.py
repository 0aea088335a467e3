"""Production gunicorn settings: ``gunicorn -c gunicorn.conf.py wsgi:app``.

Several workers share nothing in memory, so set ``RATELIMIT_STORAGE_URI=redis://...``
for login throttling to hold across them, and ``SECRET_KEY``.
"""

import os

os.environ.setdefault("VM_ENV", "production")

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = 30
graceful_timeout = 20
max_requests = 5000
max_requests_jitter = 500
accesslog = "-"
# No query strings in the access log: they may carry search text.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(D)sus'
