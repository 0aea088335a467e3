"""Access-control matrix over every rule of ``app.url_map`` (issue 8, item 1).

Every (route, method) has one line in :data:`MATRIX` naming the actors that are
allowed. Objects in the URL always belong to community **B** (or to its street),
so every caller from community A -- resident, member, grid worker, secretary --
must be refused (401/403/404, or a redirect to the login page): no IDOR. Nobody
may ever get a 5xx. ``test_every_route_is_in_the_matrix`` fails, listing the
routes, when a route is added to the app without a line here.

Adding a route: one line in :data:`MATRIX`, ``("METHOD", "/rule"): ALLOWED_SET``.

Outcome classes, not bodies: *allowed* = not 401/403/404, not a redirect to
``/login`` and < 500 (an empty body may well give 400/409/422); *refused* =
401/403/404 or a redirect to ``/login``. A write refused because its (empty)
body was invalid before the permission check (400/422) is counted as refused:
nothing happened and nothing about the object was revealed.

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

import pytest
from flask.testing import FlaskClient

from volunteer_market.database import atomic
from volunteer_market.models import Role

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
# The request body is validated before the permission check, so with the empty body
# sent here every signed-in caller gets 422: the matrix only proves that anonymous
# callers are refused and that nobody gets a 5xx (see docs/SECURITY.md, gaps).
BODY_FIRST = SIGNED_IN

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
    ("POST", "/profile"): BODY_FIRST,
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
    ("POST", "/api/v1/adjustments"): BODY_FIRST,
    ("POST", "/api/v1/areas"): BODY_FIRST,
    ("GET", "/api/v1/areas"): SIGNED_IN,
    ("GET", "/api/v1/areas/<int:area_id>"): SIGNED_IN,
    ("POST", "/api/v1/deliveries"): BODY_FIRST,
    ("GET", "/api/v1/deliveries"): SIGNED_IN,
    ("GET", "/api/v1/deliveries/<int:delivery_id>"): B_VIEW,
    ("PUT", "/api/v1/deliveries/<int:delivery_id>/photo"): NOBODY,
    ("GET", "/api/v1/deliveries/<int:delivery_id>/photo"): NOBODY,
    ("POST", "/api/v1/deliveries/<int:delivery_id>/ratings"): BODY_FIRST,
    ("GET", "/api/v1/deliveries/<int:delivery_id>/ratings"): B_VIEW,
    ("POST", "/api/v1/deliveries/<int:delivery_id>/settle"): frozenset({"sec_this"}),
    ("GET", "/api/v1/deliveries/<int:delivery_id>/settlement"): B_VIEW,
    ("POST", "/api/v1/needs"): BODY_FIRST,
    ("GET", "/api/v1/needs"): SIGNED_IN,
    ("GET", "/api/v1/needs/<int:need_id>"): B_VIEW,
    ("POST", "/api/v1/needs/<int:need_id>/cancel"): frozenset({"sec_this"}),
    ("POST", "/api/v1/needs/<int:need_id>/claim"): frozenset({"non_owner"}),
    ("POST", "/api/v1/needs/<int:need_id>/dispatch"): BODY_FIRST,
    ("POST", "/api/v1/needs/<int:need_id>/release"): frozenset({"sec_this"}),
    ("GET", "/api/v1/notifications"): SIGNED_IN,
    ("POST", "/api/v1/notifications/read"): SIGNED_IN,
    ("POST", "/api/v1/projects"): BODY_FIRST,
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
    ("POST", "/api/v1/projects/<int:project_id>/review"): BODY_FIRST,
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
    ("PUT", "/api/v1/rankings/settings/<int:area_id>"): BODY_FIRST,
    ("GET", "/api/v1/rankings/teams"): SIGNED_IN,
    ("PATCH", "/api/v1/ratings/<int:rating_id>"): BODY_FIRST,
    ("POST", "/api/v1/ratings/<int:rating_id>/reply"): BODY_FIRST,
    ("POST", "/api/v1/ratings/by-code"): EVERYONE,
    ("GET", "/api/v1/redemptions"): SIGNED_IN,
    ("GET", "/api/v1/redemptions/<int:redemption_id>"): B_STAFF,
    ("POST", "/api/v1/redemptions/<int:redemption_id>/cancel"): frozenset({"sec_this"}),
    ("POST", "/api/v1/redemptions/<int:redemption_id>/fulfil"): BODY_FIRST,
    ("POST", "/api/v1/redemptions/<int:redemption_id>/reject"): BODY_FIRST,
    ("POST", "/api/v1/rewards"): BODY_FIRST,
    ("GET", "/api/v1/rewards"): SIGNED_IN,
    ("GET", "/api/v1/rewards/<int:reward_id>"): B_VIEW,
    ("PATCH", "/api/v1/rewards/<int:reward_id>"): frozenset({"sec_this"}),
    ("PUT", "/api/v1/rewards/<int:reward_id>/image"): frozenset({"sec_this"}),
    ("GET", "/api/v1/rewards/<int:reward_id>/image"): NOBODY,
    ("POST", "/api/v1/rewards/<int:reward_id>/redemptions"): BODY_FIRST,
    ("POST", "/api/v1/rewards/<int:reward_id>/retire"): frozenset({"sec_this"}),
    ("GET", "/api/v1/rewards/<int:reward_id>/stock-changes"): frozenset({"sec_this"}),
    ("GET", "/api/v1/settlement-queue"): frozenset({"sec_this", "sec_other"}),
    ("POST", "/api/v1/transactions/<int:tx_id>/reverse"): BODY_FIRST,
    ("POST", "/api/v1/users"): BODY_FIRST,
    ("GET", "/api/v1/users/<int:user_id>"): B_STAFF,
    ("GET", "/api/v1/users/<int:user_id>/ledger"): frozenset({"sec_this"}),
    ("POST", "/api/v1/users/<int:user_id>/roles"): BODY_FIRST,
    ("DELETE", "/api/v1/users/<int:user_id>/roles/<int:grant_id>"): B_STAFF,
}

# Requests that end the caller's session or token, or revoke the object owner's role:
# run after all the others.
RUN_LAST = (
    ("DELETE", "/api/v1/users/<int:user_id>/roles/<int:grant_id>"),
    ("POST", "/logout"),
    ("DELETE", "/api/v1/auth/token"),
)

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


def _classify(resp, *, redirect_is_success: bool = False) -> str:
    code = resp.status_code
    if code >= 500:
        return "5xx"
    if code in (401, 403, 404):
        return "refused"
    login = "/login" in resp.headers.get("Location", "")
    if code in (301, 302, 303) and login and not redirect_is_success:
        return "refused"
    return "allowed"


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
        url = _fill(rule, objects)
        is_api = rule.startswith("/api/")
        for actor in ACTORS:
            client, headers, token = session_for(actor)
            kwargs: dict = {}
            if is_api:
                kwargs["headers"] = headers
                if method in ("POST", "PUT", "PATCH"):
                    kwargs["json"] = {}
            elif method == "POST":
                kwargs["data"] = {"csrf_token": token}
            resp = client.open(url, method=method, **kwargs)
            # a signed-in caller's logout ends on the login page
            got = _classify(resp, redirect_is_success=rule == "/logout" and actor != "anon")
            want = "allowed" if actor in MATRIX[(method, rule)] else "refused"
            if got == "5xx" or got != want:
                if want == "refused" and method != "GET" and resp.status_code in (400, 422):
                    continue  # invalid body refused before the permission check
                problems.append(f"{method} {url} as {actor}: {resp.status_code} (want {want})")
    assert not problems, f"{len(problems)} access-matrix mismatches:\n" + "\n".join(problems)
