"""The Hanyang demo data set (汉阳区), loaded through the services.

Every demo account uses the password :data:`DEMO_PASSWORD`. The loader is
idempotent: when the district already exists it only returns the logins.
"""

from __future__ import annotations

import sqlalchemy as sa

from .database import atomic
from .extensions import db
from .models import Area, AreaKind, Role, User
from .services import areas as area_service
from .services import users as user_service

DEMO_PASSWORD = "demo12345"  # noqa: S105 - documented demo credential

#: street -> communities -> grids
HANYANG: dict[str, dict[str, list[str]]] = {
    "龙阳街": {
        "龙湖东岸社区": ["第一网格", "第二网格"],
        "七里一村社区": ["第一网格", "第二网格"],
    },
    "琴断口街": {"紫荆花社区": ["第一网格", "第二网格"]},
    "四新街": {"梅林都汇社区": ["第一网格"]},
    "建桥街": {"显正街社区": ["第一网格"]},
    "江堤街": {"龙磨社区": ["第一网格"]},
    "永丰街": {"永丰社区": ["第一网格"]},
}

#: (username, display name, role, area name path, personal data)
PEOPLE: list[tuple[str, str, Role, tuple[str, ...], dict[str, str]]] = [
    ("admin", "系统管理员", Role.ADMIN, (), {}),
    ("officer_hy", "汉阳区管理员", Role.OFFICER, ("汉阳区",), {}),
    ("officer_ly", "龙阳街管理员", Role.OFFICER, ("汉阳区", "龙阳街"), {}),
    (
        "secretary_lh",
        "王书记",
        Role.SECRETARY,
        ("汉阳区", "龙阳街", "龙湖东岸社区"),
        {"phone": "13800000001"},
    ),
    (
        "secretary_zj",
        "李书记",
        Role.SECRETARY,
        ("汉阳区", "琴断口街", "紫荆花社区"),
        {"phone": "13800000002"},
    ),
    (
        "grid_lh1",
        "张网格员",
        Role.GRID_WORKER,
        ("汉阳区", "龙阳街", "龙湖东岸社区", "第一网格"),
        {"phone": "13800000003"},
    ),
    (
        "member_chen",
        "陈党员",
        Role.MEMBER,
        ("汉阳区", "龙阳街", "龙湖东岸社区"),
        {"home_unit": "汉阳区卫健局", "phone": "13900000001"},
    ),
    (
        "member_liu",
        "刘党员",
        Role.MEMBER,
        ("汉阳区", "龙阳街", "龙湖东岸社区"),
        {"home_unit": "汉阳区司法局", "phone": "13900000002"},
    ),
    (
        "member_zhao",
        "赵党员",
        Role.MEMBER,
        ("汉阳区", "龙阳街", "龙湖东岸社区"),
        {"home_unit": "汉阳区教育局", "phone": "13900000003"},
    ),
    (
        "member_sun",
        "孙党员",
        Role.MEMBER,
        ("汉阳区", "琴断口街", "紫荆花社区"),
        {"home_unit": "汉阳区文旅局", "phone": "13900000004"},
    ),
    (
        "resident_wang",
        "王奶奶",
        Role.RESIDENT,
        ("汉阳区", "龙阳街", "龙湖东岸社区", "第一网格"),
        {
            "phone": "13712341234",
            "address": "龙湖东岸小区 3 栋 2 单元 401",
            "household_tags": "空巢,独居",
        },
    ),
    (
        "resident_li",
        "李爷爷",
        Role.RESIDENT,
        ("汉阳区", "龙阳街", "龙湖东岸社区", "第一网格"),
        {
            "phone": "13712345678",
            "address": "龙湖东岸小区 5 栋 1 单元 102",
            "household_tags": "残疾",
        },
    ),
    (
        "resident_zhou",
        "周阿姨",
        Role.RESIDENT,
        ("汉阳区", "龙阳街", "龙湖东岸社区", "第二网格"),
        {"phone": "13712349999", "address": "龙湖东岸小区 8 栋 3 单元 201"},
    ),
    (
        "resident_he",
        "何大爷",
        Role.RESIDENT,
        ("汉阳区", "琴断口街", "紫荆花社区", "第一网格"),
        {"phone": "13712340000", "address": "紫荆花园 2 栋 601", "household_tags": "空巢"},
    ),
]


