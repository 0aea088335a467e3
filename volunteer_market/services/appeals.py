"""Appeals (申诉): a rating or a points award nobody agrees with is decided above the
community, and the outcome goes through the ledger, never an edit.

Design overview
===============

Who files (``appeal.file``), within :data:`APPEAL_WINDOW` (14 days):

* a **rating** (``rating_id``): a member who served in the rated delivery (the
  window runs from the rating's last change), or the resident in whose name a
  **proxy** rating was entered (from its last change, or from the secretary's
  disputed call-back of it, ``services/callbacks.py``, whichever is later);
* a **points award** (``transaction_id``): the member of an earn or adjust
  transaction (the window runs from its posting).

One open appeal per appellant and subject (partial UNIQUE index; 409 before the
insert, the index is the backstop).

Who decides (``appeal.decide``): an officer whose grant covers the community (the
street above it, or the district). The no-self-dealing guard
(``permissions/self_dealing.py``) refuses the appellant, the member concerned, the
participants and recorder of the delivery and the secretary who settled it, whatever
roles they hold.

Outcome. ``dismissed`` posts nothing. ``upheld`` posts one transaction with the
appeal as its reason: with ``amount`` an adjustment of the member concerned (points
he should have had, or should give back); without one, the reversal of the appealed
transaction, or -- for a resident's appeal of a proxy rating -- the reversal of the
delivery's earns (``transaction_id`` is the first). A member's appeal of a rating
needs an ``amount`` (the rating itself is never edited).

Races. :func:`decide` takes the chain head locks first (the appeal's community and
the appealed transaction's chain, ascending: the lock order of every posting), then decides with one conditional ``UPDATE appeals ... WHERE status =
'open'``: of two concurrent decisions exactly one changes a row; the other is 409
and posts nothing. Both sides are notified: the appellant, the member concerned and
the community's secretaries.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import (
    APPEAL_TEXT_MAX,
    Appeal,
    AppealStatus,
    Area,
    Delivery,
    LedgerTransaction,
    Rating,
    Role,
    RoleGrant,
    TransactionKind,
    User,
    utcnow,
)
from ..models.ledger import MAX_ADJUSTMENT
from . import audit, callbacks, ledger, permissions
from .errors import Conflict, Forbidden, NotFound, ValidationFailed

#: How long after the rating (its last change) or the posting an appeal may be filed.
APPEAL_WINDOW = timedelta(days=14)
#: Transactions whose member may appeal them (points awards).
APPEALABLE_KINDS = frozenset({TransactionKind.EARN, TransactionKind.ADJUST})


def _clean(text: Any) -> str:
    value = text.strip() if isinstance(text, str) else ""
    if not value:
        raise ValidationFailed("A reason is required.", errors={"reason": ["Required."]})
    if len(value) > APPEAL_TEXT_MAX:
        raise ValidationFailed(
            "The reason is too long.",
            errors={"reason": [f"At most {APPEAL_TEXT_MAX} characters."]},
        )
    return value


def get_appeal(appeal_id: int) -> Appeal:
    """Return the appeal or raise :class:`NotFound`."""
    appeal = db.session.get(Appeal, appeal_id)
    if appeal is None:
        raise NotFound("Appeal not found.")
    return appeal


def get_visible_appeal(actor: User, appeal_id: int) -> Appeal:
    """Return the appeal if ``actor`` may see it, else raise :class:`NotFound`."""
    appeal = get_appeal(appeal_id)
    if not permissions.may(actor, "appeal.view", appeal):
        raise NotFound("Appeal not found.")
    return appeal


# --- filing -------------------------------------------------------------------------


def _rating_subject(actor: User, rating_id: int, now: datetime) -> dict[str, Any]:
    rating = db.session.get(Rating, rating_id)
    delivery = db.session.get(Delivery, rating.delivery_id) if rating is not None else None
    if rating is None or delivery is None:
        raise NotFound("Rating not found.")
    served = permissions.is_participant(actor.id, delivery.id)
    proxied = rating.is_proxy and rating.beneficiary_id == actor.id
    if not served and not proxied:
        if permissions.may(actor, "delivery.view", delivery):
            raise Forbidden(
                "Only a member who served in the delivery, or the resident in whose name "
                "a proxy rating was entered, may appeal it.",
                action="appeal.file",
            )
        raise NotFound("Rating not found.")
    since = rating.updated_at
    if proxied and not served:
        # a disputed call-back (回访) of the proxy rating opens the window again
        disputed = callbacks.disputed_since(rating.id)
        since = max(since, disputed) if disputed is not None else since
    if now > since + APPEAL_WINDOW:
        raise Conflict("Appeals are filed within 14 days; this rating is older.")
    return {
        "subject": f"rating:{rating.id}",
        "rating_id": rating.id,
        "delivery_id": delivery.id,
        "community_id": delivery.community_id,
        "member_id": actor.id if served else None,
    }


def _transaction_subject(actor: User, tx_id: int, now: datetime) -> dict[str, Any]:
    tx = db.session.get(LedgerTransaction, tx_id)
    if tx is None or tx.member_id != actor.id:
        raise NotFound("Transaction not found.")
    if tx.kind not in APPEALABLE_KINDS or tx.community_id is None:
        raise Conflict("Only a points award (an earn or an adjustment) can be appealed.")
    if now > tx.created_at + APPEAL_WINDOW:
        raise Conflict("Appeals are filed within 14 days; this transaction is older.")
    return {
        "subject": f"transaction:{tx.id}",
        "transaction_id": tx.id,
        "delivery_id": tx.delivery_id,
        "community_id": tx.community_id,
        "member_id": actor.id,
    }


def file_appeal(
    actor: User,
    *,
    rating_id: int | None = None,
    transaction_id: int | None = None,
    reason: Any,
    now: datetime | None = None,
) -> Appeal:
    """File an appeal against a rating or a points award.

    :raises ValidationFailed: neither or both subjects; no or too long reason.
    :raises NotFound: a subject the actor may not see.
    :raises Forbidden: the actor may see the rating but may not appeal it.
    :raises Conflict: older than 14 days; not an award; a second open appeal.
    """
    now = now or utcnow()
    if (rating_id is None) == (transaction_id is None):
        raise ValidationFailed(
            "Give either rating_id or transaction_id.",
            errors={"rating_id": ["Give either rating_id or transaction_id."]},
        )
    text = _clean(reason)
    if rating_id is not None:
        fields = _rating_subject(actor, rating_id, now)
    else:
        assert transaction_id is not None
        fields = _transaction_subject(actor, transaction_id, now)
    open_one = db.session.execute(
        sa.select(Appeal.id).where(
            Appeal.appellant_id == actor.id,
            Appeal.subject == fields["subject"],
            Appeal.status == AppealStatus.OPEN,
        )
    ).first()
    if open_one is not None:
        raise Conflict("You already have an open appeal about this.", appeal_id=open_one[0])
    appeal = Appeal(appellant_id=actor.id, reason=text, created_at=now, **fields)
    try:
        with db.session.begin_nested():
            db.session.add(appeal)
            db.session.flush()
    except IntegrityError:
        raise Conflict("You already have an open appeal about this.") from None
    audit.record(
        actor,
        "appeal.file",
        "appeal",
        appeal.id,
        area_id=appeal.community_id,
        detail={"subject": appeal.subject},
    )
    for user_id in _secretaries(appeal.community_id):
        audit.notify(user_id, "appeal.filed", object_type="appeal", object_id=appeal.id)
    return appeal


# --- deciding -----------------------------------------------------------------------


def decide(
    actor: User,
    appeal: Appeal,
    decision: str,
    reason: Any,
    amount: int | None = None,
    *,
    now: datetime | None = None,
) -> Appeal:
    """Decide an open appeal once: ``upheld`` posts a reversing or adjusting transaction
    with the appeal as its reason, ``dismissed`` posts nothing.

    :raises Forbidden: not an officer over the community, or a party to it.
    :raises ValidationFailed: bad decision, reason or amount; an amount on a dismissal;
        a member's rating appeal upheld without an amount.
    :raises Conflict: already decided (also the loser of a race); the points were
        reversed or spent meanwhile.
    """
    now = now or utcnow()
    permissions.require(actor, "appeal.decide", appeal)
    if decision not in (AppealStatus.UPHELD.value, AppealStatus.DISMISSED.value):
        raise ValidationFailed(
            "The decision is upheld or dismissed.",
            errors={"decision": ["upheld or dismissed."]},
        )
    text = _clean(reason)
    _check_amount(appeal, decision, amount)
    # Lock order: the chain heads first (an upheld appeal posts in its community's chain;
    # a reversal in the chain of the transaction it reverses), ascending. Deciding the
    # same appeal twice is refused by the conditional UPDATE below.
    ledger.lock_heads(_posting_communities(appeal))
    changed = cast(
        "sa.CursorResult[Any]",
        db.session.execute(
            sa.update(Appeal)
            .where(Appeal.id == appeal.id, Appeal.status == AppealStatus.OPEN)
            .values(
                status=AppealStatus(decision),
                decided_by_id=actor.id,
                decided_at=now,
                decision_reason=text,
                amount=amount,
            )
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    if not changed:
        raise Conflict("This appeal has already been decided.")
    result: LedgerTransaction | None = None
    if decision == AppealStatus.UPHELD.value:
        result = _post_outcome(appeal, amount, f"申诉 #{appeal.id}：{text}")
        db.session.execute(
            sa.update(Appeal)
            .where(Appeal.id == appeal.id)
            .values(result_transaction_id=result.id)
            .execution_options(synchronize_session=False)
        )
    db.session.flush()
    db.session.refresh(appeal)
    audit.record(
        actor,
        "appeal.decide",
        "appeal",
        appeal.id,
        area_id=appeal.community_id,
        detail={
            "decision": decision,
            "amount": amount,
            "transaction_id": result.id if result is not None else None,
        },
    )
    _announce(appeal)
    return appeal


def _check_amount(appeal: Appeal, decision: str, amount: int | None) -> None:
    if amount is None:
        member_rating = appeal.rating_id is not None and appeal.member_id is not None
        if decision == AppealStatus.UPHELD.value and member_rating:
            raise ValidationFailed(
                "An upheld appeal of a rating needs the amount to adjust.",
                errors={"amount": ["Required when a member's rating appeal is upheld."]},
            )
        return
    if decision != AppealStatus.UPHELD.value:
        raise ValidationFailed(
            "A dismissed appeal posts nothing.",
            errors={"amount": ["Only with upheld."]},
        )
    if appeal.member_id is None:
        raise ValidationFailed(
            "This appeal concerns no single member; it is upheld without an amount.",
            errors={"amount": ["Not for a resident's appeal."]},
        )
    if isinstance(amount, bool) or amount == 0 or abs(amount) > MAX_ADJUSTMENT:
        raise ValidationFailed(
            "The amount must be non-zero and at most 100000 either way.",
            errors={"amount": [f"Non-zero, from -{MAX_ADJUSTMENT} to {MAX_ADJUSTMENT}."]},
        )


def _posting_communities(appeal: Appeal) -> set[int | None]:
    """The communities whose chains an upheld ``appeal`` may post in."""
    found: set[int | None] = {appeal.community_id}
    if appeal.transaction_id is not None:
        found.add(
            db.session.execute(
                sa.select(LedgerTransaction.community_id).where(
                    LedgerTransaction.id == appeal.transaction_id
                )
            ).scalar_one_or_none()
        )
    return found


def _post_outcome(appeal: Appeal, amount: int | None, reason: str) -> LedgerTransaction:
    """Post the upheld appeal's transaction (the system posts; the audit names the officer)."""
    key = f"appeal:{appeal.id}"
    community = db.session.get(Area, appeal.community_id)
    if amount is not None:
        member = db.session.get(User, appeal.member_id)
        assert member is not None
        return ledger.adjust(None, member, amount, reason, community, idempotency_key=key)
    if appeal.transaction_id is not None:
        tx = ledger.get_transaction(appeal.transaction_id)
        return ledger.reverse(None, tx, reason, idempotency_key=key)
    earns = list(
        db.session.execute(
            sa.select(LedgerTransaction)
            .where(
                LedgerTransaction.delivery_id == appeal.delivery_id,
                LedgerTransaction.kind == TransactionKind.EARN,
            )
            .order_by(LedgerTransaction.id)
        ).scalars()
    )
    if not earns:
        raise Conflict("The delivery has posted no points; there is nothing to reverse.")
    ledger.lock_heads(tx.community_id for tx in earns)  # the delivery's: already held
    ledger.lock_member_accounts([tx.member_id for tx in earns if tx.member_id is not None])
    posted = [ledger.reverse(None, tx, reason, idempotency_key=f"{key}:t{tx.id}") for tx in earns]
    return posted[0]


