"""Online backup and restore of the database.

SQLite: the online backup API copies a consistent snapshot page by page while
writers keep going (WAL readers do not block writers). PostgreSQL: ``pg_dump -Fc``
(a consistent snapshot in one transaction) and ``pg_restore --clean``.
Restore is meant for a stopped application.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from sqlalchemy.engine import Engine, make_url
from sqlalchemy.engine.interfaces import DBAPIModule


class BackupError(RuntimeError):
    """The backup or restore could not be made."""


def _pg_env_and_args(engine: Engine) -> tuple[dict[str, str], list[str]]:
    url = make_url(engine.url)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = url.password
    args = [
        "-h",
        url.host or "127.0.0.1",
        "-p",
        str(url.port or 5432),
        "-U",
        url.username or "postgres",
    ]
    return env, [*args, "-d", url.database or "postgres"]


def _sqlite_path(engine: Engine) -> str:
    database = engine.url.database
    if not database or database == ":memory:":
        raise BackupError("cannot back up an in-memory SQLite database")
    return database


def _sqlite_module(engine: Engine) -> DBAPIModule:
    """Return the engine's DB-API module (``sqlite3`` or ``pysqlite3``) for its backup API."""
    module = engine.dialect.dbapi
    if module is None:
        raise BackupError("the SQLite driver is not loaded")
    return module


def backup(engine: Engine, target: Path) -> Path:
    """Write a consistent backup of the database behind ``engine`` to ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if engine.dialect.name == "sqlite":
        module = _sqlite_module(engine)
        tmp = target.with_suffix(target.suffix + ".part")
        src = module.connect(_sqlite_path(engine), timeout=30)
        dst = module.connect(str(tmp))
        try:
            src.backup(dst, pages=1024)
            check = dst.execute("PRAGMA integrity_check").fetchone()[0]
            if check != "ok":
                raise BackupError(f"backup failed integrity check: {check}")
        finally:
            dst.close()
            src.close()
        os.replace(tmp, target)
        return target
    if engine.dialect.name == "postgresql":
        pg_dump = shutil.which("pg_dump")
        if pg_dump is None:
            raise BackupError("pg_dump is not installed")
        env, args = _pg_env_and_args(engine)
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [pg_dump, "-Fc", "--no-owner", "-f", str(target), *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BackupError(result.stderr.strip() or "pg_dump failed")
        return target
    raise BackupError(f"unsupported engine {engine.dialect.name}")


def restore(engine: Engine, source: Path) -> None:
    """Replace the database behind ``engine`` with the backup at ``source``."""
    source = Path(source)
    if not source.is_file():
        raise BackupError(f"no backup at {source}")
    engine.dispose()
    if engine.dialect.name == "sqlite":
        module = _sqlite_module(engine)
        src = module.connect(str(source))
        dst = module.connect(_sqlite_path(engine), timeout=30)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        return
    if engine.dialect.name == "postgresql":
        pg_restore = shutil.which("pg_restore")
        if pg_restore is None:
            raise BackupError("pg_restore is not installed")
        env, args = _pg_env_and_args(engine)
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [
                pg_restore,
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                *args,
                str(source),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BackupError(result.stderr.strip() or "pg_restore failed")
        return
    raise BackupError(f"unsupported engine {engine.dialect.name}")
