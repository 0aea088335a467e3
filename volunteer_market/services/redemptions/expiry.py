"""Expiry of holds (the cron job): which holds ran out, expire them one by one, and
remind members once before their hold expires.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

import sqlalchemy as sa

from ...extensions import db
from ...models import Redemption, RedemptionStatus, utcnow
from .. import audit, ledger
from ..errors import Conflict
from .transitions import close

#: Members are reminded of a hold this long before it expires.
REMIND_BEFORE = timedelta(days=2)

_redemptions = cast(sa.Table, Redemption.__table__)


def due_holds(now: datetime | None = None) -> list[int]:
    """Return the ids of held redemptions whose hold has run out, oldest first."""
    now = now or utcnow()
    return list(
        db.session.scalars(
            sa.select(Redemption.id)
            .where(Redemption.status == RedemptionStatus.HELD, Redemption.expires_at <= now)
            .order_by(Redemption.id)
        )
    )


def expire_hold(redemption_id: int, now: datetime | None = None) -> bool:
    """Expire one held redemption whose hold has run out (the system); return True if
    this call expired it, False if it was not due or someone else closed it first.

    Idempotent and safe to run concurrently: the conditional UPDATE decides.
    """
    now = now or utcnow()
    redemption = db.session.get(Redemption, redemption_id)
    if redemption is None:
        return False
    try:
        with db.session.begin_nested():
            close(None, redemption, RedemptionStatus.EXPIRED, now=now)
    except Conflict:
        return False
    return True


def expire_holds(now: datetime | None = None) -> list[int]:
    """Expire every due hold inside the current transaction; return the ids expired.

    The CLI runs :func:`expire_hold` in one transaction per redemption instead, so the
    ledger is never locked for a whole batch. A batch closes redemptions of several
    communities and members in one transaction, so it takes every chain head first
    (``lock_all_heads``: the lock order of a whole-ledger operation).
    """
    ledger.lock_all_heads()
    return [rid for rid in due_holds(now) if expire_hold(rid, now)]


def remind_expiring(now: datetime | None = None, within: timedelta = REMIND_BEFORE) -> int:
    """Notify members once whose holds expire within ``within``; return how many.

    A conditional ``UPDATE ... WHERE reminded_at IS NULL`` makes it idempotent.
    """
    now = now or utcnow()
    rows = db.session.execute(
        _redemptions.update()
        .where(
            _redemptions.c.status == RedemptionStatus.HELD,
            _redemptions.c.reminded_at.is_(None),
            _redemptions.c.expires_at <= now + within,
            _redemptions.c.expires_at > now,
        )
        .values(reminded_at=now)
        .returning(_redemptions.c.id, _redemptions.c.member_id, _redemptions.c.expires_at)
    ).all()
    for row in rows:
        audit.notify(
            row.member_id,
            "redemption.expiring",
            object_type="redemption",
            object_id=row.id,
            params={"expires_at": row.expires_at.isoformat()},
        )
    return len(rows)
