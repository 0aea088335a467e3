"""Access-control matrix over every rule of ``app.url_map`` (issue 8, item 1).

Every (route, method) has one line in :data:`MATRIX` naming the actors that are
allowed. Objects in the URL always belong to community **B** (or to its street),
so every caller from community A -- resident, member, grid worker, secretary --
must be refused (401/403/404, or a redirect to the login page): no IDOR. Nobody
may ever get a 5xx. ``test_every_route_is_in_the_matrix`` fails, listing the
routes, when a route is added to the app without a line here.

Adding a route: one line in :data:`MATRIX`, ``("METHOD", "/rule"): ALLOWED_SET``.

Outcomes:

* *refused* (every route) = 401/403/404, or for anonymous page requests a redirect to
  ``/login``. A 400/409/422 is never a refusal: the permission check must come first.
* *allowed*, routes in :data:`BODIES` (those that validate the body before the
  permission check) = 2xx/3xx: each is sent a VALID body built from objects of
  community B, with a fresh object of its own where a success changes state (a proxy
  rating, a dispatch, a review, a fulfil/reject, a reversal, a redemption, a role
  grant), so its outcome is the real permission outcome for every caller. No route
  needs an escape hatch and none is left out; 409 is accepted nowhere (for the role
  grant, whose two allowed callers would collide, the second grants another role).
  As these routes validate the body first, a signed-in caller's 401/403/404 also
  proves the body sent was valid (an invalid one would be 422).
* *allowed*, other routes = not 401/403/404, no redirect to ``/login`` and < 500. They
  get an empty body, so an allowed caller may get 400/409/422; since the refused
  callers of the same route get 401/403/404 with the same request, the permission
  check runs before the body/state checks there, and the 409/422 is past the gate.

Refused callers run before allowed ones on every route, so no allowed caller's write
can turn a later refusal into a state error (or hide one).

Actors (objects are in community B, owned by ``member_b``):

=============  ==============================================================
anon           no session, no token
resident       resident_a (community A)
member         member_a (community A)
non_owner      member_b2: a member of community B who owns nothing
grid           grid_a1 (grid worker in community A)
sec_this       secretary_b (secretary of B, the objects' community)
sec_other      secretary_a (secretary of A)
officer_out    officer_other (officer of the other street, outside B's subtree)
admin          admin
=============  ==============================================================
"""

from __future__ import annotations

import contextvars
import re
from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from volunteer_market.database import atomic
from volunteer_market.models import Role, utcnow

from ..factories import (
    add_team_member,
    bearer,
    give_points,
    make_delivery,
    make_need,
    make_project,
    make_reward,
    make_user,
    redeem,
)

ACTORS = (
    "anon",
    "resident",
    "member",
    "non_owner",
    "grid",
    "sec_this",
    "sec_other",
    "officer_out",
    "admin",
)
USERNAMES = {
    "resident": "resident_a",
    "member": "member_a",
    "non_owner": "member_b2",
    "grid": "grid_a1",
    "sec_this": "secretary_b",
    "sec_other": "secretary_a",
    "officer_out": "officer_other",
    "admin": "admin",
}

# --- actor sets -------------------------------------------------------------------------------
EVERYONE = frozenset(ACTORS)
SIGNED_IN = EVERYONE - {"anon"}
NOBODY: frozenset[str] = frozenset()
ADMIN = frozenset({"admin"})
B_STAFF = frozenset({"sec_this", "admin"})  # may manage objects of community B
B_VIEW = B_STAFF | {"non_owner"}  # may see B's public objects (a member of B)
MEMBERS = frozenset({"member", "non_owner"})
STAFF = frozenset({"grid", "sec_this", "sec_other", "officer_out", "admin"})

# Routes never checked (served to everyone, no data): static files and the API docs.
SKIP = {
    ("GET", "/static/<path:filename>"),
    ("GET", "/api/v1/openapi.json"),
}

