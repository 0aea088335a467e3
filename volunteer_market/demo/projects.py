"""Demo projects, teams, needs and deliveries in 龙湖东岸社区 and 紫荆花社区.

Projects in every state (义务理发, 健康义诊, 法律讲堂, 文化墙手绘, 代买药 ...), teams,
needs (posted, on behalf, ordered, claimed, closed) and deliveries from the last days,
all through the services. Idempotent: nothing is added when 义务理发 already exists.
Times are relative to the moment of loading, so the deliveries are still open for
rating (their rating codes are not kept: only their hashes are stored).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from ..database import atomic
from ..extensions import db
from ..models import Category, Project, ProjectAction, ProjectMode, User, utcnow
from ..services import deliveries as delivery_service
from ..services import needs as need_service
from ..services import projects as project_service
from ..zones import DEFAULT_ZONE
from .common import LONGHU, ZIJING, demo_area, demo_user

#: title, owner, community, category, mode, capacity, hours, target groups, description, status
PROJECTS: list[
    tuple[str, str, tuple[str, ...], Category, ProjectMode, int, float, list[str], str, str]
] = [
    (
        "义务理发",
        "member_chen",
        LONGHU,
        Category.ELDERLY,
        ProjectMode.EVENT,
        4,
        2,
        ["空巢老人", "残疾人"],
        "每月第一个周六上午在社区活动室为老人免费理发，行动不便的可上门。",
        "approved",
    ),
    (
        "健康义诊",
        "member_chen",
        LONGHU,
        Category.HEALTH,
        ProjectMode.EVENT,
        5,
        3,
        ["空巢老人", "独居老人"],
        "联系区卫健局医生为居民量血压、测血糖，讲解慢病用药。",
        "completed",
    ),
    (
        "代买药",
        "member_zhao",
        LONGHU,
        Category.ERRAND,
        ProjectMode.MENU,
        3,
        20,
        ["独居老人", "残疾人"],
        "长期服务菜单：为行动不便的居民代买常用药，居民可在平台预约。",
        "approved",
    ),
    (
        "法律讲堂",
        "member_liu",
        LONGHU,
        Category.LEGAL,
        ProjectMode.EVENT,
        3,
        2,
        ["全体居民"],
        "司法局党员讲解防诈骗、遗嘱继承和邻里纠纷调解。",
        "submitted",
    ),
    (
        "文化墙手绘",
        "member_zhao",
        LONGHU,
        Category.CULTURE,
        ProjectMode.EVENT,
        6,
        8,
        ["儿童", "青少年"],
        "和小区孩子们一起手绘楼道文化墙。",
        "changes_requested",
    ),
    (
        "广场舞教学",
        "member_zhao",
        LONGHU,
        Category.CULTURE,
        ProjectMode.EVENT,
        4,
        4,
        ["全体居民"],
        "每周三晚教广场舞。",
        "rejected",
    ),
    (
        "上门理发",
        "member_liu",
        LONGHU,
        Category.ELDERLY,
        ProjectMode.MENU,
        2,
        10,
        ["残疾人"],
        "为卧床老人上门理发（草稿）。",
        "draft",
    ),
    (
        "旧衣回收",
        "member_liu",
        LONGHU,
        Category.ENVIRONMENT,
        ProjectMode.EVENT,
        3,
        2,
        ["全体居民"],
        "组织旧衣物分类回收。",
        "cancelled",
    ),
    (
        "亲子读书会",
        "member_sun",
        ZIJING,
        Category.EDUCATION,
        ProjectMode.EVENT,
        5,
        2,
        ["儿童"],
        "周末在社区图书角带孩子读书。",
        "approved",
    ),
]

COMMENTS = {
    "request_changes": "请补充绘制区域和所需材料清单。",
    "reject": "与社区文艺队的活动重复，建议加入文艺队。",
    "cancel": "场地不足，暂停开展。",
}


def _at(days_ago: int, hour: int, minute: int = 0) -> datetime:
    """Return today's local date minus ``days_ago`` at ``hour:minute`` Beijing time."""
    local = datetime.now(DEFAULT_ZONE).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return local - timedelta(days=days_ago)


def _steps_to(
    status: str, owner: User, secretary: User
) -> list[tuple[User, ProjectAction, str | None]]:
    """Return the transitions (actor, action, comment) that take a draft to ``status``."""
    submit = (owner, ProjectAction.SUBMIT, None)
    steps: dict[str, list[tuple[User, ProjectAction, str | None]]] = {
        "draft": [],
        "submitted": [submit],
        "changes_requested": [
            submit,
            (secretary, ProjectAction.REQUEST_CHANGES, COMMENTS["request_changes"]),
        ],
        "approved": [submit, (secretary, ProjectAction.APPROVE, None)],
        # completed after its deliveries are recorded, at the end of load()
        "completed": [submit, (secretary, ProjectAction.APPROVE, None)],
        "rejected": [submit, (secretary, ProjectAction.REJECT, COMMENTS["reject"])],
        "cancelled": [(owner, ProjectAction.CANCEL, COMMENTS["cancel"])],
    }
    return steps[status]


