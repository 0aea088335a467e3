"""Objections (异议) to a published evaluation and the secretary's answers.

* Filing: a member or resident of the community, while the notice runs
  (``in_notice`` and before ``notice_ends_at``; otherwise 409). ``user_id`` names the
  row it concerns (a row of the list, else 422); by default the filer's own row, if
  they have one. The community's secretaries are notified.
* Answering: the secretary, while the evaluation is ``in_notice`` (also after the
  notice has ended: finalizing waits for the answers). One conditional ``UPDATE ..
  WHERE status = 'open'`` (a second answer is a 409). ``dismissed`` needs a reason and
  posts nothing; ``upheld`` with an ``amount`` posts a ledger adjustment to the row's
  member (``ledger.adjust``, the reason naming the objection) and the frozen row is
  recomputed: its points and correction, then the ranks of the whole list
  (:func:`recompute_ranks`). Nobody corrects their own row. The filer and the row's
  member are notified.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from ...extensions import db
from ...models import (
    Area,
    Evaluation,
    EvaluationRow,
    EvaluationStatus,
    Objection,
    ObjectionStatus,
    Role,
    User,
    utcnow,
)
from ...models.evaluations import MAX_OBJECTION_TEXT
from ...models.ledger import MAX_ADJUSTMENT, MAX_REASON
from .. import audit, ledger, permissions
from ..errors import Conflict, Forbidden, NotFound, ValidationFailed
from ..users import holders_of
from .report import Ranks

DECISIONS = ("upheld", "dismissed")


def _text(value: Any, field: str) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > MAX_OBJECTION_TEXT:
        raise ValidationFailed(
            "Write 1 to 1000 characters.", errors={field: ["1 to 1000 characters."]}
        )
    return text


def _row_of(evaluation: Evaluation, user_id: int) -> EvaluationRow | None:
    return db.session.scalars(
        sa.select(EvaluationRow).where(
            EvaluationRow.evaluation_id == evaluation.id, EvaluationRow.user_id == user_id
        )
    ).first()


def get_objection(actor: User, objection_id: int) -> Objection:
    """Return the objection if ``actor`` manages its evaluation or filed it.

    :raises NotFound: no such objection, or the actor may not see it.
    """
    objection = db.session.get(Objection, objection_id)
    if objection is None:
        raise NotFound("Objection not found.")
    evaluation = db.session.get(Evaluation, objection.evaluation_id)
    if evaluation is None or not (
        objection.filed_by_id == actor.id
        or permissions.may(actor, "evaluation.view_full", evaluation)
    ):
        raise NotFound("Objection not found.")
    return objection


def file_objection(
    actor: User,
    evaluation: Evaluation,
    text: str,
    user_id: int | None = None,
    *,
    now: datetime | None = None,
) -> Objection:
    """File an objection to a published evaluation (status ``open``).

    :raises Forbidden: not a member or resident of the community.
    :raises Conflict: the evaluation is not in its notice period.
    :raises ValidationFailed: empty or too long text; ``user_id`` not on the list.
    """
    permissions.require(actor, "evaluation.object", evaluation)
    now = now or utcnow()
    # Lock the evaluation row: finalizing counts open objections under the same lock.
    locked = db.session.execute(
        sa.select(Evaluation.status, Evaluation.notice_ends_at)
        .where(Evaluation.id == evaluation.id)
        .with_for_update()
    ).one()
    if locked.status != EvaluationStatus.IN_NOTICE or (
        locked.notice_ends_at is not None and now >= locked.notice_ends_at
    ):
        raise Conflict(
            "Objections can be filed only during the notice period.",
            errors={"status": [str(locked.status)]},
        )
    body = _text(text, "text")
    if user_id is not None:
        if _row_of(evaluation, user_id) is None:
            raise ValidationFailed("Not on this list.", errors={"user_id": ["Not on the list."]})
    elif _row_of(evaluation, actor.id) is not None:
        user_id = actor.id
    objection = Objection(
        evaluation_id=evaluation.id,
        filed_by_id=actor.id,
        user_id=user_id,
        text=body,
        status=ObjectionStatus.OPEN,
        created_at=now,
    )
    db.session.add(objection)
    db.session.flush()
    audit.record(
        actor,
        "evaluation.objection",
        "objection",
        objection.id,
        area_id=evaluation.community_id,
        detail={"evaluation_id": evaluation.id, "user_id": user_id},
    )
    community = db.session.get(Area, evaluation.community_id)
    secretaries = holders_of(Role.SECRETARY, community) if community is not None else []
    for secretary in secretaries:
        audit.notify(
            secretary.id,
            "evaluation.objection_filed",
            object_type="evaluation",
            object_id=evaluation.id,
            params={"year": evaluation.year, "community": community.name if community else ""},
        )
    return objection


def answer(
    actor: User,
    objection: Objection,
    decision: str,
    text: str,
    amount: int | None = None,
    *,
    now: datetime | None = None,
) -> Objection:
    """Answer an open objection: ``upheld`` (with an optional point correction through
    the ledger) or ``dismissed`` (with the reason).

    :raises Forbidden: not the community's secretary, or their own row.
    :raises Conflict: already answered, or the evaluation is not in notice.
    :raises ValidationFailed: bad decision, answer or amount.
    :raises InsufficientPoints: a negative correction larger than the member's wallet.
    """
    evaluation = db.session.get(Evaluation, objection.evaluation_id)
    community = db.session.get(Area, evaluation.community_id) if evaluation else None
    if evaluation is None or community is None:
        raise NotFound("Objection not found.")
    permissions.require(actor, "evaluation.manage", community)
    if decision not in DECISIONS:
        raise ValidationFailed("Bad decision.", errors={"decision": ["upheld or dismissed."]})
    reply = _text(text, "answer")
    if amount is not None:
        if (
            isinstance(amount, bool)
            or not isinstance(amount, int)
            or amount == 0
            or abs(amount) > MAX_ADJUSTMENT
        ):
            raise ValidationFailed(
                "Bad amount.", errors={"amount": ["Non-zero, at most 100000 either way."]}
            )
        if decision != "upheld":
            raise ValidationFailed(
                "Only an upheld objection corrects points.", errors={"amount": ["Upheld only."]}
            )
        if objection.user_id is None:
            raise ValidationFailed(
                "This objection names no member.", errors={"amount": ["No member named."]}
            )
        if objection.user_id == actor.id:
            raise Forbidden("Nobody corrects their own points.")
    if evaluation.status != EvaluationStatus.IN_NOTICE:
        raise Conflict(
            "Only objections of a list in notice can be answered.",
            errors={"status": [str(evaluation.status)]},
        )
    now = now or utcnow()
    table = cast(sa.Table, Objection.__table__)
    result = cast(
        "sa.CursorResult[Any]",
        db.session.execute(
            table.update()
            .where(table.c.id == objection.id, table.c.status == ObjectionStatus.OPEN.value)
            .values(
                status=decision,
                answer=reply,
                amount=amount,
                answered_by_id=actor.id,
                answered_at=now,
            )
        ),
    )
    if result.rowcount != 1:
        raise Conflict("This objection has already been answered.")
    if amount is not None and objection.user_id is not None:
        member = db.session.get(User, objection.user_id)
        if member is None:
            raise NotFound("User not found.")
        reason = f"{evaluation.year} 年度考核异议 #{objection.id} 成立：{reply}"[:MAX_REASON]
        tx = ledger.adjust(actor, member, amount, reason, community)
        db.session.execute(
            table.update().where(table.c.id == objection.id).values(transaction_id=tx.id)
        )
        row = _row_of(evaluation, member.id)
        if row is not None:
            row.correction += amount
            row.points_earned += amount
            db.session.flush()
            recompute_ranks(evaluation, community)
    db.session.refresh(objection)
    audit.record(
        actor,
        "evaluation.objection_answer",
        "objection",
        objection.id,
        area_id=community.id,
        detail={"decision": decision, "amount": amount, "transaction_id": objection.transaction_id},
    )
    for user_id in sorted({objection.filed_by_id, objection.user_id or objection.filed_by_id}):
        audit.notify(
            user_id,
            f"evaluation.objection_{decision}",
            object_type="evaluation",
            object_id=evaluation.id,
            params={"year": evaluation.year, "answer": reply},
        )
    return objection


def recompute_ranks(evaluation: Evaluation, community: Area) -> None:
    """Recompute the frozen list's ranks after a correction.

    In the community: standard competition ranking over the rows that were ranked at
    the close (eligible, with points) and still have points. In the street: the other
    communities as they are now (the street's score buckets less this community's),
    this community as frozen.
    """
    rows = list(
        db.session.scalars(
            sa.select(EvaluationRow).where(EvaluationRow.evaluation_id == evaluation.id)
        )
    )
    ranked = [
        r for r in rows if (r.rank_community is not None or r.correction) and r.points_earned > 0
    ]
    points = sorted(r.points_earned for r in ranked)
    frozen = Ranks([(p, points.count(p)) for p in sorted(set(points))])
    street = Ranks.of(community.parent_id, evaluation.year) if community.parent_id else None
    live = Ranks.of(community.id, evaluation.year)
    for r in rows:
        if r in ranked:
            r.rank_community = frozen.rank(r.points_earned)
            if street is not None:
                others = (street.rank(r.points_earned) - 1) - (live.rank(r.points_earned) - 1)
                r.rank_street = 1 + max(others, 0) + frozen.rank(r.points_earned) - 1
        else:
            r.rank_community = None
            r.rank_street = None
    db.session.flush()


def objections_of(evaluation: Evaluation) -> list[Objection]:
    """Return the evaluation's objections, oldest first."""
    return list(
        db.session.scalars(
            sa.select(Objection)
            .where(Objection.evaluation_id == evaluation.id)
            .order_by(Objection.id)
        )
    )
