"""Destructive actions ask for confirmation without JavaScript: every page form that
rejects, cancels, revokes, declines, leaves, hides, dismisses, releases or reverses has
its submit button inside a ``<details>`` step (``templates/_confirm.html``), so the first
tap only opens the step; the form itself posts as before. Decisions made with a select
and a required reason (an appeal's decision, an objection's answer) are not single
destructive buttons and are not matched."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import Need, NeedStatus

from ..conftest import login, post_form
from ..factories import make_need

TEMPLATES = Path(__file__).resolve().parents[2] / "volunteer_market" / "templates"
#: What makes a form destructive: its action's verb or endpoint, or a submit value.
DESTRUCTIVE = re.compile(
    r"verb='(reject|cancel|decline|leave|release)'|web_(ratings\.hide|moderation\.dismiss"
    r"|ledger\.reverse|redemptions\.(reject|cancel))|value=\"(revoke|cancel)\""
    r"|value=\"reject\"|value='reject'"
)
FORM = re.compile(r"<form\b.*?</form>", re.S)


def _unconfirmed(path: Path) -> list[str]:
    source = path.read_text(encoding="utf-8")
    out = []
    for match in FORM.finditer(source):
        block = match.group(0)
        if not DESTRUCTIVE.search(block):
            continue
        before = source[: match.start()]
        inside_details = before.count("<details") > before.count("</details>")
        if "confirm_button(" in block or inside_details:
            continue
        out.append(block[:120])
    return out


def test_every_destructive_form_is_confirmed():
    found = {}
    checked = 0
    for path in sorted(TEMPLATES.rglob("*.html")):
        rel = path.relative_to(TEMPLATES).as_posix()
        source = path.read_text(encoding="utf-8")
        checked += len([m for m in FORM.finditer(source) if DESTRUCTIVE.search(m.group(0))])
        problems = _unconfirmed(path)
        if problems:
            found[rel] = problems
    assert not found, found
    assert checked >= 15  # the scan sees the forms (a broken pattern would see none)


def test_the_scan_sees_an_unconfirmed_form(tmp_path):
    page = tmp_path / "x.html"
    page.write_text(
        '<form method="post" action="{{ url_for(\'web_needs.need_action\', need_id=1, '
        'verb=\'cancel\') }}"><button type="submit">取消</button></form>',
        encoding="utf-8",
    )
    assert _unconfirmed(page)


def test_the_needs_page_asks_before_cancelling(client, world):
    need = make_need(world.resident_a, world.community_a)
    login(client, "resident_a")
    html = client.get("/needs").get_data(as_text=True)
    form = next(m.group(0) for m in FORM.finditer(html) if f"/needs/{need.id}/cancel" in m.group(0))
    assert '<details class="confirm-box">' in form
    assert "<summary" in form and "确认取消需求" in form
    assert form.index("<summary") < form.index('type="submit"')
    # the form posts as before: one tap on the confirm button cancels
    resp = post_form(client, f"/needs/{need.id}/cancel", {}, token_from="/needs")
    assert resp.status_code == 302
    db.session.remove()
    status = db.session.execute(sa.select(Need.status).where(Need.id == need.id)).scalar_one()
    assert status == NeedStatus.CANCELLED


def test_english_confirm_step(client, world):
    make_need(world.resident_a, world.community_a)
    login(client, "resident_a")
    html = client.get("/needs?lang=en").get_data(as_text=True)
    assert "Confirm: " in html and "Please confirm: this takes effect at once." in html
