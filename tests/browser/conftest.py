"""Real-browser fixtures: the demo data served by a live server, headless Chromium, axe-core.

``live_server`` builds a fresh database (a SQLite file in a tmp dir, or a PostgreSQL
database named after ``DATABASE_URL`` plus ``_browser_<worker>``), loads the Hanyang demo
data through the services and serves the app from a thread on a free port (each xdist
worker gets its own port and database, so workers never collide).

``browser`` is one headless Chromium per worker (Debian's ``/usr/bin/chromium`` driven by
``/usr/bin/chromedriver``; override with ``CHROMIUM_BIN`` / ``CHROMEDRIVER_BIN``) emulating
a 360×740 phone. Selenium Manager is never used: the driver path is given explicitly.

Where Chromium, chromedriver or axe-core cannot be found, the tests skip with the reason;
under ``CI=true`` they fail instead (CI installs them: ``.ci/run``).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ..conftest import ON_POSTGRES, TEST_CONFIG, create_schema, drop_postgres_database
from ..conftest import postgres_url_for as _postgres_url_for

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCREENSHOTS = ROOT / "docs" / "screenshots"
WIDTH, HEIGHT = 360, 740


def _unavailable(reason: str) -> None:
    """Skip (a developer without Chromium) or fail (CI must have it)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests cannot run under CI=true: {reason}")
    pytest.skip(reason)


def _find(env: str, *candidates: str) -> str | None:
    explicit = os.environ.get(env)
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in candidates:
        found = (
            shutil.which(name) if "/" not in name else (name if os.access(name, os.X_OK) else None)
        )
        if found:
            return found
    return None


def axe_path() -> Path | None:
    """Return axe.min.js: ``AXE_CORE_JS``, else ``tests/browser/node_modules`` (``.ci/run``)."""
    explicit = os.environ.get("AXE_CORE_JS")
    candidates = [Path(explicit)] if explicit else []
    candidates.append(HERE / "node_modules" / "axe-core" / "axe.min.js")
    return next((p for p in candidates if p.is_file()), None)


@dataclass
class LiveServer:
    url: str
    database_url: str
    app: Any  # the served Flask app (its engine reads the database with the app's driver)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Serve the demo data on a free port from a thread (one per xdist worker)."""
    from werkzeug.serving import make_server

    from volunteer_market import create_app
    from volunteer_market.demo import load_demo
    from volunteer_market.extensions import db
    from volunteer_market.services.context import set_origin

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    if ON_POSTGRES:
        url = _postgres_url_for(f"browser_{worker}")
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'demo.db'}"
    create_schema(url)
    config = {
        **TEST_CONFIG,
        "TESTING": False,  # real CSRF, real error pages
        "VM_ENV": "development",
        "SQLALCHEMY_DATABASE_URI": url,
        "RATELIMIT_ENABLED": False,  # one browser logs in as every role, many times
    }
    app = create_app(config)
    with app.app_context():
        set_origin("cli")
        load_demo()
        db.session.remove()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(url=f"http://127.0.0.1:{server.port}", database_url=url, app=app)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        with app.app_context():
            db.engine.dispose()
        if ON_POSTGRES:
            drop_postgres_database(url)


@pytest.fixture(scope="session")
def axe_source() -> str:
    path = axe_path()
    if path is None:
        _unavailable(
            "axe-core not found: run `npm install --prefix tests/browser` or set AXE_CORE_JS"
        )
    assert path is not None
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Chromium per worker, as a 360×740 phone."""
    chromium = _find("CHROMIUM_BIN", "/usr/bin/chromium", "chromium", "chromium-browser")
    driver_bin = _find("CHROMEDRIVER_BIN", "/usr/bin/chromedriver", "chromedriver")
    if chromium is None or driver_bin is None:
        _unavailable(
            "Chromium or chromedriver not found (apt-get install chromium chromium-driver, "
            "or set CHROMIUM_BIN / CHROMEDRIVER_BIN)"
        )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:  # pragma: no cover - the test extra installs it
        _unavailable('selenium is not installed (pip install -e ".[test]")')
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-extensions",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-features=Translate,OptimizationHints,MediaRouter",
        "--lang=zh-CN",
    ):
        options.add_argument(arg)
    options.add_experimental_option(
        "mobileEmulation",
        {"deviceMetrics": {"width": WIDTH, "height": HEIGHT, "pixelRatio": 2, "touch": True}},
    )
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_bin))
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def load_masks(server: LiveServer) -> list[str]:
    """Return the demo data's strings as stored now (for the language check)."""
    from volunteer_market.extensions import db
    from volunteer_market.models.users import HOUSEHOLD_TAGS
    from volunteer_market.web.labels import TARGET_GROUP_LABELS

    from .checks import data_masks

    with server.app.app_context():
        try:
            return data_masks(db.engine, [*HOUSEHOLD_TAGS, *TARGET_GROUP_LABELS])
        finally:
            db.session.remove()


@pytest.fixture
def masks(live_server: LiveServer) -> list[str]:
    """The demo data's strings as stored when the test starts (earlier forms add some)."""
    return load_masks(live_server)
