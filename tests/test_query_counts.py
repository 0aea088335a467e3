"""The hot endpoints issue a bounded number of SQL statements (issue 7 item 4: no N+1).

Each list is requested with a few items and again with many more, every item tied to
its own related rows (its own owner, beneficiary, participant...), so a lazy load per
item would add statements; the count must stay the same and under a small bound.
Statements are counted with a SQLAlchemy ``before_cursor_execute`` listener around one
request that runs in a fresh context (its own ``g`` and session, as in production), so
nothing is served from a previous request's identity map.

Not timed. Sizes: 5 and 50 items for the project list (API and page), 3 and 8 for the
others (``QUERY_COUNT_LARGE=1`` raises the latter to 30).
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import AreaKind, Role

from .conftest import login
from .factories import (
    bearer,
    give_points,
    make_delivery,
    make_need,
    make_project,
    make_reward,
    make_user,
    post_earn,
    redeem,
)
from .rewards.conftest import bare_delivery

SMALL, LARGE = 3, (30 if os.environ.get("QUERY_COUNT_LARGE") else 8)
#: A generous ceiling: a page is a handful of batched reads, never one per item.
BOUND = 25


@contextmanager
def counting() -> Iterator[list[str]]:
    statements: list[str] = []

    def before(_conn, _cursor, statement, _params, _context, _many):  # noqa: ANN001
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", before)


def count(client, path: str, headers: dict | None = None, *, items: int | None = None) -> int:
    """Return the number of statements of one GET of ``path`` (asserting 200 and, when
    given, that the response lists ``items`` items)."""
    db.session.remove()
    with counting() as statements:
        resp = contextvars.Context().run(client.get, path, headers=headers or {})
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    if items is not None:
        body = resp.get_json()
        assert len(body["items"]) == items, body
    return len(statements)


def assert_constant(small: int, large: int, what: str) -> None:
    print(f"{what}: {small} / {large} statements")  # shown with -s
    assert small == large, f"{what}: {small} statements with few items, {large} with many"
    assert large <= BOUND, f"{what}: {large} statements"


def _members(prefix: str, n: int, area, start: int = 0) -> list:
    return [make_user(f"{prefix}{i}", (Role.MEMBER, area)) for i in range(start, start + n)]


def test_project_list_api_and_page(client, world):
    community = world.areas["community_a"]
    viewer = world.member_a
    headers = bearer(viewer)
    login(client, "member_a")

    def grow(start: int, stop: int) -> None:
        with atomic():  # the factories' transactions join this one (fewer commits)
            for i, owner in enumerate(_members("owner", stop - start, community, start)):
                make_project(owner, community, status="approved", title=f"项目{start + i}")

    grow(0, 5)
    api_small = count(client, "/api/v1/projects?per_page=50", headers, items=5)
    page_small = count(client, "/projects")
    grow(5, 50)
    api_large = count(client, "/api/v1/projects?per_page=50", headers, items=50)
    page_large = count(client, "/projects")
    assert_constant(api_small, api_large, "GET /api/v1/projects")
    assert_constant(page_small, page_large, "GET /projects")


def test_delivery_and_need_lists(client, world):
    community = world.areas["community_a"]
    secretary = world.secretary_a
    headers = bearer(secretary)
    grid = world.areas["grid_a1"]

    def grow(start: int, stop: int) -> None:
        with atomic():
            for i in range(start, stop):
                owner = make_user(f"downer{i}", (Role.MEMBER, community))
                resident = make_user(f"dres{i}", (Role.RESIDENT, grid))
                project = make_project(owner, community, status="approved", title=f"服务{i}")
                make_delivery(project, owner, beneficiaries=[resident])
                make_need(resident, community, title=f"需求{i}")

    grow(0, SMALL)
    d_small = count(client, "/api/v1/deliveries?per_page=100", headers, items=SMALL)
    n_small = count(client, "/api/v1/needs?per_page=100", headers, items=SMALL)
    grow(SMALL, LARGE)
    d_large = count(client, "/api/v1/deliveries?per_page=100", headers, items=LARGE)
    n_large = count(client, "/api/v1/needs?per_page=100", headers, items=LARGE)
    assert_constant(d_small, d_large, "GET /api/v1/deliveries")
    assert_constant(n_small, n_large, "GET /api/v1/needs")


def test_rankings(client, world):
    community = world.areas["community_a"]
    viewer = world.member_a
    headers = bearer(viewer)
    delivery_id = bare_delivery(community, world.member_a)
    path = f"/api/v1/rankings?area_id={community.id}&period=all&per_page=100"

    def grow(start: int, stop: int) -> None:
        with atomic():
            for i, m in enumerate(_members("ranked", stop - start, community, start)):
                post_earn(m, community, delivery_id=delivery_id, points=10 + start + i)

    grow(0, SMALL)
    small = count(client, path, headers, items=SMALL)
    grow(SMALL, LARGE)
    large = count(client, path, headers, items=LARGE)
    assert_constant(small, large, "GET /api/v1/rankings")
    district = world.areas["district"]
    assert district.kind == AreaKind.DISTRICT
    assert count(client, f"/api/v1/rankings?area_id={district.id}&period=all", headers) <= BOUND


def test_ledger_and_wallet(client, world):
    member = world.member_a
    secretary = world.secretary_a
    headers = bearer(secretary)
    mine = bearer(member)
    path = f"/api/v1/users/{member.id}/ledger?per_page=100"

    with atomic():
        for _ in range(SMALL):
            give_points(member, 1)
    small = count(client, path, headers, items=SMALL)
    w_small = count(client, "/api/v1/wallet", mine)
    with atomic():
        for _ in range(LARGE - SMALL):
            give_points(member, 1)
    large = count(client, path, headers, items=LARGE)
    w_large = count(client, "/api/v1/wallet", mine)
    assert_constant(small, large, "GET /api/v1/users/<id>/ledger")
    assert_constant(w_small, w_large, "GET /api/v1/wallet")


def test_rewards_and_redemptions(client, world):
    community = world.areas["community_a"]
    secretary = world.secretary_a
    areas = [community, world.areas["street"], world.areas["district"]]
    headers = bearer(secretary)

    def grow(start: int, stop: int) -> None:
        with atomic():
            for i in range(start, stop):
                reward = make_reward(areas[i % len(areas)], name=f"奖品{i}", cost=1)
                member = make_user(f"redeemer{i}", (Role.MEMBER, community))
                give_points(member, 5, community)
                redeem(member, reward)

    grow(0, SMALL)
    member_headers = bearer(world.member_a)
    r_small = count(client, "/api/v1/rewards?per_page=100", member_headers, items=SMALL)
    x_small = count(client, "/api/v1/redemptions?per_page=100", headers, items=SMALL)
    grow(SMALL, LARGE)
    r_large = count(client, "/api/v1/rewards?per_page=100", member_headers, items=LARGE)
    x_large = count(client, "/api/v1/redemptions?per_page=100", headers, items=LARGE)
    assert_constant(r_small, r_large, "GET /api/v1/rewards")
    assert_constant(x_small, x_large, "GET /api/v1/redemptions")


def test_counter_sees_an_n_plus_one(app):
    """The counter itself sees a loop of per-item queries, one statement per item
    (relationships are ``lazy="raise_on_sql"``, so an N+1 in this code base is an explicit
    query in a loop, or a missing eager load that raises and fails the request)."""
    from volunteer_market.models import User

    with atomic():
        for i in range(3):
            make_user(f"lazy{i}")
    db.session.remove()
    with counting() as statements:
        users = db.session.scalars(sa.select(User).order_by(User.id)).all()
        names = [  # one query per item: what an N+1 looks like to the counter
            db.session.execute(sa.select(User.display_name).where(User.id == u.id)).scalar_one()
            for u in users
        ]
    assert names == ["lazy0", "lazy1", "lazy2"]
    per_item = [s for s in statements if s.startswith("SELECT users.display_name")]
    assert len(per_item) == 3
