"""Each person's home (工作台): what waits for the signed-in person, per role held.

Design overview
---------------
:func:`home` returns one part per role the viewer holds (``permissions/home.py``), in the
order of :data:`PARTS`; a person with several roles gets each part. Every count and list
is scoped by the viewer's own grants (the communities where he is secretary, the grids
where he is grid worker, the subtree of an officer), so another community's objects are
never counted.

Every query is bounded: the counts of a part are scalar subqueries of ONE ``SELECT``
(a secretary's eight counts cost one statement); lists are ``LIMIT``-ed selects of plain
columns (no ORM objects, so no lazy loads): the statements of the home page do not grow
with the number of items (``tests/home/test_query_counts.py``).

* secretary — ``reviews`` (submitted projects), ``settlements`` (deliveries awaiting
  settlement; ``settlements_due``: of them, those whose rating window has closed),
  ``redemptions`` (held, to hand over), ``appeals`` (open), ``objections`` (open, on the
  community's evaluations), ``registrations`` (pending), ``reports`` (open comment
  reports), ``needs`` (open needs to dispatch); and the dashboard summary of each of
  his communities (members, active members, participation rate, points this year).
* officer — the communities of his subtree, the appeals open there (he decides them),
  the open objections there.
* grid worker — the residents of his grids, their open needs, and the deliveries one of
  them received and has not rated while the window is open (``proxy``: he may enter the
  rating for them, ``rating.proxy``).
* member — his projects (owner or active team member, live ones first), the open needs
  of his communities he may see (``needs.visible_condition``), his balances and his
  last transactions.
* resident — the deliveries he may still rate (first), his needs, the menu of services
  (approved menu projects) of his communities.
* admin — active users, communities, areas.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..extensions import db
from ..models import (
    Appeal,
    AppealStatus,
    Area,
    AreaKind,
    CommentReport,
    Delivery,
    DeliveryBeneficiary,
    DeliveryParticipant,
    DeliveryStatus,
    Evaluation,
    LedgerTransaction,
    Need,
    NeedStatus,
    Objection,
    ObjectionStatus,
    Project,
    ProjectStatus,
    Rating,
    Redemption,
    RedemptionStatus,
    Registration,
    RegistrationStatus,
    Role,
    RoleGrant,
    TeamMembership,
    TeamStatus,
    User,
    utcnow,
)
from ..models.moderation import ReportStatus
from ..models.projects import ProjectMode
from . import dashboards, ledger, permissions
from . import needs as need_service
from . import ratings as rating_service

#: The parts of the home page, in order, and the rule that gives each.
PARTS = (
    ("resident", "home.resident"),
    ("secretary", "home.secretary"),
    ("officer", "home.officer"),
    ("grid", "home.grid"),
    ("member", "home.member"),
    ("admin", "home.admin"),
)
#: The most rows a list of the home page shows (the full lists are one tap away).
LIST_LIMIT = 5
#: The most communities whose dashboard summary a secretary's home shows.
SUMMARY_LIMIT = 3

_LIVE_PROJECT = (
    ProjectStatus.DRAFT,
    ProjectStatus.SUBMITTED,
    ProjectStatus.CHANGES_REQUESTED,
    ProjectStatus.APPROVED,
)


def _count(entity: Any, *where: Any) -> Any:
    return sa.select(sa.func.count(entity)).where(*where).scalar_subquery()


def _counts(**subqueries: Any) -> dict[str, int]:
    """Run the scalar subqueries as one statement; return ``{name: count}``."""
    names = list(subqueries)
    row = db.session.execute(sa.select(*[subqueries[n].label(n) for n in names])).one()
    return {n: int(row._mapping[n] or 0) for n in names}


def _ids(values: set[int] | list[int]) -> list[int]:
    return sorted(values) or [0]  # ``IN ()`` is refused by some engines: 0 matches nothing


# --- secretary -----------------------------------------------------------------


def secretary_part(actor: User, now: datetime | None = None) -> dict[str, Any]:
    """Return the secretary's to-do counts and the dashboard summary of his communities."""
    now = now or utcnow()
    c = _ids(permissions.communities_of(actor, [Role.SECRETARY]))
    counts = _counts(
        reviews=_count(
            Project.id, Project.community_id.in_(c), Project.status == ProjectStatus.SUBMITTED
        ),
        settlements=_count(
            Delivery.id,
            Delivery.community_id.in_(c),
            Delivery.status == DeliveryStatus.AWAITING_RATINGS,
        ),
        settlements_due=_count(
            Delivery.id,
            Delivery.community_id.in_(c),
            Delivery.status == DeliveryStatus.AWAITING_RATINGS,
            Delivery.rating_deadline <= now,
        ),
        redemptions=_count(
            Redemption.id,
            Redemption.community_id.in_(c),
            Redemption.status == RedemptionStatus.HELD,
        ),
        appeals=_count(Appeal.id, Appeal.community_id.in_(c), Appeal.status == AppealStatus.OPEN),
        objections=_count(
            Objection.id,
            Objection.status == ObjectionStatus.OPEN,
            Objection.evaluation_id.in_(
                sa.select(Evaluation.id).where(Evaluation.community_id.in_(c))
            ),
        ),
        registrations=_count(
            Registration.id,
            Registration.community_id.in_(c),
            Registration.status == RegistrationStatus.PENDING,
        ),
        reports=_count(
            CommentReport.id,
            CommentReport.community_id.in_(c),
            CommentReport.status == ReportStatus.OPEN,
        ),
        needs=_count(Need.id, Need.community_id.in_(c), Need.status == NeedStatus.OPEN),
    )
    return {"counts": counts, "summaries": _summaries(actor, c)}


