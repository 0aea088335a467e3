"""What the real-browser tests check on every page, and how they find the pages.

Each check returns a list of problems (strings); an empty list is a pass.

* ``axe``: axe-core's violations of impact serious or critical.
* ``overflow``: the page is wider than the 360 px phone (horizontal scrolling).
* ``targets``: a tap target under 44×44 CSS px among the navigation (header, nav, the
  bottom bar) and the main actions (buttons, ``.button`` links, pager and action links,
  ``<summary>`` toggles). Links inside running text are exempt (WCAG 2.5.8 "inline").
* ``language``: English text in the Chinese UI, or Chinese in the English UI, among the
  text nodes and the text attributes (placeholder, aria-label, title, alt, button values)
  and the document title. Demo *data* is not UI: every string stored in the database
  (names, titles, areas, notes...) is masked before the check, except lowercase ASCII
  identifiers (enum values such as ``approved`` or notification kinds such as
  ``redemption.held``, which must never reach the page raw) and the fixed vocabularies
  the UI must translate (household tags). The remaining allow-list is
  :data:`ALLOWED_LATIN` / :data:`ALLOWED_CJK`: the other language's name on the language
  switch and file-format names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urljoin, urlsplit

import sqlalchemy as sa

#: Latin words allowed in the Chinese UI. "English" is the language switch (a language is
#: named in its own language); "Excel" is a product name; CSV, XLSX, PDF, PNG, JPEG and
#: WebP are file formats and "MB" a unit, written so in Chinese text too.
ALLOWED_LATIN = frozenset({"English", "Excel", "CSV", "XLSX", "PDF", "PNG", "JPEG", "WebP", "MB"})
#: Chinese allowed in the English UI: the language switch.
ALLOWED_CJK = ("中文",)

LATIN_WORD = re.compile(r"[A-Za-z0-9_@.:/\-]*[A-Za-z][A-Za-z0-9_@.:/\-]*")
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff01-\uff5e]")
IDENTIFIER = re.compile(r"^[a-z0-9_.\-]+$")
FILE_NAME = re.compile(r"\.(csv|xlsx|pdf|png|jpe?g|webp)$")

TEXT_JS = r"""
const out = [];
const skip = new Set(['SCRIPT', 'STYLE', 'TEMPLATE', 'NOSCRIPT']);
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
while (walker.nextNode()) {
  const node = walker.currentNode;
  const parent = node.parentElement;
  if (!parent || skip.has(parent.tagName) || parent.closest('[hidden]')) continue;
  const text = node.textContent.trim();
  if (text) out.push(text);
}
for (const el of document.querySelectorAll('[placeholder],[aria-label],[title],img[alt],input[type=submit],input[type=button]')) {
  for (const a of ['placeholder', 'aria-label', 'title', 'alt']) {
    const v = el.getAttribute(a); if (v && v.trim()) out.push(v.trim());
  }
  if (el.tagName === 'INPUT' && el.value) out.push(el.value);
}
if (document.title) out.push(document.title);
return out;
"""

TARGETS_JS = r"""
for (const d of document.querySelectorAll('details.nav-more')) d.open = true;
const sel = [
  'header a', 'header button', 'nav a', 'nav button', 'nav summary',
  'main button', 'main input[type=submit]', 'main input[type=button]', 'main a.button',
  'main summary', '.pager a', '.actions a', '.actions button'
].join(',');
const small = [];
for (const el of document.querySelectorAll(sel)) {
  if (!el.checkVisibility({checkVisibilityCSS: true})) continue;
  const r = el.getBoundingClientRect();
  if (r.width === 0 && r.height === 0) continue;
  if (r.width < 43.5 || r.height < 43.5) {
    const label = (el.innerText || el.value || el.getAttribute('aria-label') || '').trim().slice(0, 30);
    small.push(`${el.tagName.toLowerCase()} "${label}" ${Math.round(r.width)}x${Math.round(r.height)}`);
  }
}
for (const d of document.querySelectorAll('details.nav-more')) d.open = false;
return small;
"""

OVERFLOW_JS = r"""
const d = document.documentElement;
return [d.scrollWidth, window.innerWidth, d.clientWidth];
"""

AXE_JS = r"""
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ['violations']}).then(r => done(
  r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical').map(v =>
    `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | ')}`)
)).catch(e => done(['axe failed: ' + e]));
"""

LINKS_JS = r"""
return Array.from(document.querySelectorAll('a[href]'))
  .filter(a => !a.hasAttribute('download'))
  .map(a => a.getAttribute('href'));
"""

#: Links never followed: sign-out, the API, files (downloads, images, PDFs) by path, and
#: the language switch and file formats by query.
SKIP_PATH = re.compile(
    r"(^/logout)|(^/static/)|(^/api/)|(/template$)|(/certificate$)|(/photo$)|(/cover$)"
    r"|(/image$)|(\.(csv|xlsx|pdf|png|jpg)$)"
)
SKIP_QUERY = re.compile(r"(^|&)(lang|format)=")


def page_key(path: str) -> str:
    """Return the page's kind: the path with ids as ``{id}`` (query strings dropped)."""
    return re.sub(r"/\d+", "/{id}", urlsplit(path).path) or "/"


