"""Each person's home: the isolated page client and the delivery scene of the ratings
tests, and a reader of the home page's counts."""

from __future__ import annotations

import re

from ..ratings.conftest import api, client, scene  # noqa: F401

_COUNT_RE = re.compile(r'data-todo="([a-z_.]+)">(\d+)<')


def home_page(browser) -> tuple[str, dict[str, int]]:
    """GET ``/`` (asserting 200); return the HTML and ``{count key: n}`` of every count."""
    resp = browser.get("/")
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    html = resp.get_data(as_text=True)
    counts: dict[str, int] = {}
    for key, n in _COUNT_RE.findall(html):
        counts[key] = int(n)
    return html, counts


def part_of(html: str, part: str) -> str:
    """Return the HTML of one part of the home (from its id to the next part's id)."""
    start = html.index(f'id="home-{part}"')
    nxt = [html.find('id="home-', start + 1)]
    end = min([i for i in nxt if i > 0] or [len(html)])
    return html[start:end]
