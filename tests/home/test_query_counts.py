"""The home page issues a bounded number of SQL statements for every role: the same
count with few and with many items behind each count and list (no N+1)."""

from __future__ import annotations

from volunteer_market.database import atomic
from volunteer_market.models import Role
from volunteer_market.models.projects import ProjectMode

from ..conftest import login
from ..factories import (
    give_points,
    make_delivery,
    make_need,
    make_project,
    make_reward,
    make_user,
    redeem,
)
from ..ledger.conftest import IsolatedClient
from ..test_query_counts import LARGE, SMALL, assert_constant, count


def _grow(world, start: int, stop: int) -> None:
    """Per item: an owner and a resident of their own, a submitted and an approved menu
    project, a delivery for the resident (and for resident_a, unrated), a need, points,
    a held redemption and a transaction of member_a."""
    community, grid = world.community_a, world.areas["grid_a1"]
    with atomic():
        reward = make_reward(community, name=f"奖品{start}", cost=1)
        for i in range(start, stop):
            owner = make_user(f"howner{i}", (Role.MEMBER, community))
            resident = make_user(f"hres{i}", (Role.RESIDENT, grid))
            make_project(owner, community, status="submitted", title=f"待审{i}")
            menu = make_project(
                owner,
                community,
                status="approved",
                mode=ProjectMode.MENU,
                title=f"菜单{i}",
                team=[world.member_a],
            )
            make_delivery(
                menu, owner, beneficiaries=[resident, world.resident_a], hours_ago=3 + 3 * i
            )
            make_need(resident, community, title=f"需求{i}")
            make_need(world.resident_a, community, title=f"我的需求{i}")
            give_points(owner, 5, community)
            redeem(owner, reward)
            give_points(world.member_a, 1, community)


def test_home_of_every_role_is_bounded(app, world):
    users = ("secretary_a", "member_a", "resident_a", "grid_a1", "officer_street", "admin")
    app.test_client_class = IsolatedClient  # every request in its own context
    clients = {u: app.test_client() for u in users}
    for username, client in clients.items():
        login(client, username)
    _grow(world, 0, SMALL)
    small = {u: count(c, "/") for u, c in clients.items()}
    _grow(world, SMALL, LARGE)
    for username, client in clients.items():
        assert_constant(small[username], count(client, "/"), f"GET / as {username}")