def same_site_links(base: str, current: str, hrefs: Iterable[str]) -> list[str]:
    """Return the in-app paths (with their query) linked from a page."""
    found: list[str] = []
    for href in hrefs:
        if not href or href.startswith(("#", "mailto:", "tel:", "javascript:")):
            continue
        url = urljoin(current, href)
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != base:
            continue
        if SKIP_PATH.search(parts.path) or SKIP_QUERY.search(parts.query):
            continue
        found.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return found


def data_masks(engine: sa.Engine, vocabularies: Iterable[str]) -> list[str]:
    """Return every stored string of the demo data that the language check must ignore."""
    from volunteer_market.extensions import db

    keep_out = set(vocabularies)
    values: set[str] = set()
    with engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            cols = [c for c in table.columns if isinstance(c.type, sa.String | sa.Text)]
            for col in cols:
                for (value,) in conn.execute(sa.select(col).distinct().where(col.is_not(None))):
                    if not isinstance(value, str):
                        continue
                    value = value.strip()
                    if table.name == "users" and col.name == "password_hash":
                        continue
                    username = table.name == "users" and col.name == "username"
                    if len(value) < 2 or value in keep_out:
                        continue
                    if IDENTIFIER.match(value) and not (username or FILE_NAME.search(value)):
                        continue
                    values.add(value)
                    values.update(p.strip() for p in value.splitlines() if len(p.strip()) >= 2)
    return sorted(values, key=len, reverse=True)


def _is_english(token: str) -> bool:
    """True for a word (or a raw identifier such as ``redemption.held``) of the UI; tokens
    with digits are codes, numbers, times or addresses, not words."""
    if any(c.isdigit() for c in token) or token in ALLOWED_LATIN:
        return False
    parts = [p for p in re.split(r"[_@.:/\-]+", token) if p]
    if token.startswith(".") and len(parts) == 1 and parts[0].upper() in ALLOWED_LATIN:
        return False  # a file extension: ".xlsx"
    return any(p.isalpha() and len(p) >= 2 and p not in ALLOWED_LATIN for p in parts)


def language_problems(texts: Iterable[str], locale: str, masks: list[str]) -> list[str]:
    """Return the texts in the wrong language (after masking the demo data)."""
    problems: list[str] = []
    for text in texts:
        rest = text
        for mask in masks:
            if mask in rest:
                rest = rest.replace(mask, " ")
        if locale == "en":
            for allowed in ALLOWED_CJK:
                rest = rest.replace(allowed, " ")
            if CJK.search(rest):
                problems.append(f"Chinese in English UI: {text[:60]!r}")
        else:
            words = [w for w in LATIN_WORD.findall(rest) if _is_english(w)]
            if words:
                problems.append(f"English in Chinese UI: {' '.join(words[:5])!r} in {text[:60]!r}")
    return sorted(set(problems))


def check_page(driver, axe_source: str, locale: str, masks: list[str]) -> dict[str, list[str]]:
    """Run every check on the page the driver shows; return problems by check name."""
    scroll_width, inner_width, client_width = driver.execute_script(OVERFLOW_JS)
    overflow = []
    if scroll_width > min(inner_width, 360) or client_width > 360:
        overflow.append(f"scrollWidth {scroll_width} > innerWidth {inner_width}")
    driver.execute_script(axe_source)
    return {
        "axe": list(driver.execute_async_script(AXE_JS)),
        "overflow": overflow,
        "targets": list(driver.execute_script(TARGETS_JS)),
        "language": language_problems(driver.execute_script(TEXT_JS), locale, masks),
    }


def is_browser_error(driver) -> bool:
    """True when the tab shows Chromium's own error page (e.g. ERR_CACHE_MISS)."""
    url = driver.current_url
    if url.startswith("chrome-error://"):
        return True
    text = driver.execute_script("return document.body ? document.body.innerText : ''")
    return "ERR_CACHE_MISS" in text or "ERR_" in text and "chromewebdata" in url


def submit(driver, button) -> None:
    """Click a form's submit button and wait for the next page to load."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    # Mark the current document; the next page is loaded when the mark is gone. (Waiting
    # for the old <html> element to go stale raced Chromium: while a page is replaced,
    # asking about an old element can fail with "Node with given id does not belong to
    # the document" instead of a stale-element error.)
    driver.execute_script("window.__vmOldPage = true")
    # above the fixed bottom bar, as a person scrolls before tapping
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()

    def loaded(d) -> bool:
        try:
            return bool(
                d.execute_script("return !window.__vmOldPage && document.readyState === 'complete'")
            )
        except WebDriverException:  # between the two documents
            return False

    WebDriverWait(driver, 20, poll_frequency=0.1).until(loaded)


def settle(driver, timeout: float = 10.0) -> None:
    """Wait until the tab has loaded and stays on one address (a history step may still be
    under way when ``back()`` returns)."""
    import time

    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        url = driver.current_url
        ready = driver.execute_script("return document.readyState") == "complete"
        if ready and url == last:
            return
        last = url if ready else None
        time.sleep(0.1)
