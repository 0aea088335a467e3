"""Moderation of rating comments (issue 15, step 5): a member who served reports a
comment once; the community's secretary hides it with a reason (never deleted,
audited, gone from every page and API where comments show, except to him), dismisses
a report, unhides; nobody moderates a rating of a delivery he served in or gave."""

from __future__ import annotations

import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import AuditEntry, Rating, Role
from volunteer_market.services import users as user_service

from ..conftest import login, post_form
from ..factories import rate_delivery

COMMENT = "服务员态度很差，骂人"


def rated(scene, comment: str | None = COMMENT, who=None, **kw):
    """resident_a rates the scene's delivery with ``comment``; return the Rating."""
    return rate_delivery(who or scene.world.resident_a, scene.delivery, 2, comment, **kw).rating


def report(api, who, rating_id, reason="不实评价"):
    return api.post(who, f"/api/v1/ratings/{rating_id}/reports", {"reason": reason})


def queue(api, who, community, **args):
    return api.get(who, "/api/v1/comment-reports", community_id=community.id, **args)


def comments_seen(api, who, delivery_id) -> list:
    resp = api.get(who, f"/api/v1/deliveries/{delivery_id}/ratings")
    assert resp.status_code == 200, resp.get_json()
    return [(i["comment"], i["comment_hidden"]) for i in resp.get_json()["items"]]


def audit_actions(rating_id: int) -> list[str]:
    db.session.rollback()
    return list(
        db.session.scalars(
            sa.select(AuditEntry.action)
            .where(AuditEntry.object_type == "rating", AuditEntry.object_id == rating_id)
            .where(AuditEntry.action.like("comment.%"))
            .order_by(AuditEntry.id)
        )
    )


def test_report_queue_hide_unhide_end_to_end(api, scene):
    w = scene.world
    rating = rated(scene)
    # both participants report (once each); a second report is 409
    resp = report(api, "member_a", rating.id)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["status"] == "open"
    assert report(api, "member_a2", rating.id, "骂人的话").status_code == 201
    again = report(api, "member_a", rating.id)
    assert again.status_code == 409
    # the secretary's queue shows both with the comment
    page = queue(api, "secretary_a", w.community_a).get_json()
    assert page["total"] == 2
    assert {i["reason"] for i in page["items"]} == {"不实评价", "骂人的话"}
    assert all(i["comment"] == COMMENT and i["can_decide"] for i in page["items"])
    # hide with a reason: the open reports are resolved as hidden
    resp = api.post("secretary_a", f"/api/v1/ratings/{rating.id}/hide", {"reason": "辱骂"})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["comment_hidden"] is True
    assert queue(api, "secretary_a", w.community_a).get_json()["total"] == 0
    hidden = queue(api, "secretary_a", w.community_a, status="hidden").get_json()
    assert hidden["total"] == 2 and {i["status"] for i in hidden["items"]} == {"hidden"}
    # never deleted: the text is still stored
    db.session.rollback()
    stored = db.session.execute(
        sa.select(Rating.comment, Rating.comment_hidden_reason).where(Rating.id == rating.id)
    ).one()
    assert tuple(stored) == (COMMENT, "辱骂")
    # gone for the participants, the rater, the officer; shown (marked) to the secretary
    for who in ("member_a", "member_a2", "resident_a", "officer_street"):
        assert comments_seen(api, who, scene.delivery.id) == [(None, True)], who
    seen = api.get("secretary_a", f"/api/v1/deliveries/{scene.delivery.id}/ratings").get_json()
    assert [(i["comment"], i["comment_hidden"]) for i in seen["items"]] == [(COMMENT, True)]
    assert seen["items"][0]["comment_hidden_reason"] == "辱骂"
    # a hidden comment takes no report and no second hide
    assert report(api, "member_a", rating.id).status_code == 409
    assert (
        api.post("secretary_a", f"/api/v1/ratings/{rating.id}/hide", {"reason": "x"}).status_code
        == 409
    )
    # unhide: visible again; reports stay resolved
    resp = api.post("secretary_a", f"/api/v1/ratings/{rating.id}/unhide", {})
    assert resp.status_code == 200 and resp.get_json()["comment_hidden"] is False
    assert comments_seen(api, "member_a", scene.delivery.id) == [(COMMENT, False)]
    assert api.post("secretary_a", f"/api/v1/ratings/{rating.id}/unhide", {}).status_code == 409
    assert audit_actions(rating.id) == [
        "comment.report",
        "comment.report",
        "comment.hide",
        "comment.unhide",
    ]


