"""App factory, configuration, engines, atomic(), CLI commands and languages."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from volunteer_market.config import ConfigError, build_config, normalise_database_url
from volunteer_market.database import atomic, writing
from volunteer_market.extensions import db
from volunteer_market.models import Role, RoleGrant, User

from ..conftest import ON_POSTGRES, login
from .conftest import build_app, count_rows, fresh_session

ROOT = Path(__file__).resolve().parents[2]

# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db:5432/vm", "postgresql+psycopg://u:p@db:5432/vm"),
        ("postgresql://u:p@db:5432/vm", "postgresql+psycopg://u:p@db:5432/vm"),
        ("postgresql+psycopg://u@db/vm", "postgresql+psycopg://u@db/vm"),
        ("sqlite:////srv/vm.db", "sqlite:////srv/vm.db"),
        ("sqlite:///relative.db", "sqlite:///relative.db"),
    ],
)
def test_normalise_database_url(given, expected):
    assert normalise_database_url(given) == expected


def test_database_url_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgres://vm:secret@db.example:5432/vm")
    cfg = build_config(str(tmp_path))
    assert cfg["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://vm:secret@db.example:5432/vm"


def test_default_database_is_sqlite_in_instance(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("RATELIMIT_STORAGE_URI", raising=False)
    cfg = build_config(str(tmp_path))
    assert cfg["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'volunteer_market.db'}"
    assert cfg["RATELIMIT_STORAGE_URI"] == "memory://"
    assert cfg["BABEL_DEFAULT_LOCALE"] == "zh_CN"


def test_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "redis://cache:6379/1")
    monkeypatch.setenv("LOGIN_FAILURES_PER_HOUR", "7")
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "1")
    cfg = build_config(str(tmp_path))
    assert cfg["RATELIMIT_STORAGE_URI"] == "redis://cache:6379/1"
    assert cfg["LOGIN_FAILURES_PER_HOUR"] == 7
    assert cfg["SESSION_COOKIE_SECURE"] is True


def test_production_requires_secret_key(monkeypatch, tmp_path):
    monkeypatch.setenv("VM_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        build_config(str(tmp_path))
    assert not (tmp_path / "secret_key").exists()  # no key invented in production
    monkeypatch.setenv("SECRET_KEY", "a-real-secret")
    assert build_config(str(tmp_path))["SECRET_KEY"] == "a-real-secret"


def test_create_app_refuses_production_without_secret_key(monkeypatch):
    from volunteer_market import create_app

    monkeypatch.setenv("VM_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError):
        create_app()


def test_development_key_is_generated_once_and_private(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("VM_ENV", raising=False)
    first = build_config(str(tmp_path))["SECRET_KEY"]
    second = build_config(str(tmp_path))["SECRET_KEY"]
    assert first == second and len(first) >= 32
    mode = stat.S_IMODE((tmp_path / "secret_key").stat().st_mode)
    assert mode == 0o600


def test_app_factory(app):
    assert app.config["TESTING"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["PERMANENT_SESSION_LIFETIME"].total_seconds() == 12 * 3600
    assert app.config["SESSION_IDLE_TIMEOUT"].total_seconds() == 30 * 60
    names = set(app.blueprints)
    assert {"web_auth", "web_main", "web_admin", "api_auth", "api_me", "api_users"} <= names
    assert {"create-admin", "doctor", "demo"} <= set(app.cli.commands)


def test_password_hashing_cost_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("PASSWORD_HASH_MEMORY_KIB", raising=False)
    monkeypatch.delenv("PASSWORD_HASH_TIME_COST", raising=False)
    cfg = build_config(str(tmp_path))
    assert cfg["PASSWORD_HASH_MEMORY_KIB"] >= 19 * 1024
    assert cfg["PASSWORD_HASH_TIME_COST"] >= 2


# --- SQLite engine ------------------------------------------------------------------------------


@pytest.fixture
def sqlite_app(tmp_path):
    """An app on a SQLite file with the schema (whatever engine the suite runs on)."""
    app = build_app(f"sqlite:///{tmp_path / 'engine.db'}")
    with app.app_context():
        db.create_all()
        yield app
        db.session.remove()
        db.engine.dispose()


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def test_sqlite_uses_pysqlite3_with_a_current_sqlite(sqlite_app):
    engine = db.engine
    assert engine.dialect.dbapi.__name__ == "pysqlite3.dbapi2"
    with engine.connect() as conn:
        version = conn.exec_driver_sql("select sqlite_version()").scalar()
    assert _version_tuple(version) >= (3, 51, 3)


def test_sqlite_pragmas(sqlite_app):
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_sqlite_enforces_foreign_keys(sqlite_app):
    with pytest.raises(sa.exc.IntegrityError), atomic():
        db.session.add(RoleGrant(user_id=424242, role=Role.MEMBER, area_id=434343))
        db.session.flush()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RoleGrant)) == 0


def test_atomic_begins_immediate_on_sqlite(sqlite_app):
    statements: list[str] = []

    @sa.event.listens_for(db.engine, "before_cursor_execute")
    def _log(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    try:
        db.session.execute(sa.text("SELECT 1"))  # a read outside atomic(): deferred BEGIN
        assert not writing()
        with atomic():
            assert writing()
            db.session.execute(sa.text("SELECT 2"))
            with atomic():  # nested: joins the outer transaction
                db.session.execute(sa.text("SELECT 3"))
        assert not writing()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", _log)
    begins = [s for s in statements if s.startswith("BEGIN")]
    assert begins == ["BEGIN", "BEGIN IMMEDIATE"]
    assert statements.index("BEGIN IMMEDIATE") < statements.index("SELECT 2")


def test_atomic_rolls_back_everything_on_error(app, world):
    before = count_rows()
    with pytest.raises(RuntimeError), atomic():
        db.session.add(User(username="ghost", password_hash="x", display_name="g"))
        db.session.flush()
        raise RuntimeError("boom")
    assert count_rows() == before


def test_atomic_refuses_unflushed_changes_from_a_read(app, world):
    fresh_session()
    user = db.session.get(User, world.member_a.id)
    user.display_name = "changed outside a write transaction"
    with pytest.raises(RuntimeError, match="unflushed"), atomic():
        pass
    db.session.rollback()


# --- atomic() under real concurrency --------------------------------------------------------------

THREADS, ROUNDS = 8, 25


def _hammer(app, user_id: int, rounds: int, barrier, errors, *, locked: bool) -> None:
    """Read-modify-write ``users.session_version`` ``rounds`` times, one transaction each."""
    pg = app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
    read = "SELECT session_version FROM users WHERE id = :id" + (" FOR UPDATE" if pg else "")
    try:
        with app.app_context():
            barrier.wait()
            for _ in range(rounds):
                # the control (locked=False): a plain transaction, no write lock before the read
                with atomic() if locked else db.session.begin():
                    value = db.session.execute(
                        sa.text(read if locked else read.replace(" FOR UPDATE", "")),
                        {"id": user_id},
                    ).scalar_one()
                    time.sleep(0.001)  # widen the window between read and write
                    db.session.execute(
                        sa.text("UPDATE users SET session_version = :v WHERE id = :id"),
                        {"v": value + 1, "id": user_id},
                    )
            db.session.remove()
    except Exception as exc:  # noqa: BLE001 - collected and asserted by the test
        errors.append(exc)


def _run_threads(app, user_id: int, *, locked: bool, threads: int, rounds: int) -> list:
    barrier = threading.Barrier(threads)
    errors: list[Exception] = []
    workers = [
        threading.Thread(
            target=_hammer, args=(app, user_id, rounds, barrier, errors), kwargs={"locked": locked}
        )
        for _ in range(threads)
    ]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in workers), "a worker hung"
    return errors


def _version(user_id: int) -> int:
    with db.engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT session_version FROM users WHERE id = :id"), {"id": user_id}
        ).scalar_one()


def test_atomic_serialises_read_modify_write(app, world):
    """8 threads x 25 increments through atomic(): exactly 200 (BEGIN IMMEDIATE on SQLite,
    SELECT ... FOR UPDATE on PostgreSQL)."""
    uid = world.member_a.id
    start = _version(uid)
    errors = _run_threads(app, uid, locked=True, threads=THREADS, rounds=ROUNDS)
    assert errors == []
    assert _version(uid) == start + THREADS * ROUNDS


def test_without_the_lock_updates_are_lost_or_refused(app, world):
    """The control: the same loop without the write lock loses updates (or, on SQLite,
    fails with 'database is locked') -- so the test above can fail."""
    uid = world.member_a.id
    start = _version(uid)
    errors = _run_threads(app, uid, locked=False, threads=THREADS, rounds=ROUNDS)
    final = _version(uid)
    assert errors or final < start + THREADS * ROUNDS
    for exc in errors:
        assert isinstance(exc, sa.exc.OperationalError), exc


# --- CLI --------------------------------------------------------------------------------------------


def test_doctor(runner):
    result = runner.invoke(args=["doctor"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert re.search(r"^python\s+3\.\d+", out, re.M)
    assert re.search(r"^environment\s+testing$", out, re.M)
    assert re.search(r"^rate-limit store\s+memory://$", out, re.M)
    assert re.search(r"^password hashing\s+argon2id m=8KiB t=1$", out, re.M)
    assert re.search(r"^default locale\s+zh_CN$", out, re.M)
    assert re.search(r"^schema revision\s+none", out, re.M)  # tests build with create_all
    if ON_POSTGRES:
        assert re.search(r"^engine\s+postgresql \(psycopg\)$", out, re.M)
        assert re.search(r"^server version\s+\d+", out, re.M)
        assert re.search(r"^isolation\s+read committed$", out, re.M)
    else:
        assert re.search(r"^engine\s+sqlite \(pysqlite\)$", out, re.M)
        assert re.search(r"^sqlite driver\s+pysqlite3\.dbapi2$", out, re.M)
        version = re.search(r"^sqlite version\s+([\d.]+)$", out, re.M).group(1)
        assert _version_tuple(version) >= (3, 51, 3)
        assert re.search(r"^\s+journal_mode\s+wal$", out, re.M)
        assert re.search(r"^\s+foreign_keys\s+1$", out, re.M)
        assert re.search(r"^\s+busy_timeout\s+30000$", out, re.M)


def test_doctor_through_flask_cli(tmp_path):
    """``flask --app wsgi doctor`` as an operator runs it, on an empty SQLite file."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "SECRET_KEY": "cli-test",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("VM_ENV", None)
    flask = Path(sys.executable).with_name("flask")
    proc = subprocess.run(
        [str(flask), "--app", "wsgi", "doctor"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "journal_mode    wal" in proc.stdout
    assert "schema revision   none (run: flask --app wsgi db upgrade)" in proc.stdout
    assert "environment       development" in proc.stdout


def test_create_admin(app, runner, client):
    result = runner.invoke(args=["create-admin", "boss", "--password", "long-enough-1"])
    assert result.exit_code == 0, result.output
    assert re.search(r"Created admin boss \(id \d+\)", result.output)
    fresh_session()
    user = db.session.execute(sa.select(User).where(User.username == "boss")).scalar_one()
    assert [(g.role, g.area_id) for g in user.grants] == [(Role.ADMIN, None)]
    assert user.password_hash.startswith("$argon2id$")
    resp = client.post("/api/v1/auth/token", json={"username": "boss", "password": "long-enough-1"})
    assert resp.status_code == 201
    me = client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {resp.get_json()['token']}"}
    ).get_json()
    assert me["roles"][0]["role"] == "admin"


def test_create_admin_prompts_for_the_password(app, runner):
    result = runner.invoke(args=["create-admin", "boss2"], input="long-enough-2\nlong-enough-2\n")
    assert result.exit_code == 0, result.output
    assert "long-enough-2" not in result.output  # hidden input
    assert count_rows("users")["users"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create-admin", "boss", "--password", "another-pass"], "taken"),
        (["create-admin", "BOSS", "--password", "another-pass"], "taken"),
        (["create-admin", "shorty", "--password", "short"], "short"),
    ],
)
def test_create_admin_refusals_exit_non_zero(app, runner, args, message):
    assert (
        runner.invoke(args=["create-admin", "boss", "--password", "long-enough-1"]).exit_code == 0
    )
    before = count_rows()
    result = runner.invoke(args=args)
    assert result.exit_code != 0
    assert message in result.output.lower()
    assert count_rows() == before


