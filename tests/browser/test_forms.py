"""Post/Redirect/Get in a real Chromium: after each form submission, "back" shows a page.

Each scenario fills and submits a real form as a person of the demo would, then leaves
the result page for the home page and taps back twice: the result page and the form
page must both come back as pages, never as Chromium's "Confirm form resubmission"
(ERR_CACHE_MISS) error, which is what a page rendered as the answer to a POST gives.
The scenarios cover the onboarding pages (registration, its approval, sign-in), the
resident's rating (signed in, and password-free with a slip code), a new need, the
notifications, the profile and a redemption.
"""

from __future__ import annotations

import random
import re

import pytest

from . import checks
from .conftest import load_masks
from .test_pages import sign_in

pytestmark = pytest.mark.browser


def _by(driver, css: str):
    from selenium.webdriver.common.by import By

    checks.settle(driver)  # never an element of a page about to be replaced
    return driver.find_element(By.CSS_SELECTOR, css)


def _all(driver, css: str):
    from selenium.webdriver.common.by import By

    checks.settle(driver)
    return driver.find_elements(By.CSS_SELECTOR, css)


def _wait_until_finished(driver, timeout: float = 60) -> None:
    """Wait until an import job page stops refreshing itself (``<meta http-equiv=refresh>``
    while the job runs): checking a page that reloads under the driver fails at random."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    def finished(d) -> bool:
        try:
            return d.execute_script(
                "return document.readyState === 'complete' && "
                "!document.querySelector('meta[http-equiv=refresh]')"
            )
        except WebDriverException:  # the page was reloading
            return False

    WebDriverWait(driver, timeout, poll_frequency=0.3).until(finished)


def _errors(driver) -> str:
    return " ".join(e.text for e in _all(driver, ".field-errors, .flash-error")) or driver.title


def assert_back_shows_pages(driver, base: str, what: str) -> None:
    """Leave the result page, then tap back to it and back again to the form."""
    assert not checks.is_browser_error(driver), f"{what}: the submission gave an error page"
    result = driver.current_url
    driver.get(base + ("/needs" if result.rstrip("/") == base else "/"))
    driver.back()
    checks.settle(driver)
    assert not checks.is_browser_error(driver), f"{what}: back to {result} shows a browser error"
    assert driver.current_url == result, f"{what}: back went to {driver.current_url}"
    driver.back()
    checks.settle(driver)
    assert not checks.is_browser_error(driver), f"{what}: back to the form shows a browser error"


def test_registration_approval_and_phone_sign_in(browser, live_server):
    base = live_server.url
    browser.get(f"{base}/register")
    browser.delete_all_cookies()
    browser.get(f"{base}/register?lang=zh_CN")
    phone = f"137{random.randrange(10**8):08d}"
    _by(browser, "#phone").send_keys(phone)
    _by(browser, "#display_name").send_keys("报到测试")
    _by(browser, "#password").send_keys("longenough1")
    from selenium.webdriver.support.ui import Select

    Select(_by(browser, "#community_id")).select_by_visible_text("龙湖东岸社区")
    _by(browser, "#home_unit").send_keys("汉阳区民政局")
    checks.submit(browser, _by(browser, "main form button[type=submit]"))
    assert "/register/" in browser.current_url, _errors(browser)
    assert_back_shows_pages(browser, base, "registration")

    sign_in(browser, base, "secretary_lh", "zh_CN")
    browser.get(f"{base}/registrations")
    row = next(li for li in _all(browser, "main .list li") if "报到测试" in li.text)
    approve = row.find_element("css selector", "button.primary")
    checks.submit(browser, approve)
    assert "已通过" in browser.page_source
    assert_back_shows_pages(browser, base, "registration approval")

    # the applicant now signs in with the phone number
    browser.get(f"{base}/login")
    browser.delete_all_cookies()
    browser.get(f"{base}/login")
    _by(browser, "input[name=username]").send_keys(phone)
    _by(browser, "input[name=password]").send_keys("longenough1")
    checks.submit(browser, _by(browser, "main form button[type=submit]"))
    assert "/login" not in browser.current_url
    assert_back_shows_pages(browser, base, "sign-in by phone")


def test_resident_rates_posts_a_need_and_reads_notifications(browser, live_server):
    base = live_server.url
    sign_in(browser, base, "resident_wang", "zh_CN")
    pending = _all(browser, "main a[href*='/deliveries/']")
    assert pending, "the demo resident has a delivery to rate"
    pending[0].click()
    label = _all(browser, "label.score-choice")
    assert label, f"no rating form at {browser.current_url}"
    label[-1].click()
    checks.submit(
        browser, _by(browser, "form.rating-form button[type=submit], main form button.primary")
    )
    assert_back_shows_pages(browser, base, "signed-in rating")

    browser.get(f"{base}/needs/new")
    _by(browser, "#title").send_keys("帮忙换灯泡")
    checks.submit(browser, _by(browser, "main form button[type=submit]"))
    assert "/needs/new" not in browser.current_url
    assert_back_shows_pages(browser, base, "new need")

    browser.get(f"{base}/notifications")
    checks.submit(browser, _by(browser, "main form button[type=submit]"))
    assert_back_shows_pages(browser, base, "notifications read")

    browser.get(f"{base}/profile")
    forms = [f for f in _all(browser, "main form") if f.find_elements("name", "locale")]
    checks.submit(browser, forms[0].find_element("css selector", "button[type=submit]"))
    assert_back_shows_pages(browser, base, "profile language")


def test_rating_with_a_slip_code(browser, live_server):
    base = live_server.url
    sign_in(browser, base, "grid_lh1", "zh_CN")
    # a delivery of the grid worker's community still awaiting ratings: its slips page
    browser.get(f"{base}/projects")
    code = None
    projects = [a.get_attribute("href") for a in _all(browser, "main a[href*='/projects/']")]
    deliveries: list[str] = []
    for href in projects:
        browser.get(href)
        deliveries += [
            a.get_attribute("href") for a in _all(browser, "main a[href*='/deliveries/']")
        ]
    for href in dict.fromkeys(deliveries):
        browser.get(href)
        slips = _all(browser, "main a[href$='/slips']")
        if not slips:
            continue
        browser.get(slips[0].get_attribute("href"))
        checks.submit(browser, _by(browser, "main form button[type=submit]"))
        found = [el.text.strip() for el in _all(browser, ".pickup-code")]
        if found:
            code = found[0]
            assert_back_shows_pages(browser, base, "rating slips")
            break
    assert code and re.fullmatch(r"\d{6}", code.replace(" ", "")), "no slip code issued"

    browser.get(f"{base}/rate")
    browser.delete_all_cookies()
    browser.get(f"{base}/rate")
    _by(browser, "#code").send_keys(code.replace(" ", ""))
    checks.submit(browser, _by(browser, "main form button[type=submit]"))
    checks.submit(browser, _all(browser, "button.star-button")[-1])
    checks.submit(browser, _by(browser, "main form button.primary"))
    assert_back_shows_pages(browser, base, "rating by code")


def test_member_redeems_a_reward(browser, live_server):
    base = live_server.url
    sign_in(browser, base, "member_chen", "zh_CN")
    browser.get(f"{base}/rewards")
    for href in [a.get_attribute("href") for a in _all(browser, "main a[href*='/rewards/']")]:
        browser.get(href)
        buttons = [
            b
            for b in _all(browser, "main form[action$='/redeem'] button[type=submit]")
            if b.is_enabled()
        ]
        if buttons:
            checks.submit(browser, buttons[0])
            break
    else:
        pytest.fail("no reward the demo member can redeem")
    assert_back_shows_pages(browser, base, "redemption")


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_secretary_imports_residents_through_the_pages(
    browser, live_server, axe_source, locale, tmp_path
):
    """The onboarding import pages on a phone: upload, dry run with a bad row, real run."""
    base = live_server.url
    sign_in(browser, base, "secretary_lh", locale)
    seed = random.randrange(10**6)
    rows = [f"导入{i},1355{seed:06d}{i},第一网格," for i in range(3)] + ["坏行,12345,第九网格,"]
    path = tmp_path / "residents.csv"
    path.write_text("姓名,手机号,网格,家庭标签\n" + "\n".join(rows) + "\n", encoding="utf-8")

    browser.get(f"{base}/imports")
    _by(browser, "#file").send_keys(str(path))
    checks.submit(browser, _by(browser, "main form button[type=submit]"))  # dry run: default
    assert "/imports/" in browser.current_url, _errors(browser)
    _wait_until_finished(browser)
    masks = load_masks(live_server)  # with the file name just stored
    problems = {k: v for k, v in checks.check_page(browser, axe_source, locale, masks).items() if v}
    assert not problems, f"dry-run job page: {problems}"
    assert "4" in _by(browser, "main").text  # the bad row is reported with its number
    assert_back_shows_pages(browser, base, "import dry run")

    browser.get(f"{base}/imports")
    path.write_text("姓名,手机号,网格,家庭标签\n" + "\n".join(rows[:3]) + "\n", encoding="utf-8")
    _by(browser, "#file").send_keys(str(path))
    box = _by(browser, "input[name=dry_run]")
    if box.is_selected():
        browser.execute_script("arguments[0].click()", box)
    checks.submit(browser, _by(browser, "main form button[type=submit]"))
    assert "/imports/" in browser.current_url, _errors(browser)
    _wait_until_finished(browser)
    masks = load_masks(live_server)  # with the file name just stored
    problems = {k: v for k, v in checks.check_page(browser, axe_source, locale, masks).items() if v}
    assert not problems, f"import job page: {problems}"
    assert_back_shows_pages(browser, base, "import")
