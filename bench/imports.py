"""Bulk import benchmark: a 10,000-row residents file into one community (issue 18).

Builds a fresh database (``db.create_all``) with a district, street, community, 30 grids
and its secretary, writes a CSV of ``--rows`` residents (every other row names a grid,
a third carry household tags) and times, through the services and the runner the app
uses (``http.imports.run_job``: chunks of 500 rows, one transaction each):

* ``check``   the upload: read the file, check every row, store the job (a dry run);
* ``import``  the real run from upload to the last chunk committed;
* ``reimport`` the same file again (every row matched on its phone: nothing created).

Usage::

    python -m bench.imports --engine sqlite
    python -m bench.imports --engine postgresql --pg-url postgresql://postgres@127.0.0.1:5432/bench_import

The PostgreSQL database is dropped and recreated. The target (issue 18): the real run of
10,000 rows in under a minute on this machine. Results go to stdout (JSON) and
``bench/results/imports-<engine>.json``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from volunteer_market import create_app
from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.http.imports import run_job
from volunteer_market.models import AreaKind, ImportKind, Role, User
from volunteer_market.services import areas as area_service
from volunteer_market.services import imports
from volunteer_market.services import users as user_service

RESULTS = Path(__file__).resolve().parent / "results"
GRIDS = 30


def people_csv(rows: int) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["姓名", "手机号", "网格", "住址", "家庭标签"])
    for i in range(rows):
        writer.writerow(
            [
                f"居民{i}",
                f"135{i:08d}",
                f"第{i % GRIDS + 1}网格" if i % 2 else "",
                f"{i % 40 + 1} 栋 {i % 6 + 1}0{i % 4 + 1}",
                "空巢,独居" if i % 3 == 0 else "",
            ]
        )
    return buffer.getvalue().encode("utf-8")


def _pg_reset(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    admin = base.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def run(engine: str, rows: int, pg_url: str) -> dict[str, Any]:
    if engine == "sqlite":
        folder = tempfile.mkdtemp(prefix="bench-import-")
        url = f"sqlite:///{folder}/import.db"
    else:
        url = pg_url.replace("postgresql://", "postgresql+psycopg://")
        _pg_reset(url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": False})
    data = people_csv(rows)
    out: dict[str, Any] = {"engine": engine, "rows": rows, "file_bytes": len(data)}
    with app.app_context():
        db.create_all()
        with atomic():
            district = area_service.create_area(
                None, name="区", kind=AreaKind.DISTRICT, parent_id=None
            )
            street = area_service.create_area(
                None, name="街道", kind=AreaKind.STREET, parent_id=district.id
            )
            community = area_service.create_area(
                None, name="七里一村社区", kind=AreaKind.COMMUNITY, parent_id=street.id
            )
            for g in range(GRIDS):
                area_service.create_area(
                    None, name=f"第{g + 1}网格", kind=AreaKind.GRID, parent_id=community.id
                )
            secretary = user_service.create_user(
                None, username="secretary", password=secrets.token_urlsafe(12), display_name="书记"
            )
            user_service.grant_role(None, secretary, Role.SECRETARY, community)
        with db.engine.connect() as conn:
            out["server"] = (
                "SQLite " + conn.exec_driver_sql("SELECT sqlite_version()").scalar_one()
                if conn.dialect.name == "sqlite"
                else "PostgreSQL " + conn.exec_driver_sql("SHOW server_version").scalar_one()
            )

        def upload(dry_run: bool) -> int:
            with atomic():
                job = imports.start(
                    secretary,
                    kind=ImportKind.RESIDENTS,
                    community=community,
                    data=data,
                    filename="people.csv",
                    dry_run=dry_run,
                )
                return job.id

        t = time.perf_counter()
        upload(True)
        out["check_s"] = round(time.perf_counter() - t, 2)
        for label in ("import", "reimport"):
            t = time.perf_counter()
            job_id = upload(False)
            run_job(job_id)
            out[f"{label}_s"] = round(time.perf_counter() - t, 2)
            job = imports.get_job(None, job_id)
            out[f"{label}_counts"] = {
                "created": job.created,
                "updated": job.updated,
                "unchanged": job.unchanged,
                "refused": job.refused,
                "status": job.status.value,
            }
        db.session.rollback()
        out["users"] = db.session.execute(sa.select(sa.func.count()).select_from(User)).scalar_one()
        db.session.remove()
        db.engine.dispose()
    out["rows_per_s"] = round(rows / out["import_s"])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/bench_import")
    args = ap.parse_args(argv)
    result = run(args.engine, args.rows, args.pg_url)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"imports-{args.engine}.json").write_text(json.dumps(result, indent=2) + "\n")
    json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
