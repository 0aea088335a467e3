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
from typing import Any

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


# --- projects, teams, needs, deliveries ------------------------------------------

_PROJECT_PATHS: dict[str, list[str]] = {
    "draft": [],
    "submitted": ["submit"],
    "changes_requested": ["submit", "request_changes"],
    "approved": ["submit", "approve"],
    "rejected": ["submit", "reject"],
    "completed": ["submit", "approve", "complete"],
    "cancelled": ["cancel"],
}


def secretary_of(community: Area) -> User:
    """Return a secretary of ``community`` (the first granted)."""
    import sqlalchemy as sa

    from volunteer_market.extensions import db
    from volunteer_market.models import RoleGrant

    user_id = db.session.execute(
        sa.select(RoleGrant.user_id)
        .where(
            RoleGrant.area_id == community.id,
            RoleGrant.role == Role.SECRETARY,
            RoleGrant.revoked_at.is_(None),
        )
        .order_by(RoleGrant.id)
        .limit(1)
    ).scalar_one()
    return db.session.get(User, user_id)


def make_project(
    owner: User,
    community: Area,
    *,
    status: str = "draft",
    team: tuple[User, ...] | list[User] = (),
    **fields,
):
    """Create a project through the services and walk it to ``status``.

    ``team`` members join and are approved while the project is submitted/approved.
    Fields default to a small event project (``title`` 义务理发, capacity 5, 2 h).
    """
    from volunteer_market.models import Category, ProjectAction, ProjectMode
    from volunteer_market.services import projects as project_service

    data = {
        "title": "义务理发",
        "description": "每月为老人免费理发。",
        "category": Category.ELDERLY,
        "mode": ProjectMode.EVENT,
        "capacity": 5,
        "planned_minutes": 120,
        **fields,
    }
    with atomic():
        project = project_service.create_project(owner, community_id=community.id, **data)
    secretary = secretary_of(community)
    pending_team = list(team)
    for step in _PROJECT_PATHS[status]:
        if step in ("approve", "reject", "request_changes"):
            who, comment = secretary, "审核意见"
        else:
            who, comment = owner, None
        with atomic():
            project_service.transition(who, project, ProjectAction(step), comment)
        if pending_team and project.status.value == "approved":
            for member in pending_team:
                add_team_member(project, member)
            pending_team = []
    if pending_team:
        if project.status.value not in ("submitted", "changes_requested"):
            raise ValueError(f"cannot form a team for a {status} project")
        for member in pending_team:
            add_team_member(project, member)
    return project


def add_team_member(project, member: User):
    """Join ``member`` to ``project``'s team and approve them (as the owner)."""
    from volunteer_market.extensions import db
    from volunteer_market.services import projects as project_service

    owner = db.session.get(User, project.owner_id)
    with atomic():
        project_service.request_join(member, project)
    with atomic():
        return project_service.approve_member(owner, project, member.id)


def make_need(resident: User, community: Area, **fields):
    """Post a need as ``resident`` (title 代买药, category errand)."""
    from volunteer_market.models import Category
    from volunteer_market.services import needs as need_service

    data = {"title": "代买药", "description": "需要帮忙买降压药。", "category": Category.ERRAND}
    data.update(fields)
    with atomic():
        return need_service.create_need(resident, community_id=community.id, **data)


def make_delivery(
    project,
    recorder: User,
    *,
    participants: list[tuple[User, float]] | None = None,
    beneficiaries: list[User] = (),
    hours_ago: float = 3,
    length_hours: float = 2,
    need=None,
    now=None,
    slips: bool = True,
):
    """Record a delivery through the service; return ``Slipped(delivery, rating_codes)``.

    Recording hands the recorder no code; the codes come from slips issued by the
    system (``issue_slips(None, ...)``), as a non-participant would hand them out.
    ``slips=False`` issues none.
    """
    from volunteer_market.models import utcnow
    from volunteer_market.services import deliveries as delivery_service

    now = now or utcnow()
    started = now - timedelta(hours=hours_ago)
    ended = started + timedelta(hours=length_hours)
    parts = participants if participants is not None else [(recorder, length_hours)]
    with atomic():
        recorded = delivery_service.record_delivery(
            recorder,
            project_id=project.id,
            started_at=started,
            ended_at=ended,
            participants=[(u.id, round(h * 60)) for u, h in parts],
            beneficiaries=[b.id for b in beneficiaries],
            need_id=need.id if need is not None else None,
            now=now,
        )
        codes = []
        if slips and beneficiaries and now < recorded.delivery.rating_deadline:
            codes = delivery_service.issue_slips(None, recorded.delivery, now=now)
        return Slipped(delivery_service.get_delivery(recorded.delivery.id), codes)


@dataclass
class Slipped:
    """A recorded delivery and the raw codes of the slips the system issued for it."""

    delivery: Any
    rating_codes: list = field(default_factory=list)


