"""A community's points policy through the API: who reads it, who makes a new version
(201, version n+1, audited), the difference from the version before, validation that
changes nothing, and settlements that keep the version they used (a change never
reaches points already earned)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import AuditEntry, LedgerEntry, PointsPolicy, Settlement

from ..factories import points_of, rate_delivery


def path(community) -> str:
    return f"/api/v1/communities/{community.id}/points-policy"


def versions(community) -> list[int]:
    return list(
        db.session.scalars(
            sa.select(PointsPolicy.version)
            .where(PointsPolicy.community_id == community.id)
            .order_by(PointsPolicy.version)
        )
    )


@pytest.mark.parametrize(
    "who", ["member_a", "resident_a", "grid_a1", "secretary_a", "officer_street", "admin"]
)
def test_anyone_of_the_community_reads_it(api, world, who):
    resp = api.get(who, path(world.community_a))
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["inherited"] is True and body["previous"] is None and body["changes"] == []
    policy = body["policy"]
    assert (policy["base_rate"], policy["hours_cap"], policy["expiry"]) == (10, 8, "none")
    assert policy["multipliers"] == [[4.5, 1.2], [3.5, 1.0], [2.5, 0.5]]


@pytest.mark.parametrize("who", ["member_b", "resident_b", "secretary_b", "officer_other"])
def test_other_communities_do_not_see_it(api, world, who):
    assert api.get(who, path(world.community_a)).status_code == 404
    assert api.put(who, path(world.community_a), json={"base_rate": 20}).status_code == 404
    assert versions(world.community_a) == []


def test_not_a_community_is_not_found(api, world):
    assert (
        api.get("admin", f"/api/v1/communities/{world.street.id}/points-policy").status_code == 404
    )
    assert api.get("admin", "/api/v1/communities/99999/points-policy").status_code == 404


def test_secretary_and_officer_make_new_versions(api, world):
    resp = api.put("secretary_a", path(world.community_a), json={"base_rate": 12, "hours_cap": 4})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["policy"]["version"] == 1 and body["inherited"] is False
    assert body["previous"]["community_id"] is None  # the default it replaced
    assert {c["term"]: (c["before"], c["after"]) for c in body["changes"]} == {
        "base_rate": (10, 12),
        "hours_cap_minutes": (480, 240),
    }
    resp = api.put(
        "officer_street",
        path(world.community_a),
        json={"expiry": "end_of_next_year", "multipliers": [[4, 1.5], [3, 1]]},
    )
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["policy"]["version"] == 2 and body["previous"]["version"] == 1
    assert body["policy"]["base_rate"] == 12  # copied forward
    assert {c["term"] for c in body["changes"]} == {"multipliers", "expiry_rule"}
    assert versions(world.community_a) == [1, 2]
    assert api.get("member_a", path(world.community_a)).get_json()["policy"]["version"] == 2
    audited = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "points_policy.create")
    ).all()
    assert [a.actor_id for a in audited] == [world.secretary_a.id, world.officer_street.id]
    assert audited[0].detail["changed"]["base_rate"] == [10, 12]
    assert audited[0].area_id == world.community_a.id


@pytest.mark.parametrize("who", ["member_a", "resident_a", "grid_a1"])
def test_members_may_not_change_it(api, world, who):
    assert api.put(who, path(world.community_a), json={"base_rate": 99}).status_code == 403
    assert versions(world.community_a) == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"base_rate": -1},
        {"base_rate": 1001},
        {"base_rate": 1.5},
        {"base_rate": "ten"},
        {"base_rate": True},
        {"hours_cap": -2},
        {"hours_cap": 0},
        {"hours_cap": 25},
        {"multipliers": []},
        {"multipliers": [[4.5, 1.2], [4.5, 1.0]]},
        {"multipliers": [[3.5, 1.0], [4.5, 1.2]]},
        {"multipliers": [[6, 1.0]]},
        {"multipliers": [[4, -1]]},
        {"multipliers": [[4, 1, 2]]},
        {"multipliers": "x"},
        {"expiry": "sometimes"},
        {"rating_window_days": 0},
        {"redemption_hold_days": 366},
        {"unrated_multiplier_percent": 10**12},
        {"colour": "red"},
    ],
)
def test_bad_terms_are_422_and_change_nothing(api, world, body):
    api.headers(world.secretary_a)
    audits = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))
    resp = api.put("secretary_a", path(world.community_a), json=body)
    assert resp.status_code == 422, (body, resp.status_code)
    assert resp.get_json()["errors"]
    assert versions(world.community_a) == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == audits


def test_malformed_json_and_huge_numbers_are_400(api, world):
    huge = api.put("secretary_a", path(world.community_a), json={"base_rate": 10**30})
    assert huge.status_code == 400
    resp = api.put(
        "secretary_a",
        path(world.community_a),
        data="{base_rate",
        content_type="application/json",
    )
    assert resp.status_code == 400
    assert versions(world.community_a) == []


def test_a_new_version_never_reaches_a_settled_delivery(api, world, scene):
    """Settlements record the version they used; a raise of the rate applies to later
    settlements only, so the secretary cannot raise what a settled delivery earned."""
    w = scene.world
    assert api.put("secretary_a", path(w.community_a), json={"base_rate": 10}).status_code == 201
    v1 = db.session.scalars(
        sa.select(PointsPolicy).where(PointsPolicy.community_id == w.community_a.id)
    ).one()
    rate_delivery(w.resident_a, scene.delivery, 5)
    rate_delivery(w.resident_a2, scene.delivery, 4)  # every beneficiary rated: settled
    first = db.session.scalars(
        sa.select(Settlement).where(Settlement.delivery_id == scene.delivery.id)
    ).one()
    assert (first.policy_id, first.policy_version) == (v1.id, 1)
    earned = points_of(w.member_a)
    assert earned["available"] == 24  # 2 h x 10 x 1.2
    entries = db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry))

    assert api.put("secretary_a", path(w.community_a), json={"base_rate": 100}).status_code == 201
    db.session.expire_all()
    again = db.session.get(Settlement, first.id)
    assert (again.policy_id, again.policy_version) == (v1.id, 1)
    assert points_of(w.member_a) == earned  # nothing re-earned, nothing adjusted
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)) == entries

    later = scene.record(hours_ago=30)
    rate_delivery(w.resident_a, later, 5)
    rate_delivery(w.resident_a2, later, 4)
    second = db.session.scalars(
        sa.select(Settlement).where(Settlement.delivery_id == later.id)
    ).one()
    assert second.policy_version == 2
    assert points_of(w.member_a)["available"] == 24 + 240  # 2 h x 100 x 1.2


def test_simultaneous_versions_never_share_a_number(app, world):
    """Real threads (a SQLite file, or PostgreSQL with DATABASE_URL): every PUT gets its
    own version or a clear 409, never a duplicate or a 500."""
    from ..factories import bearer
    from ..ledger.conftest import run_threads

    headers = [bearer(u) for u in (world.secretary_a, world.officer_street) * 3]

    def work(i):
        resp = app.test_client().put(
            path(world.community_a), json={"base_rate": 20 + i}, headers=headers[i]
        )
        return resp.status_code

    results = run_threads(len(headers), work)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert set(results) <= {201, 409} and 201 in results
    db.session.rollback()
    got = versions(world.community_a)
    assert got == list(range(1, results.count(201) + 1))