# (method, rule) -> allowed actors. URL placeholders are filled from OBJECTS.
MATRIX: dict[tuple[str, str], frozenset[str]] = {
    # --- pages ---------------------------------------------------------------------------
    ("GET", "/"): SIGNED_IN,
    ("GET", "/login"): EVERYONE,
    ("POST", "/login"): NOBODY,
    ("POST", "/logout"): SIGNED_IN,
    ("GET", "/profile"): SIGNED_IN,
    ("POST", "/profile"): SIGNED_IN,
    ("GET", "/admin/areas"): ADMIN,
    ("POST", "/admin/areas"): ADMIN,
    ("GET", "/admin/users"): frozenset({"sec_this", "sec_other", "admin"}),
    ("POST", "/admin/users"): frozenset({"sec_this", "sec_other", "admin"}),
    ("GET", "/admin/users/<int:user_id>"): B_STAFF,
    ("POST", "/admin/users/<int:user_id>"): B_STAFF,
    ("GET", "/deliveries/<int:delivery_id>"): B_STAFF,
    ("GET", "/deliveries/<int:delivery_id>/photo"): NOBODY,
    ("GET", "/deliveries/<int:delivery_id>/ratings"): B_STAFF,
    ("POST", "/deliveries/<int:delivery_id>/ratings"): B_STAFF,
    ("POST", "/deliveries/<int:delivery_id>/settle"): frozenset({"sec_this"}),
    ("GET", "/ledger/members"): frozenset({"sec_this", "sec_other", "officer_out"}),
    ("GET", "/ledger/members/<int:user_id>"): frozenset({"sec_this"}),
    ("POST", "/ledger/members/<int:user_id>/adjust"): frozenset({"sec_this"}),
    ("POST", "/ledger/transactions/<int:tx_id>/reverse"): frozenset({"sec_this"}),
    ("GET", "/needs"): SIGNED_IN,
    ("POST", "/needs/<int:need_id>/<string:verb>"): frozenset({"sec_this"}),
    ("GET", "/needs/new"): frozenset({"resident", "grid"}),
    ("POST", "/needs/new"): frozenset({"resident", "grid"}),
    ("GET", "/notifications"): SIGNED_IN,
    ("POST", "/notifications"): SIGNED_IN,
    ("GET", "/points"): SIGNED_IN,
    ("GET", "/projects"): SIGNED_IN,
    ("GET", "/projects/<int:project_id>"): B_VIEW,
    ("POST", "/projects/<int:project_id>/action"): SIGNED_IN,
    ("GET", "/projects/<int:project_id>/cover"): NOBODY,
    ("GET", "/projects/<int:project_id>/deliveries/new"): NOBODY,
    ("POST", "/projects/<int:project_id>/deliveries/new"): NOBODY,
    ("GET", "/projects/<int:project_id>/edit"): NOBODY,
    ("POST", "/projects/<int:project_id>/edit"): NOBODY,
    ("POST", "/projects/<int:project_id>/order"): NOBODY,
    ("POST", "/projects/<int:project_id>/review"): B_VIEW,
    ("POST", "/projects/<int:project_id>/team/<int:user_id>/<string:verb>"): NOBODY,
    ("POST", "/projects/<int:project_id>/team/<string:verb>"): NOBODY,
    ("GET", "/projects/mine"): SIGNED_IN,
    ("GET", "/projects/new"): frozenset({"member", "non_owner"}),
    ("POST", "/projects/new"): frozenset({"member", "non_owner"}),
    ("GET", "/rankings"): SIGNED_IN,
    ("GET", "/rankings/communities"): frozenset({"sec_this", "sec_other", "officer_out", "admin"}),
    ("POST", "/rankings/settings/<int:area_id>"): B_STAFF,
    ("GET", "/rankings/teams"): frozenset({"sec_this", "sec_other", "officer_out", "admin"}),
    ("GET", "/rate"): EVERYONE,
    ("POST", "/rate"): EVERYONE,
    ("GET", "/rate/<token>"): NOBODY,
    ("POST", "/rate/<token>"): NOBODY,
    ("GET", "/ratings"): frozenset({"resident", "member", "non_owner"}),
    ("POST", "/ratings/<int:rating_id>/edit"): B_STAFF,
    ("POST", "/ratings/<int:rating_id>/reply"): B_STAFF,
    ("GET", "/redemptions"): SIGNED_IN,
    ("GET", "/redemptions/<int:redemption_id>"): B_STAFF,
    ("POST", "/redemptions/<int:redemption_id>/cancel"): frozenset({"sec_this"}),
    ("POST", "/redemptions/<int:redemption_id>/reject"): frozenset({"sec_this"}),
    ("GET", "/redemptions/mine"): SIGNED_IN,
    ("GET", "/review"): frozenset({"sec_this", "sec_other"}),
    ("GET", "/rewards"): frozenset({"member", "non_owner"}),
    ("GET", "/rewards/<int:reward_id>"): B_VIEW,
    ("GET", "/rewards/<int:reward_id>/edit"): frozenset({"sec_this"}),
    ("POST", "/rewards/<int:reward_id>/edit"): frozenset({"sec_this"}),
    ("GET", "/rewards/<int:reward_id>/image"): NOBODY,
    ("POST", "/rewards/<int:reward_id>/redeem"): frozenset({"non_owner"}),
    ("POST", "/rewards/<int:reward_id>/retire"): frozenset({"sec_this"}),
    ("GET", "/rewards/<int:reward_id>/stock"): frozenset({"sec_this"}),
    ("GET", "/rewards/fulfil"): frozenset({"sec_this", "sec_other"}),
    ("POST", "/rewards/fulfil"): NOBODY,
    ("GET", "/rewards/manage"): frozenset({"sec_this", "sec_other", "officer_out"}),
    ("GET", "/rewards/new"): frozenset({"sec_this", "sec_other", "officer_out"}),
    ("POST", "/rewards/new"): frozenset({"sec_this", "sec_other", "officer_out"}),
    ("GET", "/rewards/stock"): frozenset({"sec_this", "sec_other", "officer_out"}),
    ("GET", "/settlement"): frozenset({"sec_this", "sec_other"}),
    # --- API -----------------------------------------------------------------------------
    ("POST", "/api/v1/auth/token"): EVERYONE,
    ("DELETE", "/api/v1/auth/token"): SIGNED_IN,
    ("GET", "/api/v1/me"): SIGNED_IN,
    ("GET", "/api/v1/wallet"): SIGNED_IN,
    ("POST", "/api/v1/adjustments"): frozenset({"sec_this"}),
    ("POST", "/api/v1/areas"): ADMIN,
    ("GET", "/api/v1/areas"): SIGNED_IN,
    ("GET", "/api/v1/areas/<int:area_id>"): SIGNED_IN,
    ("POST", "/api/v1/deliveries"): frozenset({"non_owner"}),
    ("GET", "/api/v1/deliveries"): SIGNED_IN,
    ("GET", "/api/v1/deliveries/<int:delivery_id>"): B_VIEW,
    ("PUT", "/api/v1/deliveries/<int:delivery_id>/photo"): NOBODY,
    ("GET", "/api/v1/deliveries/<int:delivery_id>/photo"): NOBODY,
    ("POST", "/api/v1/deliveries/<int:delivery_id>/ratings"): frozenset({"sec_this"}),
    ("GET", "/api/v1/deliveries/<int:delivery_id>/ratings"): B_VIEW,
    ("POST", "/api/v1/deliveries/<int:delivery_id>/settle"): frozenset({"sec_this"}),
    ("GET", "/api/v1/deliveries/<int:delivery_id>/settlement"): B_VIEW,
    ("POST", "/api/v1/needs"): NOBODY,  # for resident_b: only B's grid worker (not cast)
    ("GET", "/api/v1/needs"): SIGNED_IN,
    ("GET", "/api/v1/needs/<int:need_id>"): B_VIEW,
    ("POST", "/api/v1/needs/<int:need_id>/cancel"): frozenset({"sec_this"}),
    ("POST", "/api/v1/needs/<int:need_id>/claim"): frozenset({"non_owner"}),
    ("POST", "/api/v1/needs/<int:need_id>/dispatch"): frozenset({"sec_this"}),
    ("POST", "/api/v1/needs/<int:need_id>/release"): frozenset({"sec_this"}),
    ("GET", "/api/v1/notifications"): SIGNED_IN,
    ("POST", "/api/v1/notifications/read"): SIGNED_IN,
    ("POST", "/api/v1/projects"): frozenset({"non_owner"}),
    ("GET", "/api/v1/projects"): SIGNED_IN,
    ("GET", "/api/v1/projects/similar"): SIGNED_IN,
    ("GET", "/api/v1/projects/<int:project_id>"): SIGNED_IN,
    ("PATCH", "/api/v1/projects/<int:project_id>"): NOBODY,
    ("POST", "/api/v1/projects/<int:project_id>/cancel"): frozenset({"sec_this"}),
    ("POST", "/api/v1/projects/<int:project_id>/complete"): frozenset({"sec_this"}),
    ("PUT", "/api/v1/projects/<int:project_id>/cover"): NOBODY,
    ("GET", "/api/v1/projects/<int:project_id>/cover"): NOBODY,
    ("GET", "/api/v1/projects/<int:project_id>/deliveries"): B_VIEW,
    ("POST", "/api/v1/projects/<int:project_id>/orders"): NOBODY,
    ("POST", "/api/v1/projects/<int:project_id>/review"): frozenset({"sec_this"}),
    ("POST", "/api/v1/projects/<int:project_id>/submit"): NOBODY,
    ("GET", "/api/v1/projects/<int:project_id>/team"): B_VIEW,
    ("POST", "/api/v1/projects/<int:project_id>/team"): frozenset({"non_owner"}),
    ("POST", "/api/v1/projects/<int:project_id>/team/<int:user_id>/approve"): NOBODY,
    ("POST", "/api/v1/projects/<int:project_id>/team/<int:user_id>/decline"): NOBODY,
    ("POST", "/api/v1/projects/<int:project_id>/team/leave"): B_VIEW,
    ("GET", "/api/v1/projects/<int:project_id>/transitions"): B_VIEW,
    ("POST", "/api/v1/projects/<int:project_id>/withdraw"): NOBODY,
    ("GET", "/api/v1/rankings"): SIGNED_IN,
    ("GET", "/api/v1/rankings/communities"): SIGNED_IN,
    ("PUT", "/api/v1/rankings/settings/<int:area_id>"): B_STAFF,
    ("GET", "/api/v1/rankings/teams"): SIGNED_IN,
    ("PATCH", "/api/v1/ratings/<int:rating_id>"): frozenset({"sec_this"}),  # proxy change
    ("POST", "/api/v1/ratings/<int:rating_id>/reply"): frozenset({"non_owner"}),
    ("POST", "/api/v1/ratings/by-code"): EVERYONE,
    ("GET", "/api/v1/redemptions"): SIGNED_IN,
    ("GET", "/api/v1/redemptions/<int:redemption_id>"): B_STAFF,
    ("POST", "/api/v1/redemptions/<int:redemption_id>/cancel"): frozenset({"sec_this"}),
    ("POST", "/api/v1/redemptions/<int:redemption_id>/fulfil"): frozenset({"sec_this"}),
    ("POST", "/api/v1/redemptions/<int:redemption_id>/reject"): frozenset({"sec_this"}),
    ("POST", "/api/v1/rewards"): frozenset({"sec_this"}),
    ("GET", "/api/v1/rewards"): SIGNED_IN,
    ("GET", "/api/v1/rewards/<int:reward_id>"): B_VIEW,
    ("PATCH", "/api/v1/rewards/<int:reward_id>"): frozenset({"sec_this"}),
    ("PUT", "/api/v1/rewards/<int:reward_id>/image"): frozenset({"sec_this"}),
    ("GET", "/api/v1/rewards/<int:reward_id>/image"): NOBODY,
    ("POST", "/api/v1/rewards/<int:reward_id>/redemptions"): frozenset({"non_owner"}),
    ("POST", "/api/v1/rewards/<int:reward_id>/retire"): frozenset({"sec_this"}),
    ("GET", "/api/v1/rewards/<int:reward_id>/stock-changes"): frozenset({"sec_this"}),
    ("GET", "/api/v1/settlement-queue"): frozenset({"sec_this", "sec_other"}),
    ("POST", "/api/v1/transactions/<int:tx_id>/reverse"): frozenset({"sec_this"}),
    ("POST", "/api/v1/users"): frozenset({"sec_this", "sec_other", "admin"}),  # no object
    ("GET", "/api/v1/users/<int:user_id>"): B_STAFF,
    ("GET", "/api/v1/users/<int:user_id>/ledger"): frozenset({"sec_this"}),
    ("POST", "/api/v1/users/<int:user_id>/roles"): B_STAFF,
    ("DELETE", "/api/v1/users/<int:user_id>/roles/<int:grant_id>"): B_STAFF,
}

