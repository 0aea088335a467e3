"""Pickup-code lock-out: wrong codes are counted, and too many stop every try for a while.

* Per redemption: after :data:`FAILURES_PER_REDEMPTION` (5) wrong codes the
  redemption accepts no code -- not even the right one -- for :data:`LOCKOUT`
  (15 minutes); then the count starts again. Kept on the row
  (``redemptions.code_failures``, ``code_locked_until``).
* Per fulfilling user: after :data:`FAILURES_PER_USER_PER_HOUR` (20) wrong codes in
  the last hour, over all redemptions, that user's tries are refused until the oldest
  of them is an hour old. Counted from the audit log (``redemption.code_failed``).

The fulfilment page's look-up by code (:func:`look_up`, ``GET /rewards/fulfil?code=``)
counts too: a code that finds no held redemption the user may hand over is a wrong code
of the user (audited with no redemption), and a locked-out user cannot look codes up --
otherwise the look-up would be a way round the per-user limit.

A refused try is :class:`TooManyAttempts` (429 with ``Retry-After``); a wrong code is
422 and its count is committed although the request fails (``keep_writes``). Every
wrong code is audited (``redemption.code_failed``) and so is each lock-out
(``redemption.code_locked``, scope ``redemption`` or ``user``).

Race safety: the tries of one user are counted under a named lock of that user
(``ledger.mutex("pickup-code-user", user id)``, ``pg_advisory_xact_lock``), and
:func:`check_code` reads the redemption's counters ``FOR UPDATE`` (the fulfilment
holds the head of the redemption's community chain as well); SQLite's ``BEGIN
IMMEDIATE`` serialises every writer anyway. So parallel wrong codes cannot all pass
the check before any of them is counted -- per user over every community, and per
redemption.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from typing import cast

import sqlalchemy as sa

from ...extensions import db
from ...models import AuditEntry, Redemption, User, utcnow
from .. import audit, ledger
from ..errors import TooManyAttempts, ValidationFailed
from .codes import code_digest, normalise_code
from .reading import find_held_by_code

FAILURES_PER_REDEMPTION = 5
LOCKOUT = timedelta(minutes=15)
FAILURES_PER_USER_PER_HOUR = 20
_HOUR = timedelta(hours=1)
_FAILED = "redemption.code_failed"
_LOCKED = "redemption.code_locked"
#: The named lock (``ledger.mutex``) under which one user's tries are counted.
_USER_LOCK = "pickup-code-user"

_redemptions = cast(sa.Table, Redemption.__table__)
_audit = cast(sa.Table, AuditEntry.__table__)


def _seconds(delta: timedelta) -> int:
    return max(1, int(delta.total_seconds()) + 1)


def _user_failures(actor: User, now: datetime) -> tuple[int, datetime | None]:
    row = db.session.execute(
        sa.select(sa.func.count(), sa.func.min(_audit.c.created_at)).where(
            _audit.c.actor_id == actor.id,
            _audit.c.action == _FAILED,
            _audit.c.created_at > now - _HOUR,
        )
    ).one()
    oldest: datetime | None = row[1]  # min() keeps the column's type (UTC-aware)
    return int(row[0]), oldest


def _check_user(actor: User, now: datetime) -> int:
    """Return the actor's wrong codes of the last hour.

    :raises TooManyAttempts: they reached :data:`FAILURES_PER_USER_PER_HOUR`.
    """
    mine, oldest = _user_failures(actor, now)
    if mine >= FAILURES_PER_USER_PER_HOUR:
        wait = (oldest + _HOUR - now) if oldest is not None else _HOUR
        raise TooManyAttempts(
            "Too many wrong pickup codes; try again later.", retry_after=_seconds(wait)
        )
    return mine


def look_up(actor: User, raw_code: object, *, now: datetime | None = None) -> Redemption | None:
    """Return the held redemption with this pickup code that ``actor`` may hand over
    (:func:`find_held_by_code`), counting a well-formed code that finds none as a wrong
    code of the actor. Needs a write transaction.

    :raises TooManyAttempts: the actor is locked out (429).
    """
    normal = normalise_code(raw_code)
    if normal is None:
        return None
    now = now or utcnow()
    ledger.mutex(_USER_LOCK, actor.id)  # as check_code: a user's tries one after another
    mine = _check_user(actor, now)
    found = find_held_by_code(actor, normal)
    if found is None:
        audit.record(actor, _FAILED, "redemption", None, detail={"lookup": True})
        if mine + 1 == FAILURES_PER_USER_PER_HOUR:
            audit.record(actor, _LOCKED, "redemption", None, detail={"scope": "user"})
    return found


def check_code(actor: User, redemption: Redemption, normal_code: str, now: datetime) -> None:
    """Accept the right pickup code of ``redemption`` unless a lock-out holds; count a
    wrong one.

    :raises TooManyAttempts: the redemption or the actor is locked out (429; nothing
        is written, the right code is refused as well).
    :raises ValidationFailed: the code is wrong (422); the failure is counted and
        audited and stays committed (``keep_writes``).
    """
    ledger.mutex(_USER_LOCK, actor.id)  # serialises a user's tries: see the docstring
    row = db.session.execute(
        sa.select(_redemptions.c.code_failures, _redemptions.c.code_locked_until)
        .where(_redemptions.c.id == redemption.id)
        .with_for_update()
    ).one()
    failures, locked_until = int(row.code_failures), row.code_locked_until
    if locked_until is not None and locked_until > now:
        raise TooManyAttempts(
            "Too many wrong pickup codes for this redemption; try again later.",
            retry_after=_seconds(locked_until - now),
        )
    mine = _check_user(actor, now)
    if hmac.compare_digest(code_digest(normal_code), redemption.pickup_code_hash):
        return
    _count_failure(actor, redemption, failures + 1, mine + 1, now)


def _count_failure(
    actor: User, redemption: Redemption, failures: int, mine: int, now: datetime
) -> None:
    locks = failures >= FAILURES_PER_REDEMPTION
    db.session.execute(
        _redemptions.update()
        .where(_redemptions.c.id == redemption.id)
        .values(
            code_failures=0 if locks else failures,
            code_locked_until=now + LOCKOUT if locks else None,
        )
    )
    db.session.expire(redemption, ["code_failures", "code_locked_until"])
    area = redemption.community_id
    audit.record(
        actor, _FAILED, "redemption", redemption.id, area_id=area, detail={"failures": failures}
    )
    if locks:
        audit.record(
            actor,
            _LOCKED,
            "redemption",
            redemption.id,
            area_id=area,
            detail={"scope": "redemption", "minutes": int(LOCKOUT.total_seconds() // 60)},
        )
    if mine == FAILURES_PER_USER_PER_HOUR:
        audit.record(
            actor, _LOCKED, "redemption", redemption.id, area_id=area, detail={"scope": "user"}
        )
    if locks or mine >= FAILURES_PER_USER_PER_HOUR:
        message = "The pickup code is wrong; too many wrong codes, tries are locked for a while."
    else:
        message = "The pickup code is wrong."
    raise ValidationFailed(
        message, errors={"pickup_code": ["Wrong pickup code."]}, keep_writes=True
    )