def _secretaries(community_id: int) -> list[int]:
    return list(
        db.session.execute(
            sa.select(RoleGrant.user_id)
            .where(
                RoleGrant.area_id == community_id,
                RoleGrant.role == Role.SECRETARY,
                RoleGrant.revoked_at.is_(None),
            )
            .distinct()
        ).scalars()
    )


def _announce(appeal: Appeal) -> None:
    """Tell both sides: the appellant, the member concerned, the community's secretaries."""
    people = {appeal.appellant_id, *_secretaries(appeal.community_id)}
    if appeal.member_id is not None:
        people.add(appeal.member_id)
    for user_id in sorted(people):
        audit.notify(
            user_id,
            "appeal.decided",
            object_type="appeal",
            object_id=appeal.id,
            params={"decision": appeal.status.value, "reason": appeal.decision_reason or ""},
        )


# --- reading ------------------------------------------------------------------------


def list_appeals(
    actor: User, *, status: str | None = None, community_id: int | None = None
) -> sa.Select[Appeal]:
    """Return the appeals ``actor`` may see, newest first: his own, those of the
    communities where he is secretary, those in an officer's subtree."""
    conds: list[Any] = [Appeal.appellant_id == actor.id]
    secretary_of = permissions.communities_of(actor, [Role.SECRETARY])
    if secretary_of:
        conds.append(Appeal.community_id.in_(sorted(secretary_of)))
    for area in permissions.grant_areas(actor, [Role.OFFICER]):
        under = sa.select(Area.id).where(Area.path.startswith(area.path))
        conds.append(Appeal.community_id.in_(under))
    stmt = sa.select(Appeal).where(sa.or_(*conds))
    if status is not None:
        stmt = stmt.where(Appeal.status == AppealStatus(status))
    if community_id is not None:
        stmt = stmt.where(Appeal.community_id == community_id)
    return stmt.order_by(Appeal.id.desc())
