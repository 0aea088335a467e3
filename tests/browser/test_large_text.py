"""Large-text mode (大字, 适老化) in a real Chromium at 360×740: switched on with the top
bar's button (signed in, and anonymous on /rate), the root font-size is larger, and a few
pages of a resident and a secretary have no horizontal overflow, no tap target under
44 px, no serious axe violation and no text of the other language, in both languages."""

from __future__ import annotations

import pytest

from . import checks
from .test_pages import sign_in

pytestmark = pytest.mark.browser

#: Pages checked in large-text mode, per demo account (the home first).
PAGES = {
    "resident_wang": ["/", "/profile", "/ratings", "/needs", "/needs/new"],
    "secretary_lh": ["/", "/review", "/settlement", "/registrations"],
}


def _root_px(driver) -> float:
    return float(
        driver.execute_script(
            "return parseFloat(getComputedStyle(document.documentElement).fontSize)"
        )
    )


def _switch(driver) -> None:
    from selenium.webdriver.common.by import By

    checks.submit(driver, driver.find_element(By.CSS_SELECTOR, "header button.text-size"))


def _check(driver, base: str, paths: list[str], axe_source, locale, masks) -> dict:
    results = {}
    for path in paths:
        driver.get(base + path)
        checks.settle(driver)
        assert "large-text" in driver.find_element("tag name", "html").get_attribute("class")
        results[path] = {
            name: problems
            for name, problems in checks.check_page(driver, axe_source, locale, masks).items()
            if problems
        }
    return {path: found for path, found in results.items() if found}


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_large_text_pages(browser, live_server, axe_source, masks, locale):
    base = live_server.url
    problems = {}
    for username, paths in PAGES.items():
        sign_in(browser, base, username, locale)
        normal = _root_px(browser)
        _switch(browser)
        assert _root_px(browser) >= normal * 1.2, "the root font-size did not grow"
        problems.update(
            {
                f"{username} {p}": v
                for p, v in _check(browser, base, paths, axe_source, locale, masks).items()
            }
        )
        _switch(browser)  # and off again: stored on the account
        assert _root_px(browser) == normal
    # anonymous: the cookie carries it to the password-free rating page
    browser.delete_all_cookies()
    browser.get(f"{base}/rate?lang={locale}")
    _switch(browser)
    problems.update(
        {
            f"anonymous {p}": v
            for p, v in _check(
                browser, base, ["/rate", "/login"], axe_source, locale, masks
            ).items()
        }
    )
    assert not problems, problems