def _summaries(actor: User, community_ids: list[int]) -> list[dict[str, Any]]:
    """Return the dashboard summary (this year) of the first communities the actor runs."""
    communities = list(
        db.session.scalars(
            sa.select(Area)
            .where(Area.id.in_(community_ids), Area.kind == AreaKind.COMMUNITY)
            .order_by(Area.id)
            .limit(SUMMARY_LIMIT)
        )
    )
    out = []
    for community in communities:
        if not permissions.may(actor, "dashboard.view", community):
            continue
        data = dashboards.dashboard(actor, community)
        out.append(
            {
                "community_id": community.id,
                "name": community.name,
                "period": data["period"],
                "members": data["members"],
                "active_members": data["active_members"],
                "participation_rate": data["participation_rate"],
                "points": sum(r["points"] for r in data["points_by_month"]),
                "hours": round(sum(r["hours"] for r in data["hours_by_month"]), 1),
                "unordered_menu_projects": len(data["unordered_menu_projects"]),
            }
        )
    return out


# --- officer -------------------------------------------------------------------


def officer_part(actor: User) -> dict[str, Any]:
    """Return the counts of the officer's subtree: communities, open appeals, objections."""
    paths = [a.path for a in permissions.grant_areas(actor, [Role.OFFICER])]
    under = sa.select(Area.id).where(
        Area.kind == AreaKind.COMMUNITY,
        sa.or_(*[Area.path.startswith(p, autoescape=True) for p in paths] or [sa.false()]),
    )
    counts = _counts(
        communities=_count(Area.id, Area.id.in_(under)),
        appeals=_count(
            Appeal.id, Appeal.community_id.in_(under), Appeal.status == AppealStatus.OPEN
        ),
        objections=_count(
            Objection.id,
            Objection.status == ObjectionStatus.OPEN,
            Objection.evaluation_id.in_(
                sa.select(Evaluation.id).where(Evaluation.community_id.in_(under))
            ),
        ),
    )
    return {"counts": counts}


# --- grid worker ---------------------------------------------------------------


def grid_part(actor: User, now: datetime | None = None) -> dict[str, Any]:
    """Return the grid worker's residents, their open needs and the ratings he may enter."""
    now = now or utcnow()
    grids = _ids([a.id for a in permissions.grant_areas(actor, [Role.GRID_WORKER])])
    communities = _ids(permissions.communities_of(actor, [Role.GRID_WORKER]))
    residents = (
        sa.select(RoleGrant.user_id)
        .where(
            RoleGrant.role == Role.RESIDENT,
            RoleGrant.revoked_at.is_(None),
            RoleGrant.area_id.in_(grids),
        )
        .distinct()
    )
    rated = sa.exists().where(
        Rating.delivery_id == DeliveryBeneficiary.delivery_id,
        Rating.beneficiary_id == DeliveryBeneficiary.user_id,
    )
    served = sa.exists().where(
        DeliveryParticipant.delivery_id == Delivery.id, DeliveryParticipant.user_id == actor.id
    )
    unrated = (
        sa.select(Delivery.id, Project.title, sa.func.count(DeliveryBeneficiary.id).label("n"))
        .join(DeliveryBeneficiary, DeliveryBeneficiary.delivery_id == Delivery.id)
        .join(Project, Project.id == Delivery.project_id)
        .where(
            DeliveryBeneficiary.user_id.in_(residents),
            Delivery.community_id.in_(communities),
            Delivery.status == DeliveryStatus.AWAITING_RATINGS,
            Delivery.rating_deadline > now,
            Delivery.recorded_by_id != actor.id,
            ~served,
            ~rated,
        )
        .group_by(Delivery.id, Project.title, Delivery.rating_deadline)
    )
    counts = _counts(
        residents=sa.select(sa.func.count()).select_from(residents.subquery()).scalar_subquery(),
        needs=_count(
            Need.id,
            Need.beneficiary_id.in_(residents),
            Need.community_id.in_(communities),
            Need.status.in_([NeedStatus.OPEN, NeedStatus.DISPATCHED, NeedStatus.CLAIMED]),
        ),
        proxy=sa.select(sa.func.count()).select_from(unrated.subquery()).scalar_subquery(),
    )
    rows = db.session.execute(
        unrated.order_by(Delivery.rating_deadline, Delivery.id).limit(LIST_LIMIT)
    ).all()
    proxy = [{"delivery_id": r[0], "title": r[1], "unrated": int(r[2])} for r in rows]
    return {"counts": counts, "proxy": proxy}


