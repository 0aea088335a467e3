"""The bulk import's thread runner under real gunicorn (IMPORT_RUNNER=thread).

gunicorn is started with gunicorn.conf.py's own worker settings (workers, threads,
timeout, max_requests; only the bind address is given) on a migrated database with the
demo data: SQLite, or PostgreSQL when DATABASE_URL is set (a throw-away database). A
secretary uploads a 2,000-row XLSX file twice at once over HTTP (the two requests may land
in different workers, each starting its own runner thread), the test polls both jobs'
progress to done, then checks in the database that every person was created exactly once,
and that a third upload creates nobody.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from openpyxl import Workbook

from volunteer_market.config import normalise_database_url

from ..conftest import ON_POSTGRES, drop_postgres_database, postgres_url_for

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ROWS = 2000
PREFIX = "1366"  # no demo person's phone starts so
#: The port of this check when it is free (else any free port: parallel runs never collide).
PREFERRED_PORT = int(os.environ.get("VM_IMPORT_E2E_PORT", "5114"))


def _port() -> int:
    for candidate in (PREFERRED_PORT, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return s.getsockname()[1]
    raise AssertionError("no free port")


def _xlsx(rows: int) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["姓名", "手机号", "网格", "家庭标签"])
    for i in range(rows):
        sheet.append(
            [
                f"导入居民{i}",
                f"{PREFIX}{i:07d}",
                "第一网格" if i % 2 else "",
                "独居" if i % 5 == 0 else "",
            ]
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _request(base: str, method: str, path: str, *, body=None, token=None, files=None, fields=None):
    headers = {}
    data = None
    if files is not None:
        boundary = uuid.uuid4().hex
        parts = []
        for name, value in (fields or {}).items():
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            )
        for name, (filename, content, mime) in files.items():
            parts.append(
                (
                    f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                    f'filename="{filename}"\r\nContent-Type: {mime}\r\n\r\n'
                ).encode()
                + content
                + b"\r\n"
            )
        parts.append(f"--{boundary}--\r\n".encode())
        data = b"".join(parts)
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback only
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture
def gunicorn_server(tmp_path):
    if ON_POSTGRES:
        db_url = postgres_url_for("imp_" + uuid.uuid4().hex[:8])
    else:
        db_url = f"sqlite:///{tmp_path / 'imports.db'}"
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "SECRET_KEY": "e2e-secret",
        "IMPORT_RUNNER": "thread",
        "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379",
        "RATELIMIT_KEY_PREFIX": "e2e-imp-" + uuid.uuid4().hex,
        "PASSWORD_HASH_MEMORY_KIB": "19456",
        "PASSWORD_HASH_TIME_COST": "2",
    }
    env.pop("WEB_CONCURRENCY", None)  # gunicorn.conf.py's own worker count
    flask = [str(BIN / "flask"), "--app", "wsgi"]
    subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run([*flask, "demo", "load"], cwd=ROOT, env=env, check=True, capture_output=True)
    port = _port()
    proc = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "-c",
            "gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if _request(base, "GET", "/api/v1/openapi.json")[0] == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        proc.wait()
        pytest.fail("gunicorn did not start: " + proc.stderr.read().decode()[-2000:])
    try:
        yield base, db_url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log = proc.stderr.read().decode()
        proc.stderr.close()
        if ON_POSTGRES:
            drop_postgres_database(db_url)
        assert "Traceback" not in log, log[-3000:]


def _poll(base: str, token: str, job_id: int) -> dict:
    seen = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        status, job = _request(base, "GET", f"/api/v1/imports/{job_id}", token=token)
        assert status == 200, job
        seen.append(job["done"])
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.25)
    assert seen == sorted(seen), "progress only moves forward"
    return job


def test_thread_runner_under_gunicorn_imports_each_person_once(gunicorn_server):
    base, db_url = gunicorn_server
    status, body = _request(
        base,
        "POST",
        "/api/v1/auth/token",
        body={"username": "secretary_lh", "password": "demo12345"},
    )
    assert status == 201, body
    token = body["token"]
    status, me = _request(base, "GET", "/api/v1/me", token=token)
    community_id = next(r["area_id"] for r in me["roles"] if r["role"] == "secretary")
    data = _xlsx(ROWS)

    def upload() -> tuple[int, dict]:
        return _request(
            base,
            "POST",
            "/api/v1/imports",
            token=token,
            fields={"kind": "residents", "community_id": community_id, "dry_run": "false"},
            files={
                "file": (
                    "residents.xlsx",
                    data,
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                )
            },
        )

    answers: list[tuple[int, dict]] = []
    started = time.monotonic()
    threads = [threading.Thread(target=lambda: answers.append(upload())) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    answered_in = time.monotonic() - started
    assert [a[0] for a in answers] == [202, 202], answers
    assert all(a[1]["total"] == ROWS and a[1]["status"] in ("pending", "running") for a in answers)
    assert answered_in < 20, f"the uploads took {answered_in:.1f}s: the runner blocked them"

    jobs = [_poll(base, token, a[1]["id"]) for a in answers]
    assert [j["status"] for j in jobs] == ["done", "done"], jobs
    assert all(j["done"] == ROWS and j["refused"] == 0 for j in jobs)
    assert sum(j["created"] for j in jobs) == ROWS  # each person created by one job only
    assert all(j["created"] + j["updated"] + j["unchanged"] == ROWS for j in jobs)

    engine = sa.create_engine(normalise_database_url(db_url))
    try:
        with engine.connect() as conn:
            people, distinct = conn.execute(
                sa.text("SELECT count(*), count(DISTINCT phone) FROM users WHERE phone LIKE :p"),
                {"p": PREFIX + "%"},
            ).one()
    finally:
        engine.dispose()
    assert (people, distinct) == (ROWS, ROWS)

    status, again = upload()
    assert status == 202
    job = _poll(base, token, again["id"])
    assert job["status"] == "done" and job["created"] == 0 and job["unchanged"] == ROWS
