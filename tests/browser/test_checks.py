"""The checks themselves can fail: each one on a page made to break it."""

from __future__ import annotations

import pytest

from . import checks

pytestmark = pytest.mark.browser

BROKEN = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>坏页面</title></head>
<body><main><img src="x.png"><div style="width:900px">宽</div>
<button>小</button><p>Submit 提交</p></main></body></html>"""


def test_every_check_finds_its_defect(browser, live_server, axe_source, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(BROKEN, encoding="utf-8")
    browser.get(page.as_uri())
    found = checks.check_page(browser, axe_source, "zh_CN", masks=[])
    assert any(v.startswith("image-alt (critical)") for v in found["axe"]), found["axe"]
    assert found["overflow"], found
    assert any(t.startswith('button "小"') for t in found["targets"]), found["targets"]
    assert any("Submit" in p for p in found["language"]), found["language"]


def test_language_check_masks_data_but_not_ui():
    masks = ["王奶奶", "member_chen"]
    assert checks.language_problems(["王奶奶 · 3 times"], "en", masks) == []
    assert checks.language_problems(["Rated by：王奶奶"], "en", masks)  # full-width colon
    assert checks.language_problems(["member_chen 已通过"], "zh_CN", masks) == []
    assert (
        checks.language_problems(["下载 Excel", "English", "A1B2C3", "（.xlsx）"], "zh_CN", masks)
        == []
    )
    assert checks.language_problems(["redemption.held"], "zh_CN", masks)
    assert checks.language_problems(["中文"], "en", masks) == []
