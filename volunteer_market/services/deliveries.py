"""Deliveries: record one service session, its participants, beneficiaries and no-shows.

Design overview
---------------
* Recorded by the owner or an active team member of an ``approved`` project.
* Participants (owner or active team members) serve whole minutes, each at most the
  session length and :func:`participant_cap_minutes` (8 h; the points policy may
  replace that function). A session lasts at most 24 h, ends after it starts, not in
  the future and not longer ago than the rating window (its codes must still work).
* Beneficiaries are residents of the project's community; nobody is both.
* A member never has two overlapping sessions: inside the write transaction the
  participants' user rows are locked (``FOR NO KEY UPDATE`` on PostgreSQL, in id
  order; SQLite's ``BEGIN IMMEDIATE`` already serialises writers) before the overlap
  query, so two concurrent recordings for one member cannot both pass.
* The optional need (same community) is closed by a conditional UPDATE.
* Each beneficiary gets a one-time six-digit code and a long random token for the QR
  URL ``/rate/<token>``. Only ``sha256`` hex digests are stored
  (:func:`rating_code_hash`, :func:`rating_token_hash`); the raw values are returned
  once, to the recorder, by :func:`record_delivery`. A code is unique among unused
  codes of deliveries whose rating window is still open: look codes up with
  :func:`find_beneficiary_by_code`, which applies the same condition.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import segno
import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from ..extensions import db
from ..models import (
    MAX_PARTICIPANT_MINUTES,
    Area,
    Delivery,
    DeliveryBeneficiary,
    DeliveryNoShow,
    DeliveryParticipant,
    DeliveryStatus,
    Need,
    Project,
    ProjectStatus,
    Role,
    RoleGrant,
    TeamMembership,
    TeamStatus,
    User,
    utcnow,
)
from . import audit, permissions
from . import needs as need_service
from .errors import Conflict, Forbidden, NotFound, ValidationFailed
from .projects import get_visible_project

#: Ratings are accepted until ``ended_at`` + this (the default policy).
RATING_WINDOW = timedelta(days=7)
#: A session must be recorded while its rating window is open.
RECORD_WINDOW = RATING_WINDOW
MAX_SESSION = timedelta(hours=24)
#: Tolerance for clocks of phones that run a little fast.
CLOCK_SKEW = timedelta(minutes=5)
CODE_DIGITS = 6


def participant_cap_minutes(community_id: int) -> int:
    """Return the most minutes one participant may be credited in one delivery (policy: 8 h).

    The points policy (per community, versioned) may replace this; it can never go
    above :data:`MAX_PARTICIPANT_MINUTES`, which the database enforces.
    """
    return MAX_PARTICIPANT_MINUTES


def rating_window(community_id: int) -> timedelta:
    """Return the rating window of the points policy in force for the community.

    Fixed on the delivery at recording time (``rating_deadline``), so a later policy
    change never moves the deadline of a recorded delivery.
    """
    from .points_policy import current_policy

    return timedelta(days=current_policy(community_id).rating_window_days)


def rating_code_hash(code: str) -> str:
    """Return the stored digest of a six-digit rating code."""
    return hashlib.sha256(code.encode()).hexdigest()


def rating_token_hash(token: str) -> str:
    """Return the stored digest of a QR rating token."""
    return hashlib.sha256(token.encode()).hexdigest()


def qr_svg_data_uri(url: str) -> str:
    """Return a QR code of ``url`` as an SVG ``data:`` URI (allowed by the CSP's img-src)."""
    return segno.make(url, error="m").svg_data_uri(scale=4, border=2)


@dataclass(frozen=True)
class RatingCode:
    """A beneficiary's one-time code, returned once to the recorder."""

    user_id: int
    display_name: str
    code: str
    token: str


@dataclass
class Recorded:
    delivery: Delivery
    rating_codes: list[RatingCode] = field(default_factory=list)


# --- reading ------------------------------------------------------------------


def get_delivery(delivery_id: int) -> Delivery:
    """Return the delivery with participants, beneficiaries and no-shows loaded."""
    delivery = db.session.execute(
        sa.select(Delivery)
        .where(Delivery.id == delivery_id)
        .options(
            selectinload(Delivery.participants).joinedload(DeliveryParticipant.user),
            selectinload(Delivery.beneficiaries).joinedload(DeliveryBeneficiary.user),
            selectinload(Delivery.no_shows).joinedload(DeliveryNoShow.user),
            joinedload(Delivery.project),
        )
    ).scalar_one_or_none()
    if delivery is None:
        raise NotFound("Delivery not found.")
    return delivery


def get_visible_delivery(actor: User, delivery_id: int) -> Delivery:
    """Return the delivery if ``actor`` may see it, else raise :class:`NotFound`."""
    delivery = get_delivery(delivery_id)
    if not permissions.may(actor, "delivery.view", delivery):
        raise NotFound("Delivery not found.")
    return delivery


def visible_condition(actor: User) -> sa.ColumnElement[bool]:
    """Return the SQL twin of the ``delivery.view`` rule for lists."""
    if permissions.is_admin(actor):
        return sa.true()
    conds: list[sa.ColumnElement[bool]] = [
        Delivery.recorded_by_id == actor.id,
        Delivery.project_id.in_(
            sa.select(Project.id).where(
                sa.or_(
                    Project.owner_id == actor.id,
                    Project.id.in_(
                        sa.select(TeamMembership.project_id).where(
                            TeamMembership.user_id == actor.id,
                            TeamMembership.status == TeamStatus.ACTIVE,
                        )
                    ),
                )
            )
        ),
        Delivery.id.in_(
            sa.select(DeliveryParticipant.delivery_id).where(
                DeliveryParticipant.user_id == actor.id
            )
        ),
        Delivery.id.in_(
            sa.select(DeliveryBeneficiary.delivery_id).where(
                DeliveryBeneficiary.user_id == actor.id
            )
        ),
    ]
    staff = permissions.communities_of(actor, [Role.SECRETARY, Role.GRID_WORKER])
    if staff:
        conds.append(Delivery.community_id.in_(staff))
    officer_areas = permissions.grant_areas(actor, [Role.OFFICER])
    if officer_areas:
        conds.append(
            Delivery.community_id.in_(
                sa.select(Area.id).where(
                    sa.or_(*[Area.path.startswith(a.path, autoescape=True) for a in officer_areas])
                )
            )
        )
    return sa.or_(*conds)


def list_deliveries(
    actor: User, *, project_id: int | None = None, community_id: int | None = None
) -> sa.Select[tuple[Delivery]]:
    """Return a SELECT of the deliveries ``actor`` may see, newest first (people loaded)."""
    stmt = (
        sa.select(Delivery)
        .where(visible_condition(actor))
        .options(
            selectinload(Delivery.participants).joinedload(DeliveryParticipant.user),
            selectinload(Delivery.beneficiaries).joinedload(DeliveryBeneficiary.user),
            selectinload(Delivery.no_shows),
        )
        .order_by(Delivery.started_at.desc(), Delivery.id.desc())
    )
    if project_id is not None:
        stmt = stmt.where(Delivery.project_id == project_id)
    if community_id is not None:
        stmt = stmt.where(Delivery.community_id == community_id)
    return stmt


def deliveries_of(project: Project) -> list[Delivery]:
    """Return the project's deliveries, newest first, participants loaded (no N+1)."""
    return list(
        db.session.execute(
            sa.select(Delivery)
            .where(Delivery.project_id == project.id)
            .options(
                selectinload(Delivery.participants).joinedload(DeliveryParticipant.user),
                selectinload(Delivery.beneficiaries),
                selectinload(Delivery.no_shows),
            )
            .order_by(Delivery.started_at.desc(), Delivery.id.desc())
        ).scalars()
    )


def find_beneficiary_by_code(
    code: str, *, now: datetime | None = None
) -> DeliveryBeneficiary | None:
    """Return the beneficiary row of an unused code whose rating window is open."""
    now = now or utcnow()
    return db.session.execute(
        sa.select(DeliveryBeneficiary)
        .join(Delivery, Delivery.id == DeliveryBeneficiary.delivery_id)
        .where(
            DeliveryBeneficiary.rating_code_hash == rating_code_hash(code),
            DeliveryBeneficiary.code_used_at.is_(None),
            Delivery.rating_deadline > now,
            Delivery.status == DeliveryStatus.AWAITING_RATINGS,
        )
    ).scalar_one_or_none()


def find_beneficiary_by_token(token: str) -> DeliveryBeneficiary | None:
    """Return the beneficiary row of a QR token (used or not; the caller checks)."""
    return db.session.execute(
        sa.select(DeliveryBeneficiary).where(
            DeliveryBeneficiary.rating_token_hash == rating_token_hash(token)
        )
    ).scalar_one_or_none()


# --- recording ----------------------------------------------------------------


def _team_ids(project: Project) -> set[int]:
    ids = set(
        db.session.scalars(
            sa.select(TeamMembership.user_id).where(
                TeamMembership.project_id == project.id,
                TeamMembership.status == TeamStatus.ACTIVE,
            )
        )
    )
    ids.add(project.owner_id)
    return ids


def _residents_of(community: Area, user_ids: Iterable[int]) -> set[int]:
    ids = list(set(user_ids))
    if not ids:
        return set()
    return set(
        db.session.scalars(
            sa.select(RoleGrant.user_id)
            .join(Area, Area.id == RoleGrant.area_id)
            .join(User, User.id == RoleGrant.user_id)
            .where(
                RoleGrant.user_id.in_(ids),
                RoleGrant.role == Role.RESIDENT,
                RoleGrant.revoked_at.is_(None),
                User.is_active.is_(True),
                Area.path.startswith(community.path, autoescape=True),
            )
        )
    )


def _lock_members(user_ids: Sequence[int]) -> None:
    """Serialise recordings per member (PostgreSQL row locks in id order)."""
    db.session.execute(
        sa.select(User.id)
        .where(User.id.in_(sorted(user_ids)))
        .order_by(User.id)
        .with_for_update(key_share=True)
    ).all()


def _overlapping(user_ids: Sequence[int], started_at: datetime, ended_at: datetime) -> list[int]:
    return sorted(
        set(
            db.session.scalars(
                sa.select(DeliveryParticipant.user_id)
                .join(Delivery, Delivery.id == DeliveryParticipant.delivery_id)
                .where(
                    DeliveryParticipant.user_id.in_(list(user_ids)),
                    Delivery.status != DeliveryStatus.CANCELLED,
                    Delivery.started_at < ended_at,
                    Delivery.ended_at > started_at,
                )
            )
        )
    )


def _new_code(now: datetime, taken: set[str]) -> str:
    """Return a six-digit code not among the unused codes of open deliveries."""
    for _attempt in range(50):
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        digest = rating_code_hash(code)
        if digest in taken:
            continue
        clash = db.session.execute(
            sa.select(DeliveryBeneficiary.id)
            .join(Delivery, Delivery.id == DeliveryBeneficiary.delivery_id)
            .where(
                DeliveryBeneficiary.rating_code_hash == digest,
                DeliveryBeneficiary.code_used_at.is_(None),
                Delivery.rating_deadline > now,
            )
            .limit(1)
        ).first()
        if clash is None:
            taken.add(digest)
            return code
    raise Conflict("Could not allocate a rating code; try again.")  # pragma: no cover


def record_delivery(
    actor: User,
    *,
    project_id: int,
    started_at: datetime,
    ended_at: datetime,
    participants: Sequence[tuple[int, int]],
    beneficiaries: Sequence[int] = (),
    need_id: int | None = None,
    no_shows: Sequence[int] = (),
    photo_path: str | None = None,
    now: datetime | None = None,
) -> Recorded:
    """Record one service session; return it with the beneficiaries' raw rating codes.

    ``participants`` are ``(user_id, minutes)`` pairs.

    :raises NotFound: the actor may not see the project.
    :raises Forbidden: the actor is neither the owner nor an active team member.
    :raises Conflict: the project is not approved; a participant already has a session
        overlapping this one; the need was closed meanwhile.
    :raises ValidationFailed: times, participants, beneficiaries, no-shows or need invalid.
    """
    now = now or utcnow()
    started_at, ended_at = started_at.astimezone(UTC), ended_at.astimezone(UTC)
    project = get_visible_project(actor, project_id)
    permissions.require(actor, "delivery.record", project)
    if project.status != ProjectStatus.APPROVED:
        raise Conflict(
            f"A project that is {project.status.value} takes no deliveries.",
            state=project.status.value,
        )
    errors: dict[str, list[str]] = {}

    def bad(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    session_minutes = 0
    if ended_at <= started_at:
        bad("ended_at", "Must be after started_at.")
    else:
        if ended_at - started_at > MAX_SESSION:
            bad("ended_at", "A session lasts at most 24 hours.")
        session_minutes = int((ended_at - started_at).total_seconds() // 60)
    if ended_at > now + CLOCK_SKEW:
        bad("ended_at", "Must not be in the future.")
    window = rating_window(project.community_id)
    if ended_at < now - window:
        bad("ended_at", f"Sessions must be recorded within {window.days} days.")

    cap = min(participant_cap_minutes(project.community_id), MAX_PARTICIPANT_MINUTES)
    team = _team_ids(project)
    seen: set[int] = set()
    if not participants:
        bad("participants", "At least one participant.")
    for index, (user_id, minutes) in enumerate(participants):
        if user_id in seen:
            bad(f"participants.{index}.user_id", "Listed twice.")
        seen.add(user_id)
        if user_id not in team:
            bad(f"participants.{index}.user_id", "Not the owner or an active team member.")
        if minutes < 1:
            bad(f"participants.{index}.hours", "At least one minute.")
        elif minutes > cap:
            bad(f"participants.{index}.hours", f"At most {cap // 60} hours per delivery.")
        elif session_minutes and minutes > session_minutes:
            bad(f"participants.{index}.hours", "More than the session length.")
    participant_ids = [user_id for user_id, _m in participants]

    need: Need | None = None
    beneficiary_ids = list(dict.fromkeys(beneficiaries))
    if len(beneficiary_ids) != len(beneficiaries):
        bad("beneficiaries", "Listed twice.")
    if need_id is not None:
        need = db.session.get(Need, need_id)
        if need is None or need.community_id != project.community_id:
            bad("need_id", "Not a need of this community.")
            need = None
        elif need.project_id is not None and need.project_id != project.id:
            bad("need_id", "This need was given to another project.")
        elif need.assignee_id is not None and need.assignee_id not in seen:
            bad("need_id", "The member it was given to must take part.")
        elif need.beneficiary_id not in beneficiary_ids:
            beneficiary_ids.append(need.beneficiary_id)
    community = db.session.get(Area, project.community_id)
    assert community is not None
    residents = _residents_of(community, beneficiary_ids)
    for user_id in beneficiary_ids:
        if user_id not in residents:
            bad("beneficiaries", f"User {user_id} is not a resident of this community.")
        if user_id in seen:
            bad("beneficiaries", f"User {user_id} took part and cannot be a beneficiary.")

    no_show_ids = list(dict.fromkeys(no_shows))
    for user_id in no_show_ids:
        if user_id not in team:
            bad("no_shows", f"User {user_id} is not on the team.")
        elif user_id in seen:
            bad("no_shows", f"User {user_id} took part.")
    if errors:
        raise ValidationFailed("The delivery has invalid fields.", errors=errors)

    _lock_members(participant_ids)
    clash = _overlapping(participant_ids, started_at, ended_at)
    if clash:
        raise Conflict(
            "A participant already has a delivery overlapping this session.",
            errors={"participants": [f"User {uid} has an overlapping delivery." for uid in clash]},
        )

    delivery = Delivery(
        project_id=project.id,
        community_id=project.community_id,
        recorded_by_id=actor.id,
        started_at=started_at,
        ended_at=ended_at,
        need_id=need.id if need is not None else None,
        photo_path=photo_path,
        status=DeliveryStatus.AWAITING_RATINGS,
        rating_deadline=ended_at + window,
    )
    db.session.add(delivery)
    db.session.flush()
    if need is not None:
        need_service.close_for_delivery(actor, need, delivery.id)
    for user_id, minutes in participants:
        db.session.add(
            DeliveryParticipant(delivery_id=delivery.id, user_id=user_id, minutes=minutes)
        )
    for user_id in no_show_ids:
        db.session.add(DeliveryNoShow(delivery_id=delivery.id, user_id=user_id))
    codes: list[RatingCode] = []
    taken: set[str] = set()
    names = dict(
        db.session.execute(
            sa.select(User.id, User.display_name).where(User.id.in_(beneficiary_ids or [0]))
        ).all()
    )
    for user_id in beneficiary_ids:
        code = _new_code(now, taken)
        token = secrets.token_urlsafe(32)
        db.session.add(
            DeliveryBeneficiary(
                delivery_id=delivery.id,
                user_id=user_id,
                rating_code_hash=rating_code_hash(code),
                rating_token_hash=rating_token_hash(token),
            )
        )
        codes.append(RatingCode(user_id, names.get(user_id, ""), code, token))
    db.session.flush()
    audit.record(
        actor,
        "delivery.record",
        "delivery",
        delivery.id,
        area_id=project.community_id,
        detail={
            "project_id": project.id,
            "participants": len(participants),
            "beneficiaries": len(beneficiary_ids),
            "no_shows": len(no_show_ids),
            "need_id": delivery.need_id,
        },
    )
    for user_id, minutes in participants:
        if user_id != actor.id:
            audit.notify(
                user_id,
                "delivery.recorded",
                object_type="delivery",
                object_id=delivery.id,
                params={"title": project.title, "minutes": minutes},
            )
    for user_id in beneficiary_ids:
        audit.notify(
            user_id,
            "delivery.please_rate",
            object_type="delivery",
            object_id=delivery.id,
            params={"title": project.title},
        )
    for user_id in no_show_ids:
        audit.notify(
            user_id,
            "delivery.no_show",
            object_type="delivery",
            object_id=delivery.id,
            params={"title": project.title},
        )
    db.session.flush()
    return Recorded(get_delivery(delivery.id), codes)


def check_photo_allowed(actor: User, delivery: Delivery) -> None:
    """Raise unless ``actor`` may change the photo of ``delivery`` now.

    :raises Forbidden: neither the recorder nor the project owner.
    :raises Conflict: the delivery is settled or cancelled.
    """
    project = get_visible_project(actor, delivery.project_id)
    if actor.id != delivery.recorded_by_id and not permissions.may(actor, "project.own", project):
        raise Forbidden("Only the recorder or the project owner may change the photo.")
    if delivery.status != DeliveryStatus.AWAITING_RATINGS:
        raise Conflict(f"A delivery that is {delivery.status.value} cannot be changed.")


def set_photo(actor: User, delivery: Delivery, name: str | None) -> Delivery:
    """Attach (or replace) the session photo: the recorder or the project owner, before settlement.

    :raises Forbidden: anyone else.
    :raises Conflict: the delivery is settled or cancelled.
    """
    check_photo_allowed(actor, delivery)
    delivery.photo_path = name
    db.session.flush()
    audit.record(actor, "delivery.photo", "delivery", delivery.id, area_id=delivery.community_id)
    return delivery
