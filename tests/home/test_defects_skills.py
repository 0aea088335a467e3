"""Issue 17 item 6: a 5,000-character "所需技能" is refused with a message under the field."""

from __future__ import annotations

import re

import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import Project

from ..conftest import login, post_form
from ..projects.test_pages import form_of


def test_overlong_skills_are_refused_with_a_message(client, world):
    login(client, "member_a")
    resp = post_form(
        client, "/projects/new", form_of(world, skills="理" * 5000), token_from="/projects/new"
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    errors = re.findall(r'<ul class="field-errors"[^>]*>(.*?)</ul>', html, re.S)
    assert len(errors) == 1 and "<li>" in errors[0], errors  # under 所需技能
    assert not re.search(r"[A-Za-z]{3,}", re.sub(r"<[^>]+>", "", errors[0])), errors  # in Chinese
    assert html.index('id="skills"') < html.index('class="field-errors"')
    db.session.remove()
    assert db.session.scalar(sa.select(sa.func.count(Project.id))) == 0