def load() -> None:
    """Load the projects, teams, needs and deliveries (idempotent)."""
    longhu = demo_area(LONGHU)
    exists = db.session.execute(
        sa.select(Project.id).where(Project.community_id == longhu.id, Project.title == "义务理发")
    ).first()
    if exists is not None:
        return
    secretaries: dict[tuple[str, ...], User] = {
        LONGHU: demo_user("secretary_lh"),
        ZIJING: demo_user("secretary_zj"),
    }
    projects: dict[str, Project] = {}
    for title, owner_name, path, category, mode, capacity, hours, groups, text, status in PROJECTS:
        owner_user = demo_user(owner_name)
        with atomic():
            project = project_service.create_project(
                owner_user,
                community_id=demo_area(path).id,
                title=title,
                description=text,
                category=category,
                mode=mode,
                capacity=capacity,
                planned_minutes=round(hours * 60),
                starts_at=_at(-7, 9) if mode == ProjectMode.EVENT else None,
                ends_at=_at(-7, 11) if mode == ProjectMode.EVENT else None,
                skills=[],
                target_groups=groups,
            )
        projects[title] = project
        steps = _steps_to(status, owner_user, secretaries[path])
        for actor, action, comment in steps:
            with atomic():
                project_service.transition(actor, project, action, comment)

    chen, liu, zhao = demo_user("member_chen"), demo_user("member_liu"), demo_user("member_zhao")
    wang, li, zhou = (
        demo_user("resident_wang"),
        demo_user("resident_li"),
        demo_user("resident_zhou"),
    )
    grid = demo_user("grid_lh1")

    # Teams: 刘 joins 义务理发 and 健康义诊; 赵 asks to join 义务理发 (pending); 陈 joins 代买药.
    for project, member, approve in (
        (projects["义务理发"], liu, True),
        (projects["健康义诊"], liu, True),
        (projects["代买药"], chen, True),
        (projects["法律讲堂"], chen, False),
        (projects["义务理发"], zhao, False),
    ):
        with atomic():
            project_service.request_join(member, project)
        if approve:
            with atomic():
                owner = db.session.get(User, project.owner_id)
                if owner is None:
                    raise LookupError(f"owner of {project.title}")
                project_service.approve_member(owner, project, member.id)

    # Needs: posted, posted on behalf, ordered from a menu, claimed.
    with atomic():
        medicine = need_service.create_need(
            wang,
            community_id=longhu.id,
            title="代买降压药",
            description="常吃的硝苯地平缓释片快吃完了。",
            category=Category.ERRAND,
        )
    with atomic():
        need_service.dispatch(secretaries[LONGHU], medicine, project_id=projects["代买药"].id)
    with atomic():
        need_service.create_need(
            grid,
            community_id=longhu.id,
            title="修理漏水的水龙头",
            description="厨房水龙头漏水，老人腿脚不便。",
            category=Category.REPAIR,
            on_behalf_of=li.id,
        )
    with atomic():
        escort = need_service.create_need(
            li,
            community_id=longhu.id,
            title="陪同去医院复查",
            description="下周二上午去区医院复查。",
            category=Category.HEALTH,
        )
    with atomic():
        need_service.claim(liu, escort)
    with atomic():
        need_service.order_menu(zhou, projects["代买药"], description="需要代买感冒药。")

    # Deliveries of the last days (Beijing time), recorded by the owners.
    now = utcnow()
    sessions = [
        (projects["健康义诊"], chen, 4, 9, 150, [(chen, 150), (liu, 120)], [wang, li, zhou], None),
        (projects["义务理发"], chen, 3, 9, 120, [(chen, 120), (liu, 120)], [wang, li], None),
        (projects["代买药"], zhao, 2, 15, 60, [(zhao, 60)], [wang], medicine),
        (projects["义务理发"], chen, 1, 14, 90, [(chen, 90)], [zhou], None),
    ]
    for project, recorder, days_ago, hour, minutes, parts, beneficiaries, need in sessions:
        started = _at(days_ago, hour)
        with atomic():
            delivery_service.record_delivery(
                recorder,
                project_id=project.id,
                started_at=started,
                ended_at=started + timedelta(minutes=minutes),
                participants=[(u.id, m) for u, m in parts],
                beneficiaries=[b.id for b in beneficiaries],
                need_id=need.id if need is not None else None,
                now=now,
            )
    with atomic():
        project_service.transition(chen, projects["健康义诊"], ProjectAction.COMPLETE)
