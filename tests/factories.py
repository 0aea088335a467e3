"""Factory helpers: build areas, users and grants through the services.

``build_world()`` makes a small but complete tree and a cast of users:

    district 汉阳区
      street 龙阳街                      (officer_street is officer here)
        community A 龙湖东岸社区  grids A1, A2   secretary_a, grid_a1 (grid A1),
                                               member_a, member_a2, member_a3, resident_a (A1), resident_a2 (A2)
        community B 七里一村社区  grid B1       secretary_b, grid_b1, member_b, resident_b (B1)
      street 琴断口街                    (officer_other is officer here)
        community C 紫荆花社区    grid C1       secretary_c, member_c, resident_c
    officer_district: officer on the district; admin: global admin.

Every user's password is ``password123``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from volunteer_market.database import atomic
from volunteer_market.models import Area, AreaKind, Role, User
from volunteer_market.services import areas as area_service
from volunteer_market.services import auth as auth_service
from volunteer_market.services import users as user_service

PASSWORD = "password123"


@dataclass
class World:
    areas: dict[str, Area] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)

    def __getattr__(self, name: str):
        for bucket in ("users", "areas"):
            d = self.__dict__.get(bucket, {})
            if name in d:
                return d[name]
        raise AttributeError(name)


def make_area(name: str, kind: AreaKind, parent: Area | None = None) -> Area:
    with atomic():
        return area_service.create_area(
            None, name=name, kind=kind, parent_id=parent.id if parent else None
        )


def make_user(username: str, *grants: tuple[Role, Area | None], **personal) -> User:
    """Create a user with ``grants`` [(role, area)]; password ``password123``."""
    with atomic():
        user = user_service.create_user(
            None,
            username=username,
            password=PASSWORD,
            display_name=personal.pop("display_name", username),
            **personal,
        )
        for role, area in grants:
            user_service.grant_role(None, user, role, area)
    return user


def bearer(user: User, ttl: timedelta = timedelta(hours=1)) -> dict[str, str]:
    """Return Authorization headers with a fresh API token for ``user``."""
    with atomic():
        raw, _token = auth_service.issue_token(user, ttl)
    return {"Authorization": f"Bearer {raw}"}


def build_world() -> World:
    w = World()
    a = w.areas
    a["district"] = make_area("汉阳区", AreaKind.DISTRICT)
    a["street"] = make_area("龙阳街", AreaKind.STREET, a["district"])
    a["street2"] = make_area("琴断口街", AreaKind.STREET, a["district"])
    a["community_a"] = make_area("龙湖东岸社区", AreaKind.COMMUNITY, a["street"])
    a["community_b"] = make_area("七里一村社区", AreaKind.COMMUNITY, a["street"])
    a["community_c"] = make_area("紫荆花社区", AreaKind.COMMUNITY, a["street2"])
    a["grid_a1"] = make_area("第一网格", AreaKind.GRID, a["community_a"])
    a["grid_a2"] = make_area("第二网格", AreaKind.GRID, a["community_a"])
    a["grid_b1"] = make_area("第一网格", AreaKind.GRID, a["community_b"])
    a["grid_c1"] = make_area("第一网格", AreaKind.GRID, a["community_c"])
    u = w.users
    u["admin"] = make_user("admin", (Role.ADMIN, None))
    u["officer_district"] = make_user("officer_district", (Role.OFFICER, a["district"]))
    u["officer_street"] = make_user("officer_street", (Role.OFFICER, a["street"]))
    u["officer_other"] = make_user("officer_other", (Role.OFFICER, a["street2"]))
    u["secretary_a"] = make_user(
        "secretary_a", (Role.SECRETARY, a["community_a"]), phone="13800000001"
    )
    u["secretary_b"] = make_user("secretary_b", (Role.SECRETARY, a["community_b"]))
    u["secretary_c"] = make_user("secretary_c", (Role.SECRETARY, a["community_c"]))
    u["grid_a1"] = make_user("grid_a1", (Role.GRID_WORKER, a["grid_a1"]))
    u["grid_b1"] = make_user("grid_b1", (Role.GRID_WORKER, a["grid_b1"]))
    u["member_a"] = make_user(
        "member_a", (Role.MEMBER, a["community_a"]), phone="13900000001", home_unit="区卫健局"
    )
    u["member_a2"] = make_user("member_a2", (Role.MEMBER, a["community_a"]))
    u["member_a3"] = make_user("member_a3", (Role.MEMBER, a["community_a"]))
    u["member_b"] = make_user("member_b", (Role.MEMBER, a["community_b"]))
    u["member_c"] = make_user("member_c", (Role.MEMBER, a["community_c"]))
    u["resident_a"] = make_user(
        "resident_a",
        (Role.RESIDENT, a["grid_a1"]),
        phone="13712341234",
        address="龙湖东岸 3 栋 401",
        household_tags="空巢,独居",
    )
    u["resident_a2"] = make_user("resident_a2", (Role.RESIDENT, a["grid_a2"]), phone="13712345678")
    u["resident_b"] = make_user("resident_b", (Role.RESIDENT, a["grid_b1"]), phone="13712349999")
    u["resident_c"] = make_user("resident_c", (Role.RESIDENT, a["grid_c1"]), phone="13712340000")
    return w