# --- languages ---------------------------------------------------------------------------------------


def _page(client, path, **kw):
    resp = client.get(path, **kw)
    assert resp.status_code in (200, 404), resp.status_code
    return resp.get_data(as_text=True)


def test_default_language_is_chinese(client, world):
    body = _page(client, "/login")
    assert '<html lang="zh-CN">' in body
    assert "登录" in body and "用户名" in body and "密码" in body
    assert "Sign in" not in body


def test_english_on_request(client, world):
    body = _page(client, "/login?lang=en")
    assert '<html lang="en">' in body
    assert "Sign in" in body and "Username" in body and "Password" in body
    assert "登录" not in body and "用户名" not in body
    # the choice is remembered in the session
    assert "Sign in" in _page(client, "/login")
    assert "登录" in _page(client, "/login?lang=zh_CN")


def test_accept_language_english(client, world):
    body = _page(client, "/login", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert "Sign in" in body
    body = _page(client, "/login", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert "登录" in body


def test_user_locale_preference(client, world):
    with atomic():
        db.session.get(User, world.member_a.id).locale = "en"
    login(client, "member_a")
    assert "Party member" in _page(client, "/")


ROLE_NAMES = {
    "member_a": ("下沉党员", "Party member"),
    "resident_a": ("居民", "Resident"),
    "grid_a1": ("网格员", "Grid worker"),
    "secretary_a": ("社区书记", "Community secretary"),
    "officer_street": ("街道/区管理员", "Street/district officer"),
    "admin": ("系统管理员", "System administrator"),
}


@pytest.mark.parametrize("who", sorted(ROLE_NAMES))
def test_role_names_on_the_home_page(client, world, who):
    zh, en = ROLE_NAMES[who]
    login(client, who)
    body = _page(client, "/?lang=zh_CN")
    assert zh in body and en not in body
    assert (
        re.search(r"<li>\s*(grid_worker|member|resident|secretary|officer|admin)\b", body) is None
    )
    body = _page(client, "/?lang=en")
    assert en in body


def test_area_kind_names(client, world):
    login(client, "admin")
    body = _page(client, "/admin/areas?lang=zh_CN")
    for zh in ("区", "街道", "社区", "网格"):
        assert f'<span class="tag">{zh}</span>' in body
    assert '<span class="tag">community</span>' not in body
    body = _page(client, "/admin/areas?lang=en")
    for en in ("District", "Street", "Community", "Grid"):
        assert f'<span class="tag">{en}</span>' in body


def test_error_pages_follow_the_language(client, world):
    resp = client.get("/no/such/page")
    assert resp.status_code == 404 and "页面不存在" in resp.get_data(as_text=True)
    resp = client.get("/no/such/page?lang=en")
    assert resp.status_code == 404 and "Page not found" in resp.get_data(as_text=True)


# --- the English catalog ---------------------------------------------------------------------------

TRANSLATIONS = ROOT / "volunteer_market" / "translations"


def _source_msgids() -> set[str]:
    """Every msgid in the code and templates, extracted the way tools/i18n.sh does."""
    from babel.messages.extract import extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    with open(ROOT / "babel.cfg") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    keywords = {
        "_": None,
        "gettext": None,
        "ngettext": (1, 2),
        "_l": None,
        "lazy_gettext": None,
        "_n": (1, 2),
        "lazy_ngettext": (1, 2),
    }
    out = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords
    ):
        out.add(message[0] if isinstance(message, tuple) else message)
    return out


def test_english_catalog_translates_every_msgid():
    with open(TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po", "rb") as fh:
        po = read_po(fh)
    translated = {
        (m.id[0] if isinstance(m.id, tuple) else m.id): m
        for m in po
        if m.id and not m.fuzzy and (all(m.string) if isinstance(m.id, tuple) else m.string)
    }
    missing = sorted(_source_msgids() - set(translated))
    assert not missing, f"run tools/i18n.sh and translate: {missing[:20]}"
    for msgid, message in translated.items():
        text = message.string[0] if isinstance(message.string, tuple) else message.string
        assert not re.search(r"[\u4e00-\u9fff]", text), (msgid, text)  # really English
        placeholders = re.compile(r"%\((\w+)\)[sd]")
        assert sorted(placeholders.findall(msgid)) == sorted(placeholders.findall(text)), msgid


def test_compiled_catalog_matches_the_po():
    with open(TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po", "rb") as fh:
        po = read_po(fh)
    with open(TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.mo", "rb") as fh:
        mo = read_mo(fh)
    want = {m.id: m.string for m in po if m.id and not m.fuzzy and m.string}
    have = {m.id: m.string for m in mo if m.id}
    assert have == want, "run tools/i18n.sh to recompile messages.mo"
