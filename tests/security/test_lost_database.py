"""A lost database answers 503 with Retry-After and the app recovers (issue 20, item 5).

Before: terminating the app's PostgreSQL connections under load made 13 of 198 requests
500, and with connections refused every request was a 500. Now a busy or unreachable
database is 503 + ``Retry-After`` on both the API and the pages (``errors.
handle_operational_error``), and the pool tests each connection before lending it
(``pool_pre_ping``), so the requests after the loss get a fresh one.
"""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from volunteer_market import create_app
from volunteer_market.config import normalise_database_url
from volunteer_market.database import engine_options
from volunteer_market.extensions import db

from ..conftest import BASE_URL, ON_POSTGRES, TEST_CONFIG, csrf_token
from ..factories import bearer


def _assert_503(resp, *, problem: bool) -> None:
    assert resp.status_code == 503, (resp.status_code, resp.get_data(as_text=True)[:300])
    assert int(resp.headers["Retry-After"]) > 0
    if problem:
        assert resp.mimetype == "application/problem+json"
        assert resp.get_json()["status"] == 503
    else:
        assert resp.mimetype == "text/html"


def _unreachable_urls(tmp_path) -> list[str]:
    urls = [f"sqlite:///{tmp_path}/no-such-folder/vm.db"]
    # nothing listens on port 1: the connection is refused (psycopg is always installed)
    urls.append("postgresql://postgres@127.0.0.1:1/vm_unreachable?connect_timeout=2")
    return urls


@pytest.mark.parametrize("which", [0, 1], ids=["sqlite-unopenable", "postgres-refused"])
def test_an_unreachable_database_is_503(tmp_path, which):
    url = _unreachable_urls(tmp_path)[which]
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": normalise_database_url(url)})
    client = app.test_client()
    with app.app_context():
        resp = client.post("/api/v1/auth/token", json={"username": "a", "password": "b" * 8})
        _assert_503(resp, problem=True)
        resp = client.get("/api/v1/me", headers={"Authorization": "Bearer abc"})
        _assert_503(resp, problem=True)
        token = csrf_token(client, "/login")
        resp = client.post(
            "/login", data={"username": "a", "password": "b" * 8, "csrf_token": token}
        )
        _assert_503(resp, problem=False)
        db.engine.dispose()


def test_the_postgres_pool_pings_before_lending(app):
    assert engine_options("postgresql+psycopg://h/db", 1000)["pool_pre_ping"] is True
    if ON_POSTGRES:
        assert db.engine.pool._pre_ping is True  # noqa: SLF001  (no public accessor)


def _terminate_app_backends(engine_url: str) -> int:
    admin = sa.create_engine(engine_url, poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        killed = conn.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
        conn.commit()
    admin.dispose()
    return int(killed)


@pytest.mark.skipif(not ON_POSTGRES, reason="pg_terminate_backend is PostgreSQL's")
def test_terminated_backends_are_503_or_recovered_never_500(app, client, world):
    assert BASE_URL
    url = db.engine.url.render_as_string(hide_password=False)
    headers = [bearer(world.member_a) for _ in range(4)]
    db.session.commit()
    statuses: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def load(h: dict) -> None:
        while not stop.is_set():
            try:
                resp = client.get("/api/v1/me", headers=h)
            except BaseException as exc:  # noqa: BLE001  (an escaping exception is the 500)
                errors.append(exc)
                return
            statuses.append(resp.status_code)
            if resp.status_code == 503:
                assert resp.headers["Retry-After"]

    threads = [threading.Thread(target=load, args=(h,)) for h in headers]
    for t in threads:
        t.start()
    killed = 0
    try:
        for _ in range(8):
            time.sleep(0.3)
            killed += _terminate_app_backends(url)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    import traceback

    assert not errors, "".join(traceback.format_exception(errors[0]))[-9000:]
    assert killed > 0
    assert statuses and set(statuses) <= {200, 503}, sorted(set(statuses))
    # the app recovers by itself: every request after the loss succeeds
    _terminate_app_backends(url)
    after = [client.get("/api/v1/me", headers=headers[0]).status_code for _ in range(20)]
    assert after == [200] * 20
    print(f"{len(statuses)} requests, {statuses.count(503)} answered 503, {killed} backends killed")