def test_hidden_comment_vanishes_from_the_pages(client, api, scene):
    w = scene.world
    rating = rated(scene)
    assert (
        api.post("secretary_a", f"/api/v1/ratings/{rating.id}/hide", {"reason": "辱骂"}).status_code
        == 200
    )
    member = client.application.test_client()
    login(member, "member_a")
    for path in (f"/deliveries/{scene.delivery.id}/ratings", "/ratings"):
        html = member.get(path).get_data(as_text=True)
        assert COMMENT not in html and "评语已被社区书记隐藏" in html, path
    resident = client.application.test_client()
    login(resident, "resident_a")
    assert COMMENT not in resident.get("/ratings").get_data(as_text=True)
    login(client, "secretary_a")
    html = client.get(f"/deliveries/{scene.delivery.id}/ratings").get_data(as_text=True)
    assert COMMENT in html and "已隐藏" in html and "辱骂" in html
    queue_page = client.get(f"/moderation?community_id={w.community_a.id}")
    assert queue_page.status_code == 200 and COMMENT in queue_page.get_data(as_text=True)


def test_who_may_report(api, scene, unchanged):
    w = scene.world
    rating = rated(scene)
    with unchanged():
        # not on the delivery, though they may see it: 403; others: 404
        for who in ("secretary_a", "resident_a", "officer_street", "member_a3"):
            assert report(api, who, rating.id).status_code in (403, 404), who
        for who in ("member_b", "secretary_b", "resident_b"):
            assert report(api, who, rating.id).status_code == 404, who
    assert report(api, w.member_a, rating.id).status_code == 201


def test_report_bad_input_and_wrong_state(api, scene, unchanged):
    no_comment = rated(scene, comment=None)
    with unchanged():
        for body in ({}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 501}, {"reason": 5}):
            resp = api.post("member_a", f"/api/v1/ratings/{no_comment.id}/reports", body)
            assert resp.status_code == 422, body
        assert (
            api.post(
                "member_a", f"/api/v1/ratings/{no_comment.id}/reports", {"reason": "a", "x": 1}
            ).status_code
            == 422
        )
        assert report(api, "member_a", no_comment.id).status_code == 409  # nothing to report
        for bad in ("999999", "0", "abc"):
            assert report(api, "member_a", bad).status_code == 404, bad


def test_who_may_hide_unhide_dismiss(api, scene, unchanged):
    w = scene.world
    rating = rated(scene)
    report_id = report(api, "member_a", rating.id).get_json()["id"]
    with unchanged():
        for who in ("member_a", "member_a2", "resident_a", "grid_a1", "officer_street", "admin"):
            for verb in ("hide", "unhide"):
                resp = api.post(who, f"/api/v1/ratings/{rating.id}/{verb}", {"reason": "x"})
                assert resp.status_code == 403, (who, verb)
        for who in ("secretary_b", "member_b"):
            resp = api.post(who, f"/api/v1/ratings/{rating.id}/hide", {"reason": "x"})
            assert resp.status_code == 404, who
        for who in ("member_a", "grid_a1", "officer_street", "admin", "secretary_b"):
            resp = api.post(who, f"/api/v1/comment-reports/{report_id}/dismiss", {})
            assert resp.status_code == 404, who
        for who in ("member_a", "grid_a1", "officer_street", "admin", "secretary_b"):
            assert queue(api, who, w.community_a).status_code == 403, who
    resp = api.post(
        "secretary_a", f"/api/v1/comment-reports/{report_id}/dismiss", {"reason": "属实"}
    )
    assert resp.status_code == 200 and resp.get_json()["status"] == "dismissed"
    assert (
        api.post("secretary_a", f"/api/v1/comment-reports/{report_id}/dismiss", {}).status_code
        == 409
    )
    assert comments_seen(api, "member_a", scene.delivery.id) == [(COMMENT, False)]
    assert audit_actions(rating.id) == ["comment.report", "comment.dismiss"]


def test_moderation_bad_input(api, scene, unchanged):
    w = scene.world
    rating = rated(scene)
    no_comment = rated(scene, comment=None, who=w.resident_a2)
    with unchanged():
        for body in ({}, {"reason": ""}, {"reason": "x" * 501}, {"reason": None}, {"why": "x"}):
            resp = api.post("secretary_a", f"/api/v1/ratings/{rating.id}/hide", body)
            assert resp.status_code == 422, body
        resp = api.post("secretary_a", f"/api/v1/ratings/{rating.id}/unhide", {"reason": "x" * 501})
        assert resp.status_code == 422
        hide = api.post("secretary_a", f"/api/v1/ratings/{no_comment.id}/hide", {"reason": "x"})
        assert hide.status_code == 409
        assert api.post("secretary_a", f"/api/v1/ratings/{rating.id}/unhide", {}).status_code == 409
        assert (
            api.post("secretary_a", "/api/v1/comment-reports/999999/dismiss", {}).status_code == 404
        )
        for args in ({}, {"community_id": "x"}, {"community_id": "0"}, {"status": "nope"}):
            params = {"community_id": w.community_a.id, **args} if "status" in args else args
            assert api.get("secretary_a", "/api/v1/comment-reports", **params).status_code == 422
        assert queue(api, "secretary_a", w.areas["street"]).status_code == 403
        resp = api.get("secretary_a", "/api/v1/comment-reports", community_id=999999)
        assert resp.status_code == 404


