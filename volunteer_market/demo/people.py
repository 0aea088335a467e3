"""The Hanyang (汉阳区) areas and demo people of every role, through the services.

The district, its streets, communities and grids, then one account per person of
:data:`PEOPLE`, each with its role granted on its area. Idempotent: nothing is added
when the district already exists. Every account's password is
:data:`~volunteer_market.demo.common.DEMO_PASSWORD`.
"""

from __future__ import annotations

import sqlalchemy as sa

from ..database import atomic
from ..extensions import db
from ..models import Area, AreaKind, Role
from ..services import areas as area_service
from ..services import users as user_service
from .common import DEMO_PASSWORD, HANYANG_DISTRICT, area_by_path

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


def demo_logins() -> list[tuple[str, str, str]]:
    """Return ``(username, role, where)`` for every demo account."""
    return [(u, r.value, " > ".join(p) or "global") for u, _n, r, p, _d in PEOPLE]


def load() -> None:
    """Create the area tree and the demo people (idempotent)."""
    with atomic():
        (district_name,) = HANYANG_DISTRICT
        exists = db.session.execute(sa.select(Area.id).where(Area.name == district_name)).first()
        if exists is not None:
            return
        district = area_service.create_area(
            None, name=district_name, kind=AreaKind.DISTRICT, parent_id=None
        )
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
            area = area_by_path(path) if path else None
            user_service.grant_role(None, user, role, area)
