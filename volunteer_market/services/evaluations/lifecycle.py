"""The year's close, its public notice (公示) and the final list.

States and the one way through them (``TRANSITIONS``); every other step is a 409:

    (none) --close--> closed --publish--> in_notice --finalize--> final

* close (secretary): only a year that has ended in the community's time zone; the
  report rows of that moment are frozen as :class:`EvaluationRow`; one evaluation per
  community and year (UNIQUE: a second close is a 409).
* publish (secretary): ``notice_days`` (default 7, 1..60); ``notice_ends_at`` =
  publication + the notice; members and residents of the community are notified.
* objections (``objections.py``) are filed while the notice runs and answered by the
  secretary until the list is final.
* finalize (secretary): only once the notice has ended and no objection is open.

Each step is one conditional ``UPDATE .. WHERE status = :current`` (row count 0 ->
409), audited and notified. Postings are dated when they are made, so after the
close nothing is ever posted *in* the closed year: a delivery of that year settled
later earns in the year of its settlement (as the rankings count it) and the frozen
rows do not move; a later reversal of an earn of the closed year lowers the live
report of that year but never the frozen rows. The frozen rows change only through
upheld objections (a ledger adjustment, then the row is recomputed).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import (
    Area,
    AreaKind,
    Evaluation,
    EvaluationRow,
    EvaluationStatus,
    Objection,
    ObjectionStatus,
    Role,
    RoleGrant,
    User,
    utcnow,
)
from ...models.evaluations import DEFAULT_NOTICE_DAYS, MAX_NOTICE_DAYS, MIN_NOTICE_DAYS
from ...zones import zone
from .. import audit, permissions
from ..errors import Conflict, NotFound, ValidationFailed
from .report import FIELDS, check_year, community_rows

#: (state, action) -> next state. ``None``: no evaluation yet.
TRANSITIONS: dict[tuple[EvaluationStatus | None, str], EvaluationStatus] = {
    (None, "close"): EvaluationStatus.CLOSED,
    (EvaluationStatus.CLOSED, "publish"): EvaluationStatus.IN_NOTICE,
    (EvaluationStatus.IN_NOTICE, "finalize"): EvaluationStatus.FINAL,
}
#: The frozen row's fields: the report's (``report.FIELDS``).
ROW_FIELDS = FIELDS
#: Row fields members and residents see on a published list (names and figures).
PUBLIC_FIELDS = tuple(f for f in ROW_FIELDS if f not in ("username", "home_unit"))


def get_evaluation(actor: User, evaluation_id: int) -> Evaluation:
    """Return the evaluation if ``actor`` may see it.

    :raises NotFound: no such evaluation, or the actor may not see it.
    """
    evaluation = db.session.get(Evaluation, evaluation_id)
    if evaluation is None or not permissions.may(actor, "evaluation.view", evaluation):
        raise NotFound("Evaluation not found.")
    return evaluation


def _community(community_id: int) -> Area:
    area = db.session.get(Area, community_id)
    if area is None or area.kind != AreaKind.COMMUNITY:
        raise NotFound("Community not found.")
    return area


def _require_step(evaluation: Evaluation | None, action: str) -> EvaluationStatus:
    current = evaluation.status if evaluation is not None else None
    nxt = TRANSITIONS.get((current, action))
    if nxt is None:
        raise Conflict(
            "This step is not possible in the evaluation's current state.",
            errors={"status": [str(current or "none")]},
        )
    return nxt


def _move(evaluation: Evaluation, action: str, values: dict[str, Any]) -> None:
    """``UPDATE evaluations SET .. WHERE id = :id AND status = :current`` (409 on 0 rows)."""
    current = evaluation.status
    nxt = _require_step(evaluation, action)
    table = cast(sa.Table, Evaluation.__table__)
    result = cast(
        "sa.CursorResult[Any]",
        db.session.execute(
            table.update()
            .where(table.c.id == evaluation.id, table.c.status == current.value)
            .values(status=nxt.value, **values)
        ),
    )
    if result.rowcount != 1:
        raise Conflict("The evaluation changed meanwhile; reload it.")
    db.session.refresh(evaluation)


def _audience(community: Area) -> list[int]:
    """Members and residents of the community (active grants), by id."""
    return sorted(
        set(
            db.session.scalars(
                sa.select(RoleGrant.user_id)
                .join(Area, Area.id == RoleGrant.area_id)
                .where(
                    RoleGrant.role.in_([Role.MEMBER, Role.RESIDENT]),
                    RoleGrant.revoked_at.is_(None),
                    Area.path.startswith(community.path, autoescape=True),
                )
            )
        )
    )


def _row(evaluation_id: int, r: dict[str, Any]) -> EvaluationRow:
    avg = r["average_score"]
    return EvaluationRow(
        evaluation_id=evaluation_id,
        user_id=r["user_id"],
        username=r["username"],
        display_name=r["display_name"],
        home_unit=r["home_unit"] or "",
        community_id=r["community_id"],
        hours=Decimal(str(r["hours"])),
        deliveries=r["deliveries"],
        projects_led=r["projects_led"],
        projects_joined=r["projects_joined"],
        average_score=Decimal(str(avg)) if avg is not None else None,
        points_earned=r["points_earned"],
        points_spent=r["points_spent"],
        points_expired=r["points_expired"],
        correction=0,
        rank_community=r["rank_community"],
        rank_street=r["rank_street"],
    )


def close_year(
    actor: User, community_id: int, year: int, *, now: datetime | None = None
) -> Evaluation:
    """Close ``year`` for the community: freeze its report rows (status ``closed``).

    :raises NotFound: no such community.
    :raises Forbidden: not the community's secretary.
    :raises ValidationFailed: a bad year.
    :raises Conflict: the year has not ended yet, or is closed already.
    """
    community = _community(community_id)
    permissions.require(actor, "evaluation.manage", community)
    check_year(year)
    now = now or utcnow()
    if year >= now.astimezone(zone(community.timezone)).year:
        raise Conflict(
            "A year can be closed only after it has ended.", errors={"year": ["Not over yet."]}
        )
    _require_step(None, "close")
    evaluation = Evaluation(
        community_id=community.id,
        year=year,
        status=EvaluationStatus.CLOSED,
        closed_by_id=actor.id,
        closed_at=now,
    )
    try:
        with db.session.begin_nested():
            db.session.add(evaluation)
            db.session.flush()
    except IntegrityError:
        raise Conflict(
            "This year is already closed for the community.", errors={"year": ["Closed."]}
        ) from None
    rows = community_rows(community, year)
    db.session.add_all([_row(evaluation.id, r) for r in rows])
    db.session.flush()
    audit.record(
        actor,
        "evaluation.close",
        "evaluation",
        evaluation.id,
        area_id=community.id,
        detail={"year": year, "rows": len(rows)},
    )
    return evaluation


def publish(
    actor: User,
    evaluation: Evaluation,
    notice_days: int | None = None,
    *,
    now: datetime | None = None,
) -> Evaluation:
    """Publish a closed evaluation for the notice period (default 7 days).

    :raises Forbidden: not the community's secretary.
    :raises ValidationFailed: notice_days out of 1..60.
    :raises Conflict: not ``closed``.
    """
    permissions.require(actor, "evaluation.manage", _community(evaluation.community_id))
    days = DEFAULT_NOTICE_DAYS if notice_days is None else notice_days
    if (
        isinstance(days, bool)
        or not isinstance(days, int)
        or not (MIN_NOTICE_DAYS <= days <= MAX_NOTICE_DAYS)
    ):
        raise ValidationFailed(
            "Bad notice period.",
            errors={"notice_days": [f"From {MIN_NOTICE_DAYS} to {MAX_NOTICE_DAYS}."]},
        )
    now = now or utcnow()
    _move(
        evaluation,
        "publish",
        {"published_at": now, "notice_days": days, "notice_ends_at": now + timedelta(days=days)},
    )
    community = _community(evaluation.community_id)
    audit.record(
        actor,
        "evaluation.publish",
        "evaluation",
        evaluation.id,
        area_id=community.id,
        detail={"year": evaluation.year, "notice_days": days},
    )
    for user_id in _audience(community):
        audit.notify(
            user_id,
            "evaluation.published",
            object_type="evaluation",
            object_id=evaluation.id,
            params={"year": evaluation.year, "community": community.name, "days": days},
        )
    return evaluation


def open_objections(evaluation: Evaluation) -> int:
    """Return how many objections of ``evaluation`` are still open."""
    return int(
        db.session.scalar(
            sa.select(sa.func.count(Objection.id)).where(
                Objection.evaluation_id == evaluation.id,
                Objection.status == ObjectionStatus.OPEN,
            )
        )
        or 0
    )


def finalize(actor: User, evaluation: Evaluation, *, now: datetime | None = None) -> Evaluation:
    """Make a published evaluation final.

    :raises Forbidden: not the community's secretary.
    :raises Conflict: not ``in_notice``, the notice still runs, or an objection is open.
    """
    community = _community(evaluation.community_id)
    permissions.require(actor, "evaluation.manage", community)
    _require_step(evaluation, "finalize")
    now = now or utcnow()
    if evaluation.notice_ends_at is not None and now < evaluation.notice_ends_at:
        raise Conflict(
            "The notice period has not ended yet.", errors={"status": ["Notice running."]}
        )
    # Lock the evaluation row, then count: an objection filed concurrently waits for it.
    locked = db.session.execute(
        sa.select(Evaluation.id).where(Evaluation.id == evaluation.id).with_for_update()
    ).scalar_one()
    if open_objections(evaluation):
        raise Conflict("Answer every objection first.", errors={"objections": ["Open."]})
    _move(evaluation, "finalize", {"finalized_at": now})
    audit.record(
        actor,
        "evaluation.finalize",
        "evaluation",
        locked,
        area_id=community.id,
        detail={"year": evaluation.year},
    )
    for user_id in _audience(community):
        audit.notify(
            user_id,
            "evaluation.final",
            object_type="evaluation",
            object_id=evaluation.id,
            params={"year": evaluation.year, "community": community.name},
        )
    return evaluation


def rows_of(evaluation: Evaluation) -> list[dict[str, Any]]:
    """Return the frozen rows (by rank, then user id) as report rows."""
    rows = db.session.scalars(
        sa.select(EvaluationRow)
        .where(EvaluationRow.evaluation_id == evaluation.id)
        .order_by(EvaluationRow.points_earned.desc(), EvaluationRow.user_id)
    ).all()
    out = []
    for r in rows:
        d = {f: getattr(r, f) for f in ROW_FIELDS}
        d["hours"] = float(r.hours)
        d["average_score"] = float(r.average_score) if r.average_score is not None else None
        d["correction"] = r.correction
        out.append(d)
    return out
