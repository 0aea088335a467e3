"""Every page of every demo role in a real headless Chromium at 360×740, in zh_CN and en.

Each test signs in as one demo account (password ``demo12345``), then visits the home
page, follows the in-app links it finds (navigation and in-page links, breadth first,
one page per kind of page: ids and query strings collapsed, at most :data:`MAX_PAGES`)
and the known entry pages of the role, and runs :func:`checks.check_page` on each. The
failures found must equal :data:`KNOWN_FAILURES` exactly: a new failure fails the test,
and so does a known one that no longer fails (remove it from the list).
"""

from __future__ import annotations

import os
from collections import deque

import pytest

from . import checks
from .conftest import SCREENSHOTS

pytestmark = pytest.mark.browser

PASSWORD = "demo12345"
MAX_PAGES = 45

#: One demo account per role, and entry pages to visit besides what the links reach.
ROLES: dict[str, tuple[str, list[str]]] = {
    "admin": ("admin", ["/admin/users", "/admin/areas", "/imports"]),
    "officer": ("officer_hy", ["/reports/annual", "/reports/communities", "/rankings/communities"]),
    "secretary": (
        "secretary_lh",
        ["/review", "/settlement", "/imports", "/registrations", "/integrity", "/appeals"],
    ),
    "grid_worker": ("grid_lh1", ["/needs/new"]),
    "member": ("member_chen", ["/projects/new", "/projects/mine", "/points", "/rewards"]),
    "resident": ("resident_wang", ["/ratings", "/needs/new", "/appeals/new"]),
}
#: Pages anyone reaches without signing in (onboarding: registration; the code page).
PUBLIC_PAGES = ["/login", "/register", "/rate", "/certificates/verify"]

#: (role, locale, page kind, check) pairs known to fail; the test asserts they still do.
KNOWN_FAILURES: set[tuple[str, str, str, str]] = set()


def sign_in(driver, base: str, username: str, locale: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/login")  # on the app's origin, so that its cookies can be deleted
    driver.delete_all_cookies()
    driver.get(f"{base}/login?lang={locale}")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    checks.submit(driver, driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]"))
    assert "/login" not in driver.current_url, f"{username} could not sign in"
    driver.get(f"{base}/?lang={locale}")  # signing in starts a new session


def crawl(driver, base: str, start: list[str], check) -> dict[str, dict[str, list[str]]]:
    """Visit pages breadth first from ``start``; return the check results by page kind."""
    results: dict[str, dict[str, list[str]]] = {}
    queue = deque(start)
    seen: set[str] = set()
    while queue and len(results) < MAX_PAGES:
        path = queue.popleft()
        key = checks.page_key(path)
        if key in seen:
            continue
        seen.add(key)
        driver.get(base + path)
        checks.settle(driver)
        if checks.is_browser_error(driver):
            results[key] = {"load": [f"browser error page at {path}"]}
            continue
        results[key] = check(driver)
        results[key]["status"] = _error_status(driver, path)
        if key == "/" and driver.find_elements("css selector", "details.nav-more"):
            # the "更多" menu, open: every page the person may reach, profile, sign-out
            driver.execute_script("document.querySelector('details.nav-more').open = true")
            results["/ (更多)"] = check(driver)
            driver.execute_script("document.querySelector('details.nav-more').open = false")
        for link in checks.same_site_links(
            base, driver.current_url, driver.execute_script(checks.LINKS_JS)
        ):
            if checks.page_key(link) not in seen:
                queue.append(link)
    return results


def _error_status(driver, path: str) -> list[str]:
    """A followed link must not land on an error page (the app's error template)."""
    from selenium.webdriver.common.by import By

    if driver.find_elements(By.CSS_SELECTOR, ".error-page"):
        return [f"error page at {path}: {driver.title}"]
    return []


def _failures(role: str, locale: str, results) -> dict[tuple[str, str, str, str], list[str]]:
    return {
        (role, locale, key, name): problems
        for key, by_check in results.items()
        for name, problems in by_check.items()
        if problems
    }


def _assert_as_known(role: str, locale: str, results) -> None:
    found = _failures(role, locale, results)
    known = {k for k in KNOWN_FAILURES if k[0] == role and k[1] == locale}
    new = {k: v for k, v in found.items() if k not in known}
    fixed = sorted(k for k in known if k not in found)
    report = "\n".join(f"{k[2]} [{k[3]}]: {'; '.join(v[:4])}" for k, v in sorted(new.items()))
    assert not new, f"{role}/{locale}: pages checked {sorted(results)}\n{report}"
    assert not fixed, f"{role}/{locale}: known failures now pass, remove them: {fixed}"
    assert len(results) >= 3, f"{role}/{locale}: only {sorted(results)} reached"


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_page_of_the_role(browser, live_server, axe_source, masks, role, locale):
    username, extra = ROLES[role]
    base = live_server.url
    sign_in(browser, base, username, locale)
    if os.environ.get("VM_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SCREENSHOTS / f"home-{role}-{locale}.png"))
        if locale == "zh_CN":  # and the "更多" menu open
            browser.execute_script("document.querySelector('details.nav-more').open = true")
            browser.save_screenshot(str(SCREENSHOTS / f"more-{role}-{locale}.png"))
            browser.execute_script("document.querySelector('details.nav-more').open = false")
    results = crawl(
        browser, base, ["/", *extra], lambda d: checks.check_page(d, axe_source, locale, masks)
    )
    print(f"{role}/{locale}: {len(results)} pages: {', '.join(sorted(results))}")
    _assert_as_known(role, locale, results)


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_public_pages(browser, live_server, axe_source, masks, locale):
    base = live_server.url
    browser.delete_all_cookies()
    browser.get(f"{base}/login?lang={locale}")
    results = {}
    for path in PUBLIC_PAGES:
        browser.get(base + path)
        results[checks.page_key(path)] = checks.check_page(browser, axe_source, locale, masks)
        results[checks.page_key(path)]["status"] = _error_status(browser, path)
    _assert_as_known("anonymous", locale, results)
