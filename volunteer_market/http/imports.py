"""Running bulk-import jobs outside the request that uploaded them.

``IMPORT_RUNNER`` (config) says how a real run starts once its upload is committed:

* ``thread`` (default) -- a daemon thread of the same process writes the job chunk by
  chunk while the request has already answered 202. Under gunicorn the thread lives in
  the worker that took the upload; it is not bound by the request timeout. If the
  worker stops meanwhile (a restart, ``max_requests``), the job's heartbeat goes stale
  and ``flask import run-pending`` (cron, or once after a deploy) finishes it from the
  last committed chunk.
* ``inline`` -- the request writes the whole job before it answers (tests, tiny files).
* ``worker`` -- nothing starts: a ``flask import run-pending`` loop runs the jobs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from flask import Flask, current_app
from sqlalchemy.exc import IntegrityError, OperationalError

from ..database import atomic
from ..services import imports

log = logging.getLogger(__name__)
#: Retries of a chunk that met a concurrent insert of the same phone number (the retry
#: reads it and updates instead) or a lock timeout.
CHUNK_RETRIES = 3

Progress = Callable[[int, int], None]


def run_job(job_id: int, progress: Progress | None = None) -> bool:
    """Claim the job and write it to the end; False if another runner has it.

    ``progress(done, total)`` is called after every committed chunk. An unexpected error
    marks the job failed (logged with the job id only: rows are personal data).
    """
    with atomic():
        if not imports.claim(job_id):
            return False
    try:
        more, failures = True, 0
        while more:
            try:
                with atomic():
                    more = imports.write_chunk(job_id)
                    job = imports.get_job(None, job_id)
                    done, total = job.done, job.total
            except (IntegrityError, OperationalError):
                failures += 1
                if failures > CHUNK_RETRIES:
                    raise
                continue
            failures = 0
            if progress is not None:
                progress(done, total)
    except Exception:
        log.exception("import job %s failed", job_id)
        with atomic():
            imports.fail(job_id)
        return True
    return True


def _run_in(app: Flask, job_id: int) -> None:
    with app.app_context():
        run_job(job_id)


def launch(job_id: int) -> None:
    """Start the committed job as ``IMPORT_RUNNER`` says (see the module docstring)."""
    mode = current_app.config.get("IMPORT_RUNNER", "thread")
    if mode == "inline":
        run_job(job_id)
    elif mode == "thread":
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        threading.Thread(
            target=_run_in, args=(app, job_id), name=f"import-{job_id}", daemon=True
        ).start()


def run_pending(progress: Progress | None = None) -> list[int]:
    """Run every pending job and every running one that lost its runner; return their ids."""
    with atomic():
        ids = imports.claimable()
    return [job_id for job_id in ids if run_job(job_id, progress)]
