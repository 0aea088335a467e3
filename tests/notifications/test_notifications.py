"""Notification pages and API: my notifications, the unread count, marking read."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import (
    Notification,
)

from ..factories import make_project
from ..projects.conftest import assert_csp_clean, fresh, post, text


def test_notification_page_and_unread_count(as_user, world):
    project = make_project(world.member_a, world.community_a, status="submitted")
    c = as_user("member_a")
    html = text(c.get("/notifications"))
    assert "已提交审核" in html
    assert 'class="badge-count">1<' in html  # the nav shows the unread count
    assert_csp_clean(html)
    post(as_user("secretary_a"), f"/projects/{project.id}/review", {"decision": "approve"})
    html = text(c.get("/notifications"))
    assert "审核通过" in html and 'class="badge-count">2<' in html
    first = db.session.scalars(
        sa.select(Notification)
        .where(Notification.user_id == world.member_a.id)
        .order_by(Notification.id)
    ).first()
    assert post(c, "/notifications", {"id": str(first.id)}).status_code == 302
    assert 'class="badge-count">1<' in text(c.get("/notifications"))
    # marking someone else's notification read changes nothing
    secretary_note = db.session.scalars(
        sa.select(Notification).where(Notification.user_id == world.secretary_a.id)
    ).first()
    post(c, "/notifications", {"id": str(secretary_note.id)})
    fresh()
    assert db.session.get(Notification, secretary_note.id).read_at is None
    assert post(c, "/notifications").status_code == 302
    assert "badge-count" not in text(c.get("/notifications"))


@pytest.mark.parametrize("bad", [str(10**20), "2147483648"])
def test_marking_an_impossible_id_read_marks_nothing(as_user, world, bad):
    make_project(world.member_a, world.community_a, status="submitted")
    c = as_user("member_a")
    assert post(c, "/notifications", {"id": bad}).status_code == 302
    assert 'class="badge-count">1<' in text(c.get("/notifications"))  # still unread


def test_notifications_api(api, world):
    make_project(world.member_a, world.community_a, status="approved")
    body = api.get("member_a", "/api/v1/notifications").get_json()
    assert body["unread_count"] == 2 and body["total"] == 2
    kinds = [n["kind"] for n in body["items"]]
    assert kinds == ["project.approve", "project.submit"]
    first = body["items"][1]["id"]
    resp = api.post("member_a", "/api/v1/notifications/read", {"ids": [first]})
    assert resp.get_json() == {"marked": 1, "unread_count": 1}
    assert api.get("member_a", "/api/v1/notifications", unread="true").get_json()["total"] == 1
    # another user's ids are ignored
    resp = api.post("member_a2", "/api/v1/notifications/read", {"ids": [first]})
    assert resp.get_json()["marked"] == 0
    resp = api.post("member_a", "/api/v1/notifications/read", {"ids": ["x"]})
    assert resp.status_code == 422
    resp = api.post("member_a", "/api/v1/notifications/read", {"all": True})
    assert resp.status_code == 422
    assert api.post("member_a", "/api/v1/notifications/read").get_json()["unread_count"] == 0