# Requests that end the caller's session or token, or revoke the object owner's role:
# run after all the others.
RUN_LAST = (
    ("DELETE", "/api/v1/users/<int:user_id>/roles/<int:grant_id>"),
    ("POST", "/logout"),
    ("DELETE", "/api/v1/auth/token"),
)

# Routes that validate the request body before the permission check: an empty body
# would give every signed-in caller 422 and prove nothing. Each gets a VALID body built
# from objects of community B, and a fresh object of its own where an allowed caller's
# success would change the state the other routes (or callers) see. The function gets
# the scene objects and the actor and returns ``(url_placeholders_to_override, body)``.
# For these routes the check is strict: refused = 401/403/404 only (a 400/409/422 is a
# mismatch: the permission check was not reached or came after the state check), and
# allowed = 2xx/3xx only. Refused callers run before allowed ones, so no allowed
# caller's write can make a refusal look like a state error.
BODIES: dict[tuple[str, str], object] = {
    ("POST", "/profile"): lambda o, a: ({}, {"action": "language", "locale": "zh_CN"}),
    ("POST", "/api/v1/adjustments"): lambda o, a: (
        {},
        {"user_id": o["user_id"], "amount": 5, "reason": "矩阵测试"},
    ),
    ("POST", "/api/v1/areas"): lambda o, a: (
        {},
        {"name": f"新网格{a}", "kind": "grid", "parent_id": o["area_id"]},
    ),
    ("POST", "/api/v1/deliveries"): lambda o, a: (
        {},
        {
            "project_id": o["project_id"],
            **o["when"],
            "participants": [{"user_id": o["member_b2"].id, "hours": 2}],
            "beneficiaries": [o["resident_b"]],
        },
    ),
    # a fresh delivery whose only beneficiary has not rated: a proxy rating for them
    ("POST", "/api/v1/deliveries/<int:delivery_id>/ratings"): lambda o, a: (
        {"delivery_id": o["unrated_delivery_id"]},
        {"score": 4, "comment": "代评", "on_behalf_of": o["resident_b"]},
    ),
    ("POST", "/api/v1/needs"): lambda o, a: (
        {},
        {
            "community_id": o["area_id"],
            "title": "代买菜",
            "category": "errand",
            "on_behalf_of": o["resident_b"],
        },
    ),
    ("POST", "/api/v1/needs/<int:need_id>/dispatch"): lambda o, a: (
        {"need_id": o["open_need_id"]},
        {"member_id": o["member_b2"].id},
    ),
    ("POST", "/api/v1/projects"): lambda o, a: (
        {},
        {
            "community_id": o["area_id"],
            "title": f"矩阵项目{a}",
            "description": "测试项目。",
            "category": "elderly",
            "mode": "event",
            "capacity": 3,
            "planned_hours": 2,
        },
    ),
    ("POST", "/api/v1/projects/<int:project_id>/review"): lambda o, a: (
        {"project_id": o["submitted_project_id"]},
        {"decision": "approve"},
    ),
    ("PUT", "/api/v1/rankings/settings/<int:area_id>"): lambda o, a: ({}, {"exposure": "full"}),
    # a rating of a delivery not yet settled (one of its two beneficiaries rated)
    ("PATCH", "/api/v1/ratings/<int:rating_id>"): lambda o, a: (
        {"rating_id": o["open_rating_id"]},
        {"score": 3},
    ),
    ("POST", "/api/v1/ratings/<int:rating_id>/reply"): lambda o, a: (
        {"rating_id": o["open_rating_id"]},
        {"text": "谢谢"},
    ),
    ("POST", "/api/v1/redemptions/<int:redemption_id>/fulfil"): lambda o, a: (
        {"redemption_id": o["fulfil_redemption"].redemption.id},
        {"pickup_code": o["fulfil_redemption"].pickup_code},
    ),
    ("POST", "/api/v1/redemptions/<int:redemption_id>/reject"): lambda o, a: (
        {"redemption_id": o["reject_redemption_id"]},
        {"reason": "库存不足"},
    ),
    ("POST", "/api/v1/rewards"): lambda o, a: (
        {},
        {"area_id": o["area_id"], "name": f"矩阵奖品{a}", "cost": 5},
    ),
    ("POST", "/api/v1/rewards/<int:reward_id>/redemptions"): lambda o, a: (
        {"reward_id": o["fresh_reward_id"]},
        {"quantity": 1},
    ),
    ("POST", "/api/v1/transactions/<int:tx_id>/reverse"): lambda o, a: (
        {"tx_id": o["fresh_tx_id"]},
        {"reason": "误加"},
    ),
    ("POST", "/api/v1/users"): lambda o, a: (
        {},
        {"username": f"new_{a}", "password": "password123", "display_name": f"新用户{a}"},
    ),
    # a fresh member of B (granting member_b a role would change the other routes); the
    # second allowed caller grants another role (the same grant twice is 409)
    ("POST", "/api/v1/users/<int:user_id>/roles"): lambda o, a: (
        {"user_id": o["member_b3"]},
        {"role": "grid_worker" if a == "admin" else "resident", "area_id": o["grid_b1"]},
    ),
}