# --- member --------------------------------------------------------------------


def member_part(actor: User) -> dict[str, Any]:
    """Return the member's live projects, the open needs he may see and his points."""
    on_team = sa.select(TeamMembership.project_id).where(
        TeamMembership.user_id == actor.id, TeamMembership.status == TeamStatus.ACTIVE
    )
    mine = sa.or_(Project.owner_id == actor.id, Project.id.in_(on_team))
    projects = [
        {"id": r[0], "title": r[1], "status": r[2], "starts_at": r[3], "owner": r[4] == actor.id}
        for r in db.session.execute(
            sa.select(
                Project.id, Project.title, Project.status, Project.starts_at, Project.owner_id
            )
            .where(mine, Project.status.in_(_LIVE_PROJECT))
            .order_by(Project.updated_at.desc(), Project.id.desc())
            .limit(LIST_LIMIT)
        ).all()
    ]
    communities = _ids(permissions.communities_of(actor, [Role.MEMBER]))
    open_needs = sa.and_(
        need_service.visible_condition(actor),
        Need.community_id.in_(communities),
        Need.status == NeedStatus.OPEN,
    )
    counts = _counts(
        projects=_count(Project.id, mine, Project.status.in_(_LIVE_PROJECT)),
        needs=_count(Need.id, open_needs),
    )
    needs = [
        {"id": r[0], "title": r[1], "category": r[2], "created_at": r[3]}
        for r in db.session.execute(
            sa.select(Need.id, Need.title, Need.category, Need.created_at)
            .where(open_needs)
            .order_by(Need.created_at.desc(), Need.id.desc())
            .limit(LIST_LIMIT)
        ).all()
    ]
    txs = list(
        db.session.scalars(
            sa.select(LedgerTransaction)
            .where(LedgerTransaction.member_id == actor.id)
            .order_by(LedgerTransaction.id.desc())
            .limit(LIST_LIMIT)
        )
    )
    return {
        "counts": counts,
        "projects": projects,
        "needs": needs,
        "points": ledger.balances(actor),
        "postings": ledger.present_transactions(txs),
    }


# --- resident ------------------------------------------------------------------


def resident_part(actor: User) -> dict[str, Any]:
    """Return what the resident may rate, his needs and his communities' menu of services."""
    pending = rating_service.to_rate(actor)
    titles = rating_service.titles(pending)
    to_rate = [
        {
            "delivery_id": d.id,
            "title": titles.get(d.id, ""),
            "started_at": d.started_at,
            "deadline": d.rating_deadline,
        }
        for d in pending
    ]
    needs = [
        {"id": r[0], "title": r[1], "status": r[2], "created_at": r[3]}
        for r in db.session.execute(
            sa.select(Need.id, Need.title, Need.status, Need.created_at)
            .where(Need.beneficiary_id == actor.id)
            .order_by(Need.created_at.desc(), Need.id.desc())
            .limit(LIST_LIMIT)
        ).all()
    ]
    communities = _ids(permissions.communities_of(actor, [Role.RESIDENT]))
    menu = [
        {"id": r[0], "title": r[1], "category": r[2]}
        for r in db.session.execute(
            sa.select(Project.id, Project.title, Project.category)
            .where(
                Project.community_id.in_(communities),
                Project.status == ProjectStatus.APPROVED,
                Project.mode == ProjectMode.MENU,
            )
            .order_by(Project.id)
            .limit(LIST_LIMIT * 2)
        ).all()
    ]
    return {"to_rate": to_rate, "needs": needs, "menu": menu}


# --- admin ---------------------------------------------------------------------


def admin_part(_actor: User) -> dict[str, Any]:
    """Return the admin's figures: active users, communities, areas."""
    counts = _counts(
        users=_count(User.id, User.is_active),
        communities=_count(Area.id, Area.kind == AreaKind.COMMUNITY),
        areas=_count(Area.id),
    )
    return {"counts": counts}


_BUILDERS = {
    "resident": resident_part,
    "secretary": secretary_part,
    "officer": officer_part,
    "grid": grid_part,
    "member": member_part,
    "admin": admin_part,
}


def home(viewer: User) -> dict[str, dict[str, Any]]:
    """Return ``{part: data}`` for every part of the home page ``viewer`` has, in order."""
    return {
        name: _BUILDERS[name](viewer) for name, action in PARTS if permissions.may(viewer, action)
    }
