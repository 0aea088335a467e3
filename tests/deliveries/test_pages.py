"""Delivery pages: recording a session (rating codes shown once) and a recorded
session -- with the right user, wrong users and bad input."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import (
    Delivery,
)

from ..factories import make_delivery, make_project
from ..projects.conftest import assert_csp_clean, now, post, text


def _local(dt) -> str:
    from zoneinfo import ZoneInfo

    return dt.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%dT%H:%M")


def delivery_form(world, hours_a="2", hours_a2="1.5", **over):
    start = now() - timedelta(hours=4)
    return {
        "started_at": _local(start),
        "ended_at": _local(start + timedelta(hours=2)),
        f"participant_{world.member_a.id}": "1",
        f"hours_{world.member_a.id}": hours_a,
        f"participant_{world.member_a2.id}": "1",
        f"hours_{world.member_a2.id}": hours_a2,
        "beneficiaries": [str(world.resident_a.id), str(world.resident_a2.id)],
        **over,
    }


def test_record_delivery_page_shows_no_codes(as_user, world):
    """Issue 15: the recorder is a participant; no page he sees carries a rating code."""
    project = make_project(
        world.member_a, world.community_a, status="approved", team=[world.member_a2]
    )
    c = as_user("member_a")
    page = c.get(f"/projects/{project.id}/deliveries/new")
    assert page.status_code == 200 and "resident_a2" in text(page)
    assert_csp_clean(text(page))
    resp = post(c, f"/projects/{project.id}/deliveries/new", delivery_form(world))
    assert resp.status_code == 201, text(resp)[:3000]
    html = text(resp)
    assert not re.findall(r'<p class="pickup-code">', html)
    assert "data:image/svg+xml" not in html and "/rate/" not in html
    assert "等您评价" in html  # how the residents rate instead
    assert_csp_clean(html)
    delivery = db.session.scalars(sa.select(Delivery)).one()
    detail = text(c.get(f"/deliveries/{delivery.id}"))
    assert "resident_a" in detail
    assert "/slips" not in detail  # no slip button for a participant


@pytest.mark.parametrize(
    "over, field_text",
    [
        ({"hours_a": "3"}, "不能超过本次服务时长"),
        ({"hours_a": ""}, "必填"),
        ({"ended_at": ""}, "必填"),
        ({"beneficiaries": [str(10**6)]}, "用户 1000000 不是本社区居民。"),
    ],
)
def test_record_delivery_form_errors(as_user, world, unchanged, over, field_text):
    project = make_project(
        world.member_a, world.community_a, status="approved", team=[world.member_a2]
    )
    form = delivery_form(world, hours_a=over.pop("hours_a", "2"), **over)
    with unchanged():
        resp = post(as_user("member_a"), f"/projects/{project.id}/deliveries/new", form)
    assert resp.status_code == 422
    assert field_text in text(resp)


def test_record_delivery_permissions(as_user, world, unchanged):
    project = make_project(
        world.member_a, world.community_a, status="approved", team=[world.member_a2]
    )
    from volunteer_market.database import atomic
    from volunteer_market.services import projects as project_service

    with atomic():
        project_service.request_join(world.member_a3, project)
    path = f"/projects/{project.id}/deliveries/new"
    for who, code in (
        ("member_a3", 403),
        ("secretary_a", 403),
        ("resident_a", 403),
        ("member_b", 403),
    ):
        assert as_user(who).get(path).status_code == code
        with unchanged():
            assert post(as_user(who), path, delivery_form(world)).status_code == code
    # an active team member may record
    assert as_user("member_a2").get(path).status_code == 200
    completed = make_project(world.member_a, world.community_a, status="completed", title="已结项")
    with unchanged():
        resp = post(
            as_user("member_a"), f"/projects/{completed.id}/deliveries/new", delivery_form(world)
        )
    assert resp.status_code == 409


def test_delivery_detail_visibility(as_user, world):
    project = make_project(world.member_a, world.community_a, status="approved")
    recorded = make_delivery(project, world.member_a, beneficiaries=[world.resident_a])
    path = f"/deliveries/{recorded.delivery.id}"
    for who, code in (
        ("member_a", 200),
        ("resident_a", 200),
        ("secretary_a", 200),
        ("resident_a2", 404),
        ("secretary_b", 404),
    ):
        assert as_user(who).get(path).status_code == code, who
