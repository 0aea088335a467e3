"""Recording a delivery: one service session with its participants, beneficiaries,
no-shows and optional need, checked field by field, guarded against overlapping
sessions, written, announced. No rating code is made here: the recorder is a
participant, and the secret that proves a resident's rating never reaches one
(codes come on slips, ``slips.py``).

:func:`record_delivery` is a sequence of named steps: the project, the times, the
participants, the beneficiaries and the need, the no-shows (all field errors are
gathered into one 422), the overlap guard, the writing, the audit and notifications.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from ...extensions import db
from ...models import (
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
from .. import audit, permissions
from .. import needs as need_service
from ..errors import Conflict, ValidationFailed
from ..points_policy import current_policy
from ..projects import get_visible_project
from .reading import get_delivery

#: Ratings are accepted until ``ended_at`` + this (the default policy).
RATING_WINDOW = timedelta(days=7)
#: A session must be recorded while its rating window is open.
RECORD_WINDOW = RATING_WINDOW
MAX_SESSION = timedelta(hours=24)
#: Tolerance for clocks of phones that run a little fast.
CLOCK_SKEW = timedelta(minutes=5)


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
    return timedelta(days=current_policy(community_id).rating_window_days)


@dataclass
class Recorded:
    """A recorded delivery (it carries no rating code: see ``slips.py``)."""

    delivery: Delivery


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
    attendees: Collection[int] = (),
    now: datetime | None = None,
) -> Recorded:
    """Record one service session; return it (never with a rating code).

    ``participants`` are ``(user_id, minutes)`` pairs. ``attendees`` are the members who
    took a place in a session of the project (``services/sessions/delivery.py``): they
    may be participants and no-shows besides the team.

    :raises NotFound: the actor may not see the project.
    :raises Forbidden: the actor is neither the owner nor an active team member.
    :raises Conflict: the project is not approved; a participant already has a session
        overlapping this one; the need was closed meanwhile.
    :raises ValidationFailed: times, participants, beneficiaries, no-shows or need invalid.
    """
    now = now or utcnow()
    started_at, ended_at = started_at.astimezone(UTC), ended_at.astimezone(UTC)
    project = _recordable_project(actor, project_id)
    errors: dict[str, list[str]] = {}
    session_minutes, window = _check_times(errors, project, started_at, ended_at, now)

    cap = min(participant_cap_minutes(project.community_id), MAX_PARTICIPANT_MINUTES)
    team = _team_ids(project) | set(attendees)
    seen = _check_participants(errors, participants, team, cap, session_minutes)
    participant_ids = [user_id for user_id, _m in participants]

    beneficiary_ids = _unique_beneficiaries(errors, beneficiaries)
    need, need_resident = _check_need(errors, project, need_id, seen, beneficiary_ids)
    if need_resident is not None:
        beneficiary_ids.append(need_resident)
    _check_beneficiaries(errors, project, beneficiary_ids, seen)
    no_show_ids = _check_no_shows(errors, no_shows, team, seen)
    if errors:
        raise ValidationFailed("The delivery has invalid fields.", errors=errors)

    _refuse_overlaps(participant_ids, started_at, ended_at)
    delivery = _write(
        actor,
        project,
        started_at=started_at,
        ended_at=ended_at,
        need=need,
        photo_path=photo_path,
        window=window,
        participants=participants,
        no_show_ids=no_show_ids,
    )
    _add_beneficiaries(delivery, beneficiary_ids)
    db.session.flush()
    _audit_recording(actor, project, delivery, participants, beneficiary_ids, no_show_ids)
    _notify_people(actor, project, delivery, participants, beneficiary_ids, no_show_ids)
    db.session.flush()
    return Recorded(get_delivery(delivery.id))


# --- validation steps -----------------------------------------------------------------


def _bad(errors: dict[str, list[str]], name: str, message: str) -> None:
    errors.setdefault(name, []).append(message)


def _recordable_project(actor: User, project_id: int) -> Project:
    """Return the project if ``actor`` may record for it and it is approved.

    :raises NotFound: the actor may not see the project.
    :raises Forbidden: neither the owner nor an active team member.
    :raises Conflict: the project is not approved.
    """
    project = get_visible_project(actor, project_id)
    permissions.require(actor, "delivery.record", project)
    if project.status != ProjectStatus.APPROVED:
        raise Conflict(
            f"A project that is {project.status.value} takes no deliveries.",
            state=project.status.value,
        )
    return project


def _check_times(
    errors: dict[str, list[str]],
    project: Project,
    started_at: datetime,
    ended_at: datetime,
    now: datetime,
) -> tuple[int, timedelta]:
    """Check the session's times; return its length in minutes (0 if out of order) and
    the rating window of the community."""
    session_minutes = 0
    if ended_at <= started_at:
        _bad(errors, "ended_at", "Must be after started_at.")
    else:
        if ended_at - started_at > MAX_SESSION:
            _bad(errors, "ended_at", "A session lasts at most 24 hours.")
        session_minutes = int((ended_at - started_at).total_seconds() // 60)
    if ended_at > now + CLOCK_SKEW:
        _bad(errors, "ended_at", "Must not be in the future.")
    window = rating_window(project.community_id)
    if ended_at < now - window:
        _bad(errors, "ended_at", f"Sessions must be recorded within {window.days} days.")
    return session_minutes, window


def _check_participants(
    errors: dict[str, list[str]],
    participants: Sequence[tuple[int, int]],
    team: set[int],
    cap: int,
    session_minutes: int,
) -> set[int]:
    """Check each participant (on the team, listed once, minutes in range); return their ids."""
    seen: set[int] = set()
    if not participants:
        _bad(errors, "participants", "At least one participant.")
    for index, (user_id, minutes) in enumerate(participants):
        if user_id in seen:
            _bad(errors, f"participants.{index}.user_id", "Listed twice.")
        seen.add(user_id)
        if user_id not in team:
            _bad(errors, f"participants.{index}.user_id", "Not the owner or an active team member.")
        if minutes < 1:
            _bad(errors, f"participants.{index}.hours", "At least one minute.")
        elif minutes > cap:
            _bad(errors, f"participants.{index}.hours", f"At most {cap // 60} hours per delivery.")
        elif session_minutes and minutes > session_minutes:
            _bad(errors, f"participants.{index}.hours", "More than the session length.")
    return seen


def _unique_beneficiaries(errors: dict[str, list[str]], beneficiaries: Sequence[int]) -> list[int]:
    """Return the beneficiaries without repeats (a repeat is an error)."""
    beneficiary_ids = list(dict.fromkeys(beneficiaries))
    if len(beneficiary_ids) != len(beneficiaries):
        _bad(errors, "beneficiaries", "Listed twice.")
    return beneficiary_ids


def _check_need(
    errors: dict[str, list[str]],
    project: Project,
    need_id: int | None,
    seen: set[int],
    beneficiary_ids: list[int],
) -> tuple[Need | None, int | None]:
    """Check the optional need; return it and its resident when that resident must be
    added to the beneficiaries (None when already listed or the need is refused)."""
    need: Need | None = None
    if need_id is not None:
        need = db.session.get(Need, need_id)
        if need is None or need.community_id != project.community_id:
            _bad(errors, "need_id", "Not a need of this community.")
            need = None
        elif need.project_id is not None and need.project_id != project.id:
            _bad(errors, "need_id", "This need was given to another project.")
        elif need.assignee_id is not None and need.assignee_id not in seen:
            _bad(errors, "need_id", "The member it was given to must take part.")
        elif need.beneficiary_id not in beneficiary_ids:
            return need, need.beneficiary_id
    return need, None


def _check_beneficiaries(
    errors: dict[str, list[str]], project: Project, beneficiary_ids: list[int], seen: set[int]
) -> None:
    """Every beneficiary is an active resident of the community and took no part."""
    community = db.session.get(Area, project.community_id)
    assert community is not None
    residents = _residents_of(community, beneficiary_ids)
    for user_id in beneficiary_ids:
        if user_id not in residents:
            _bad(errors, "beneficiaries", f"User {user_id} is not a resident of this community.")
        if user_id in seen:
            _bad(errors, "beneficiaries", f"User {user_id} took part and cannot be a beneficiary.")


def _check_no_shows(
    errors: dict[str, list[str]], no_shows: Sequence[int], team: set[int], seen: set[int]
) -> list[int]:
    """Return the no-shows without repeats; each is on the team and took no part."""
    no_show_ids = list(dict.fromkeys(no_shows))
    for user_id in no_show_ids:
        if user_id not in team:
            _bad(errors, "no_shows", f"User {user_id} is not on the team.")
        elif user_id in seen:
            _bad(errors, "no_shows", f"User {user_id} took part.")
    return no_show_ids


# --- guards against overlapping sessions ----------------------------------------------


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


def _refuse_overlaps(participant_ids: list[int], started_at: datetime, ended_at: datetime) -> None:
    """Lock the participants, then refuse a session overlapping one of theirs (409)."""
    _lock_members(participant_ids)
    clash = _overlapping(participant_ids, started_at, ended_at)
    if clash:
        raise Conflict(
            "A participant already has a delivery overlapping this session.",
            errors={"participants": [f"User {uid} has an overlapping delivery." for uid in clash]},
        )


# --- writing and announcing -------------------------------------------------------------


def _write(
    actor: User,
    project: Project,
    *,
    started_at: datetime,
    ended_at: datetime,
    need: Need | None,
    photo_path: str | None,
    window: timedelta,
    participants: Sequence[tuple[int, int]],
    no_show_ids: list[int],
) -> Delivery:
    """Insert the delivery, close its need, add the participants and the no-shows."""
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
    return delivery


def _add_beneficiaries(delivery: Delivery, beneficiary_ids: list[int]) -> None:
    """Add each beneficiary without a code: they rate from their own session, or on a
    slip that the secretary or a non-participant grid worker issues later."""
    for user_id in beneficiary_ids:
        db.session.add(DeliveryBeneficiary(delivery_id=delivery.id, user_id=user_id))


def _audit_recording(
    actor: User,
    project: Project,
    delivery: Delivery,
    participants: Sequence[tuple[int, int]],
    beneficiary_ids: list[int],
    no_show_ids: list[int],
) -> None:
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


def _notify_people(
    actor: User,
    project: Project,
    delivery: Delivery,
    participants: Sequence[tuple[int, int]],
    beneficiary_ids: list[int],
    no_show_ids: list[int],
) -> None:
    """Tell the other participants, ask the beneficiaries to rate, tell the no-shows."""
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