def _area_by_path(names: tuple[str, ...]) -> Area | None:
    parent_id = None
    area = None
    for name in names:
        area = db.session.execute(
            sa.select(Area).where(
                Area.name == name,
                Area.parent_id.is_(None) if parent_id is None else Area.parent_id == parent_id,
            )
        ).scalar_one_or_none()
        if area is None:
            return None
        parent_id = area.id
    return area


def demo_logins() -> list[tuple[str, str, str]]:
    """Return ``(username, role, where)`` for every demo account."""
    return [(u, r.value, " > ".join(p) or "global") for u, _n, r, p, _d in PEOPLE]


def load_demo() -> list[tuple[str, str, str]]:
    """Load the demo data if it is not there yet; return the demo logins."""
    with atomic():
        exists = db.session.execute(sa.select(Area.id).where(Area.name == "汉阳区")).first()
        if exists is None:
            _load_areas_and_people()
    for extend in EXTENSIONS:
        extend()
    return demo_logins()


def _load_areas_and_people() -> None:
    district = area_service.create_area(None, name="汉阳区", kind=AreaKind.DISTRICT, parent_id=None)
    for street_name, communities in HANYANG.items():
        street = area_service.create_area(
            None, name=street_name, kind=AreaKind.STREET, parent_id=district.id
        )
        for community_name, grids in communities.items():
            community = area_service.create_area(
                None, name=community_name, kind=AreaKind.COMMUNITY, parent_id=street.id
            )
            for grid_name in grids:
                area_service.create_area(
                    None, name=grid_name, kind=AreaKind.GRID, parent_id=community.id
                )
    for username, name, role, path, personal in PEOPLE:
        user = user_service.create_user(
            None, username=username, password=DEMO_PASSWORD, display_name=name, **personal
        )
        area = _area_by_path(path) if path else None
        user_service.grant_role(None, user, role, area)


def demo_user(username: str) -> User:
    """Return a demo user by username (for loaders of later features)."""
    user = user_service.find_by_username(username)
    if user is None:
        raise LookupError(username)
    return user


#: Later features append idempotent loaders here (each opens its own ``atomic()``).
EXTENSIONS: list = []


def _load_ledger_demo() -> None:
    """The default points policy and two secretary adjustments (fixed keys: idempotent)."""
    from .services import ledger, points_policy

    with atomic():
        points_policy.ensure_default_policy()
        secretary = demo_user("secretary_lh")
        for key, username, amount, reason in (
            ("demo:adjust:1", "member_chen", 20, "补录：2026 年 10 月社区防汛值守"),
            ("demo:adjust:2", "member_liu", 15, "补录：重阳节敬老活动组织工作"),
        ):
            ledger.adjust(secretary, demo_user(username), amount, reason, idempotency_key=key)


EXTENSIONS.append(_load_ledger_demo)


def _load_marketplace_demo() -> None:
    """Projects in every state, teams, needs and deliveries (see demo_marketplace)."""
    from .demo_marketplace import load

    load()


EXTENSIONS.append(_load_marketplace_demo)


def _load_ratings_demo() -> None:
    """Ratings (own, proxy, reply) and settlements, including the 24-point example."""
    from .demo_ratings import load

    load()


EXTENSIONS.append(_load_ratings_demo)


def _load_rewards_demo() -> None:
    """Rewards of the community and partner units, redemptions in every state."""
    from .demo_rewards import load

    load()


EXTENSIONS.append(_load_rewards_demo)