_PLACEHOLDER = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")


def url_map_keys(app) -> set[tuple[str, str]]:
    keys = set()
    for rule in app.url_map.iter_rules():
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            keys.add((method, rule.rule))
    return keys - SKIP


def test_every_route_is_in_the_matrix(app):
    keys = url_map_keys(app)
    missing = sorted(keys - MATRIX.keys(), key=lambda k: (k[1], k[0]))
    stale = sorted(MATRIX.keys() - keys, key=lambda k: (k[1], k[0]))
    assert not missing, "routes missing from MATRIX (add one line each):\n" + "\n".join(
        f'    ("{m}", "{r}"): ...,' for m, r in missing
    )
    assert not stale, "MATRIX lines for routes that no longer exist:\n" + "\n".join(
        f"    {m} {r}" for m, r in stale
    )


class IsolatedClient(FlaskClient):
    """Every request in a fresh context (no ``g``/session leaking between requests)."""

    def open(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture
def app_config(app_config):
    return {**app_config, "RATELIMIT_ENABLED": False}


def _objects(world) -> dict[str, object]:
    """Objects of community B (owned by member_b) for every URL placeholder."""
    member_b2 = make_user("member_b2", (Role.MEMBER, world.community_b))
    project = make_project(world.member_b, world.community_b, status="approved", team=[])
    add_team_member(project, member_b2)  # non-owner member is on the team
    need = make_need(world.resident_b, world.community_b)
    recorded = make_delivery(project, world.member_b, beneficiaries=[world.resident_b])
    delivery = recorded.delivery
    tx = give_points(world.member_b, 50, world.community_b)
    reward = make_reward(world.community_b)
    issued = redeem(world.member_b, reward)
    from volunteer_market.services import ratings as rating_service

    with atomic():
        rated = rating_service.rate(world.resident_b, delivery, 5, "很好")
    grant_id = next(g.id for g in world.member_b.grants) if hasattr(world.member_b, "grants") else 1
    # Fresh objects of B for the BODIES routes whose allowed caller changes their state.
    resident_b2 = make_user("resident_b2", (Role.RESIDENT, world.areas["grid_b1"]))
    member_b3 = make_user("member_b3", (Role.MEMBER, world.community_b))
    unrated = make_delivery(
        project, world.member_b, beneficiaries=[world.resident_b], hours_ago=8
    ).delivery
    half_rated = make_delivery(
        project,
        world.member_b,
        participants=[(world.member_b, 2), (member_b2, 2)],
        beneficiaries=[world.resident_b, resident_b2],
        hours_ago=13,
    ).delivery
    with atomic():
        open_rating = rating_service.rate(world.resident_b, half_rated, 4, "不错")
    open_need = make_need(world.resident_b, world.community_b)
    submitted = make_project(
        world.member_b, world.community_b, status="submitted", title="待审项目"
    )
    fulfil_redemption = redeem(world.member_b, reward)
    reject_redemption = redeem(world.member_b, reward)
    fresh_tx = give_points(world.member_b, 5, world.community_b)
    fresh_reward = make_reward(world.community_b, name="矩阵奖品")
    give_points(member_b2, 20, world.community_b)
    started = utcnow() - timedelta(hours=24)  # overlaps no other session
    when = {
        "started_at": started.isoformat(),
        "ended_at": (started + timedelta(hours=2)).isoformat(),
    }
    return {
        "user_id": world.member_b.id,
        "delivery_id": delivery.id,
        "need_id": need.id,
        "project_id": project.id,
        "tx_id": tx.id,
        "area_id": world.community_b.id,
        "rating_id": rated.rating.id,
        "redemption_id": issued.redemption.id,
        "reward_id": reward.id,
        "grant_id": grant_id,
        "verb": "cancel",
        "token": "x" * 43,
        "filename": "style.css",
        "member_b2": member_b2,
        "resident_b": world.resident_b.id,
        "grid_b1": world.areas["grid_b1"].id,
        "member_b3": member_b3.id,
        "unrated_delivery_id": unrated.id,
        "open_rating_id": open_rating.rating.id,
        "open_need_id": open_need.id,
        "submitted_project_id": submitted.id,
        "fulfil_redemption": fulfil_redemption,
        "reject_redemption_id": reject_redemption.redemption.id,
        "fresh_tx_id": fresh_tx.id,
        "fresh_reward_id": fresh_reward.id,
        "when": when,
    }


def _fill(rule: str, objects: dict) -> str:
    return _PLACEHOLDER.sub(lambda m: str(objects[m.group(1)]), rule)


_CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def _token(client) -> str:
    for path in ("/profile", "/login", "/"):
        match = _CSRF_RE.search(client.get(path).get_data(as_text=True))
        if match:
            return match.group(1)
    raise AssertionError("no CSRF token found")


def _as_wanted(resp, want: str, actor: str, *, strict: bool, logout: bool) -> bool:
    """Whether ``resp`` is the outcome wanted for ``actor`` (see the module docstring)."""
    code = resp.status_code
    to_login = code in (301, 302, 303) and "/login" in resp.headers.get("Location", "")
    if want == "refused":  # never a 400/409/422: the permission check comes first
        return code in (401, 403, 404) or (to_login and actor == "anon")
    if to_login and not (logout and actor != "anon"):  # a logout ends on the login page
        return False
    if strict:
        return 200 <= code < 400
    return code < 500 and code not in (401, 403, 404)


def test_access_matrix(app, world):
    app.test_client_class = IsolatedClient
    objects = _objects(world)
    sessions: dict[str, tuple] = {}

    def session_for(actor: str):
        if actor not in sessions:
            client = app.test_client()
            headers: dict[str, str] = {}
            if actor != "anon":
                from ..conftest import login

                user = (
                    objects["member_b2"]
                    if actor == "non_owner"
                    else getattr(world, USERNAMES[actor])
                )
                login(client, USERNAMES[actor])
                headers = bearer(user)
            sessions[actor] = (client, headers, _token(client))
        return sessions[actor]

    keys = sorted(MATRIX, key=lambda k: (RUN_LAST.index(k) + 1 if k in RUN_LAST else 0, k[1], k[0]))
    problems = []
    for method, rule in keys:
        allowed = MATRIX[(method, rule)]
        is_api = rule.startswith("/api/")
        strict = (method, rule) in BODIES
        # refused callers first: an allowed caller's write never shapes a refusal
        for actor in sorted(ACTORS, key=lambda a: a in allowed):
            client, headers, token = session_for(actor)
            url = _fill(rule, objects)
            body: dict = {}
            if strict:
                overrides, body = BODIES[(method, rule)](objects, actor)
                url = _fill(rule, {**objects, **overrides})
            kwargs: dict = {}
            if is_api:
                kwargs["headers"] = headers
                if method in ("POST", "PUT", "PATCH"):
                    kwargs["json"] = body
            elif method == "POST":
                kwargs["data"] = {**body, "csrf_token": token}
            resp = client.open(url, method=method, **kwargs)
            want = "allowed" if actor in allowed else "refused"
            if not _as_wanted(resp, want, actor, strict=strict, logout=rule == "/logout"):
                tag = ", strict" if strict else ""
                problems.append(f"{method} {url} as {actor}: {resp.status_code} (want {want}{tag})")
    assert not problems, f"{len(problems)} access-matrix mismatches:\n" + "\n".join(problems)