# --- ledger (issue 4): points ----------------------------------------------------


def give_points(
    member: User, amount: int, community: Area | None = None, *, reason: str = "测试积分"
):
    """Adjust ``member``'s wallet by ``amount`` as the system (no actor); return the
    transaction. ``community`` defaults to the member's first community."""
    from volunteer_market.services import ledger

    with atomic():
        return ledger.adjust(None, member, amount, reason, community)


def post_earn(
    member: User,
    community: Area,
    *,
    delivery_id: int,
    points: int,
    minutes: int = 120,
    actor: User | None = None,
    policy_id: int | None = None,
):
    """Post an earn for ``member`` directly through the ledger (settlement's posting)."""
    from volunteer_market.services import ledger

    with atomic():
        return ledger.earn(
            actor,
            member_id=member.id,
            community_id=community.id,
            delivery_id=delivery_id,
            points=points,
            minutes=minutes,
            policy_id=policy_id,
        )


def points_of(user: User) -> dict[str, int]:
    """Return ``{available, held, earned_total}`` of ``user`` (fresh from the database)."""
    from volunteer_market.services import ledger

    return ledger.balances(user)


# --- ratings and settlement (issue 4) ----------------------------------------------


def rate_delivery(user: User, delivery, score: int, comment: str | None = None, **kw):
    """Rate ``delivery`` as ``user`` through the service (``on_behalf_of=``, ``now=``);
    return ``Rated(rating, delivery, settlement)``."""
    from volunteer_market.services import ratings

    with atomic():
        return ratings.rate(user, delivery, score, comment, **kw)


def settle_delivery(secretary: User, delivery, *, confirm_unrated: bool = False, now=None):
    """Settle ``delivery`` as ``secretary`` through the service; return the Settlement."""
    from volunteer_market.services import settlement

    with atomic():
        return settlement.settle(secretary, delivery, confirm_unrated=confirm_unrated, now=now)


# --- rewards (issue 6) -------------------------------------------------------------


def make_reward(area: Area, *, by: User | None = None, **fields):
    """Offer a reward on ``area`` through the service (default: 理发券, cost 10,
    unlimited stock, no limit); ``by=None`` is the system."""
    from volunteer_market.services import rewards as reward_service

    data = {"name": "理发券", "cost": 10, "sponsor": "社区爱心理发室", **fields}
    with atomic():
        return reward_service.create_reward(by, area_id=area.id, **data)


def redeem(member: User, reward, quantity: int = 1, **kw):
    """Redeem as ``member`` through the service; return ``Issued(redemption, pickup_code)``."""
    from volunteer_market.services import redemptions

    with atomic():
        return redemptions.request(member, reward, quantity, **kw)


# --- shortcuts past the workflows ----------------------------------------------------


def insert_approved_project(community_id: int, owner_id: int, *, title: str) -> int:
    """Insert an approved event project straight through the ORM, skipping the approval
    workflow (tested in tests/projects), for tests that only need a project to hang
    deliveries on; return its id. Joins the caller's ``atomic()`` if one is open."""
    from volunteer_market.extensions import db
    from volunteer_market.models import Category, Project, ProjectMode, ProjectStatus

    with atomic():
        project = Project(
            community_id=community_id,
            owner_id=owner_id,
            title=title,
            description="测试",
            category=Category.OTHER,
            mode=ProjectMode.EVENT,
            capacity=10,
            planned_minutes=120,
            status=ProjectStatus.APPROVED,
        )
        db.session.add(project)
        db.session.flush()
        return project.id


def verified() -> None:
    """Assert that every ledger invariant (every registered ``ledger verify`` check) holds,
    on a fresh read (the session's transaction is ended first)."""
    from volunteer_market.extensions import db
    from volunteer_market.services import verify as verifier

    db.session.rollback()
    found = verifier.verify_all()
    assert found == [], [str(v) for v in found]


# --- images --------------------------------------------------------------------------


def image_bytes(kind: str = "png", size: tuple[int, int] = (4, 3), **save: object) -> bytes:
    """Return a real (decodable) image of ``kind`` (png, jpg, webp) with Pillow;
    ``save`` goes to ``Image.save`` (e.g. ``exif=...``, ``pnginfo=...``)."""
    import io

    from PIL import Image

    img = Image.new("RGB", size, (200, 30, 30))
    out = io.BytesIO()
    img.save(out, {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}[kind], **save)
    return out.getvalue()


def same_picture(stored: bytes, uploaded: bytes) -> bool:
    """Whether ``stored`` (the re-encoded upload) shows the picture ``uploaded``: same
    format and size (uploads are re-encoded, so the bytes differ)."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(stored)) as a, Image.open(io.BytesIO(uploaded)) as b:
        return (a.format, a.size) == (b.format, b.size)