def test_nobody_moderates_his_own_delivery_or_rating(api, scene, unchanged):
    """The no-self-dealing rule: a secretary who served in the delivery, or who entered
    the rating himself (a proxy), may neither hide, unhide nor dismiss."""
    w = scene.world
    with atomic():
        user_service.grant_role(None, db.session.merge(w.member_a2), Role.SECRETARY, w.community_a)
    rating = rated(scene)
    report_id = report(api, "member_a", rating.id).get_json()["id"]
    proxy = rated(scene, who=w.secretary_a, on_behalf_of=w.resident_a2.id)
    with unchanged():
        for path in (
            f"/api/v1/ratings/{rating.id}/hide",
            f"/api/v1/comment-reports/{report_id}/dismiss",
        ):
            assert api.post("member_a2", path, {"reason": "x"}).status_code == 403, path
        assert (
            api.post("secretary_a", f"/api/v1/ratings/{proxy.id}/hide", {"reason": "x"}).status_code
            == 403
        )
    items = queue(api, "member_a2", w.community_a).get_json()["items"]
    assert [i["can_decide"] for i in items] == [False]
    assert (
        api.post("secretary_a", f"/api/v1/ratings/{rating.id}/hide", {"reason": "x"}).status_code
        == 200
    )


def test_moderation_pages(client, scene):
    w = scene.world
    rating = rated(scene)
    member = client.application.test_client()
    login(member, "member_a")
    page = f"/deliveries/{scene.delivery.id}/ratings"
    assert "举报评语" in member.get(page).get_data(as_text=True)
    bad = post_form(member, f"/ratings/{rating.id}/report", {"reason": ""}, token_from=page)
    assert bad.status_code == 422
    ok = post_form(member, f"/ratings/{rating.id}/report", {"reason": "不实"}, token_from=page)
    assert ok.status_code == 302
    again = post_form(member, f"/ratings/{rating.id}/report", {"reason": "不实"}, token_from=page)
    assert again.status_code == 409 and "已经举报过" in again.get_data(as_text=True)
    login(client, "secretary_a")
    html = client.get("/moderation").get_data(as_text=True)
    assert "不实" in html and COMMENT in html
    assert "style=" not in html and "<script" not in html
    bad = post_form(client, f"/ratings/{rating.id}/hide", {"reason": "", "next": "moderation"})
    assert bad.status_code == 422
    done = post_form(client, f"/ratings/{rating.id}/hide", {"reason": "辱骂", "next": "moderation"})
    assert done.status_code == 302 and "/moderation" in done.headers["Location"]
    assert "辱骂" in client.get("/moderation").get_data(as_text=True)
    done = post_form(client, f"/ratings/{rating.id}/unhide", {"next": "moderation"})
    assert done.status_code == 302
    assert client.get(f"/moderation?community_id={w.community_b.id}").status_code == 404
    assert client.get("/moderation?community_id=abc").status_code == 404
    assert member.get("/moderation").status_code == 403
    assert post_form(member, f"/ratings/{rating.id}/hide", {"reason": "x"}).status_code == 403


def test_a_hidden_comment_is_kept_when_the_rating_changes(client, api, scene, unchanged):
    """The rater may still change the score; the hidden text cannot be replaced (or
    wiped by the page's edit form, which then has no comment field)."""
    rating = rated(scene)
    path = f"/api/v1/ratings/{rating.id}/hide"
    assert api.post("secretary_a", path, {"reason": "辱骂"}).status_code == 200
    with unchanged():
        for comment in ("改过的评语", "", None):
            resp = api.patch("resident_a", f"/api/v1/ratings/{rating.id}", {"comment": comment})
            assert resp.status_code == 409, comment
    resp = api.patch("resident_a", f"/api/v1/ratings/{rating.id}", {"score": 4})
    assert resp.status_code == 200, resp.get_json()
    assert (resp.get_json()["comment"], resp.get_json()["comment_hidden"]) == (None, True)
    login(client, "resident_a")
    page = f"/deliveries/{scene.delivery.id}/ratings"
    assert "不能修改" in client.get(page).get_data(as_text=True)
    done = post_form(client, f"/ratings/{rating.id}/edit", {"score": "3"}, token_from=page)
    assert done.status_code == 302
    db.session.rollback()
    stored = db.session.execute(
        sa.select(Rating.score, Rating.comment, Rating.comment_hidden_reason).where(
            Rating.id == rating.id
        )
    ).one()
    assert tuple(stored) == (3, COMMENT, "辱骂")
