"""No self-dealing (issue 15, step 2): one rule in the policy, across every point-moving
action. The secretary of community A also holds a member role there (granted by the
admin, as a real secretary who serves as a member would); whatever roles he holds, he
never grants himself a role, adjusts or reverses his own points, settles, reviews,
fulfils, rates or issues slips for an object whose points would reach him. A second
secretary of A does each of these for him (the control), and the ledger verifies.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import LedgerTransaction, Role, RoleGrant, utcnow
from volunteer_market.services import permissions
from volunteer_market.services import users as user_service
from volunteer_market.services.permissions.self_dealing import GUARDED_ACTIONS, beneficiaries_of

from ..conftest import csrf_token, login
from ..factories import (
    bearer,
    give_points,
    make_delivery,
    make_project,
    make_reward,
    make_user,
    points_of,
    redeem,
    verified,
)


class Caller:
    def __init__(self, client):
        self.client = client
        self._h: dict[int, dict[str, str]] = {}

    def __call__(self, method, user, path, json=None):
        if user.id not in self._h:
            self._h[user.id] = bearer(user)
        return self.client.open(path, method=method, headers=self._h[user.id], json=json)


def fresh_points(user) -> dict[str, int]:
    """``points_of`` read in a new transaction: the test's own read transaction (a
    snapshot on SQLite's WAL) would otherwise not see a commit made by a request that ran
    on another connection."""
    user_id = user.id
    db.session.rollback()
    return points_of(user_id)


@pytest.fixture
def call(client):
    return Caller(client)


@pytest.fixture
def sec(world):
    """secretary_a, who also holds a member role in community A (granted by the admin)."""
    with atomic():
        user_service.grant_role(
            world.admin, db.session.merge(world.secretary_a), Role.MEMBER, world.community_a
        )
    return world.secretary_a


@pytest.fixture
def sec2(world):
    """A second secretary of community A: the one who may act for ``sec``."""
    return make_user("secretary_a2", (Role.SECRETARY, world.community_a))


def grants_of(user) -> set[tuple[str, int | None]]:
    db.session.expire_all()
    rows = db.session.scalars(
        sa.select(RoleGrant).where(RoleGrant.user_id == user.id, RoleGrant.revoked_at.is_(None))
    )
    return {(g.role.value, g.area_id) for g in rows}


def test_the_rule_guards_every_point_moving_action():
    known = set(permissions.actions())
    assert GUARDED_ACTIONS - {"appeal.decide"} <= known
    for action in (
        "role.grant",
        "ledger.adjust",
        "ledger.reverse",
        "settlement.settle",
        "redemption.handle",
        "project.review",
        "rating.proxy",
        "delivery.slips",
    ):
        assert action in GUARDED_ACTIONS


def test_nobody_grants_himself_a_role(call, world, sec):
    before = grants_of(world.secretary_a)
    for role, area in (
        ("member", world.community_a),
        ("grid_worker", world.areas["grid_a1"]),
        ("resident", world.areas["grid_a1"]),
    ):
        resp = call(
            "POST",
            world.secretary_a,
            f"/api/v1/users/{world.secretary_a.id}/roles",
            {"role": role, "area_id": area.id},
        )
        assert resp.status_code == 403, (role, resp.get_json())
    assert grants_of(world.secretary_a) == before
    # not even the admin grants himself a community role
    resp = call(
        "POST",
        world.admin,
        f"/api/v1/users/{world.admin.id}/roles",
        {"role": "secretary", "area_id": world.community_a.id},
    )
    assert resp.status_code == 403
    # control: he grants the same role to somebody else
    resp = call(
        "POST",
        world.secretary_a,
        f"/api/v1/users/{world.resident_a.id}/roles",
        {"role": "member", "area_id": world.community_a.id},
    )
    assert resp.status_code == 201, resp.get_json()


def test_secretary_grants_himself_member_then_adjusts_himself(call, world):
    """The path the issue found: grant himself member, then post adjustments to himself."""
    s = world.secretary_a
    r = call(
        "POST",
        s,
        f"/api/v1/users/{s.id}/roles",
        {"role": "member", "area_id": world.community_a.id},
    )
    assert r.status_code == 403
    assert ("member", world.community_a.id) not in grants_of(s)


def test_no_adjustment_of_his_own_points(call, client, world, sec, sec2):
    body = {"user_id": sec.id, "amount": 288, "reason": "自己给自己加分"}
    resp = call("POST", sec, "/api/v1/adjustments", body)
    assert resp.status_code == 403, resp.get_json()
    login(client, sec.username)
    token = csrf_token(client, f"/ledger/members/{sec.id}")
    page = client.post(
        f"/ledger/members/{sec.id}/adjust",
        data={"amount": "288", "reason": "自己给自己加分", "csrf_token": token},
    )
    assert page.status_code == 403
    assert points_of(sec)["available"] == 0
    # control: the other secretary adjusts him
    resp = call("POST", sec2, "/api/v1/adjustments", {**body, "reason": "补录"})
    assert resp.status_code == 201, resp.get_json()
    assert points_of(sec)["available"] == 288
    verified()


def test_no_reversal_of_his_own_transaction(call, world, sec, sec2):
    give_points(sec, 50, world.community_a)
    assert (
        call(
            "POST",
            sec2,
            "/api/v1/adjustments",
            {"user_id": sec.id, "amount": -20, "reason": "扣分"},
        ).status_code
        == 201
    )
    penalty = db.session.scalars(
        sa.select(LedgerTransaction)
        .where(LedgerTransaction.member_id == sec.id)
        .order_by(LedgerTransaction.id.desc())
    ).first()
    resp = call("POST", sec, f"/api/v1/transactions/{penalty.id}/reverse", {"reason": "撤销"})
    assert resp.status_code == 403, resp.get_json()
    assert fresh_points(sec)["available"] == 30
    resp = call("POST", sec2, f"/api/v1/transactions/{penalty.id}/reverse", {"reason": "撤销"})
    assert resp.status_code == 201, resp.get_json()
    assert fresh_points(sec)["available"] == 50
    verified()


@pytest.mark.parametrize("served", [True, False], ids=["participant", "recorder"])
def test_no_settlement_of_his_own_delivery(call, world, sec, sec2, served):
    project = make_project(world.member_a, world.community_a, status="approved", team=[sec])
    parts = [(world.member_a, 2), (sec, 2)] if served else [(world.member_a, 2)]
    d = make_delivery(
        project,
        sec,
        participants=parts,
        beneficiaries=[world.resident_a],
        now=utcnow() - timedelta(days=8),
    ).delivery
    path = f"/api/v1/deliveries/{d.id}/settle"
    resp = call("POST", sec, path, {"confirm_unrated": True})
    assert resp.status_code == 403, resp.get_json()
    assert points_of(sec)["earned_total"] == 0
    resp = call("POST", sec2, path, {"confirm_unrated": True})
    assert resp.status_code == 200, resp.get_json()
    verified()


def test_no_review_of_a_project_he_is_on(call, world, sec, sec2):
    project = make_project(world.member_a, world.community_a, status="submitted", team=[sec])
    path = f"/api/v1/projects/{project.id}/review"
    assert call("POST", sec, path, {"decision": "approve"}).status_code == 403
    assert call("POST", sec2, path, {"decision": "approve"}).status_code == 200


def test_no_fulfilment_of_his_own_redemption(call, world, sec, sec2):
    give_points(sec, 50, world.community_a)
    reward = make_reward(world.community_a)
    issued = redeem(sec, reward)
    path = f"/api/v1/redemptions/{issued.redemption.id}/fulfil"
    body = {"pickup_code": issued.pickup_code}
    assert call("POST", sec, path, body).status_code == 403
    assert call("POST", sec2, path, body).status_code == 200
    verified()


def test_no_rating_or_slips_for_his_own_delivery(call, world, sec, sec2):
    project = make_project(world.member_a, world.community_a, status="approved", team=[sec])
    d = make_delivery(
        project,
        world.member_a,
        participants=[(world.member_a, 2), (sec, 2)],
        beneficiaries=[world.resident_a],
        slips=False,
    ).delivery
    r = call(
        "POST",
        sec,
        f"/api/v1/deliveries/{d.id}/ratings",
        {"score": 5, "on_behalf_of": world.resident_a.id},
    )
    assert r.status_code == 403
    assert call("GET", sec, f"/api/v1/deliveries/{d.id}/rating-slips").status_code == 403
    assert call("GET", sec2, f"/api/v1/deliveries/{d.id}/rating-slips").status_code == 200


def test_beneficiaries_of_each_target(world, sec):
    from volunteer_market.services.ledger import AdjustTarget
    from volunteer_market.services.permissions import GrantTarget

    project = make_project(world.member_a, world.community_a, status="approved", team=[sec])
    add = make_delivery(
        project,
        world.member_a,
        participants=[(world.member_a, 1)],
        beneficiaries=[world.resident_a],
        slips=False,
    ).delivery
    assert beneficiaries_of(add) == {world.member_a.id}
    assert beneficiaries_of(project) == {world.member_a.id, sec.id}
    assert beneficiaries_of(AdjustTarget(sec, world.community_a)) == {sec.id}
    assert beneficiaries_of(GrantTarget(Role.MEMBER, world.community_a, sec)) == {sec.id}
    assert beneficiaries_of(GrantTarget(Role.MEMBER, world.community_a)) == set()
    assert beneficiaries_of(world.community_a) == set()
    assert beneficiaries_of(None) == set()
