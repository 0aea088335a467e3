"""Rewards (积分兑换奖品), redemptions and the stock movement log.

Business rules live in ``services/rewards.py`` and ``services/redemptions.py``
(design overview there). What the database itself guarantees, on both engines:

* a reward costs > 0 points; its stock is NULL (unlimited) or >= 0; a per-member
  limit is NULL or >= 1; an active window ends after it starts;
* a redemption has quantity > 0 and ``total = quantity * cost_each``; it is
  ``held`` exactly while it has no final ledger transaction; a rejection has a reason;
* one held redemption per pickup-code digest (partial UNIQUE index), one
  redemption per request idempotency key;
* every movement of a reward's stock is a :class:`StockChange` row (initial,
  edit, reserve, return): ``stock_before``/``stock_after`` chain from row to row
  and the last ``stock_after`` is the reward's stock (``ledger verify`` checks it).
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .areas import Area
from .types import UTCDateTime, str_enum, utcnow
from .users import User

#: Limits of a reward's fields (the columns below and ``services/rewards.py``'s checks).
MAX_COST = 100_000
MAX_STOCK = 1_000_000
MAX_LIMIT = 1_000
NAME_MAX = 100
DESCRIPTION_MAX = 2_000
SPONSOR_MAX = 100
#: Longest note of a stock change.
NOTE_MAX = 200
#: Most items of one reward in one redemption request.
MAX_QUANTITY = 100
#: Longest reason of a redemption's cancellation or rejection.
MAX_REASON = 500


class LimitPeriod(enum.StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"
    ALL = "all"  # the limit counts every redemption ever made


class RedemptionStatus(enum.StrEnum):
    HELD = "held"  # points held, stock reserved, waiting for pickup
    FULFILLED = "fulfilled"  # handed over: held points went to the redemption sink
    CANCELLED = "cancelled"  # by the member or the secretary: points and stock returned
    REJECTED = "rejected"  # by the secretary, with a reason: points and stock returned
    EXPIRED = "expired"  # not picked up in time: points and stock returned


#: States in which a redemption counts against stock and the per-member limit.
COUNTED_STATUSES: frozenset[RedemptionStatus] = frozenset(
    {RedemptionStatus.HELD, RedemptionStatus.FULFILLED}
)


class StockChangeKind(enum.StrEnum):
    INITIAL = "initial"  # the stock given at creation (NULL: unlimited)
    EDIT = "edit"  # a secretary/officer set a new stock figure
    RESERVE = "reserve"  # a redemption reserved ``-delta`` items
    RETURN = "return"  # a cancelled/rejected/expired redemption gave them back


class Reward(Model):
    """Something members can redeem points for, offered in an area's subtree."""

    __tablename__ = "rewards"
    __table_args__ = (
        sa.CheckConstraint("cost > 0", name="cost_positive"),
        sa.CheckConstraint("stock IS NULL OR stock >= 0", name="stock_nonnegative"),
        sa.CheckConstraint(
            "per_member_limit IS NULL OR per_member_limit >= 1", name="limit_positive"
        ),
        sa.CheckConstraint(
            "active_from IS NULL OR active_to IS NULL OR active_to > active_from",
            name="window_order",
        ),
        sa.Index("ix_rewards_area_id", "area_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Scope: members holding a member role on this area or below may redeem.
    area_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id"))
    name: Mapped[str] = mapped_column(sa.String(NAME_MAX))
    description: Mapped[str] = mapped_column(sa.String(DESCRIPTION_MAX), default="")
    #: Stored file name under the private upload folder (``services/uploads.py``).
    image_path: Mapped[str | None] = mapped_column(sa.String(100))
    #: Points per item.
    cost: Mapped[int]
    #: Items left to reserve; NULL = unlimited. Changed only by conditional UPDATEs
    #: that also write a :class:`StockChange`.
    stock: Mapped[int | None]
    #: Most items one member may hold or have received per ``limit_period``.
    per_member_limit: Mapped[int | None]
    limit_period: Mapped[LimitPeriod] = mapped_column(
        str_enum(LimitPeriod, "reward_limit_period"), default=LimitPeriod.ALL
    )
    #: 共建单位 providing the reward (free text, e.g. 中百超市).
    sponsor: Mapped[str | None] = mapped_column(sa.String(SPONSOR_MAX))
    active_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    active_to: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Paused rewards are hidden from the shop; they can be resumed.
    is_active: Mapped[bool] = mapped_column(default=True)
    #: Retired rewards are closed for good (held redemptions can still be handed over).
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    area: Mapped[Area] = relationship(lazy="joined")

    def __repr__(self) -> str:
        return f"<Reward {self.id} {self.name!r} cost={self.cost} stock={self.stock}>"


class Redemption(Model):
    """One request of a member for ``quantity`` items of a reward."""

    __tablename__ = "redemptions"
    __table_args__ = (
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        sa.CheckConstraint("cost_each > 0", name="cost_each_positive"),
        sa.CheckConstraint("total = quantity * cost_each", name="total_matches"),
        sa.CheckConstraint(
            "(status = 'held' AND final_transaction_id IS NULL)"
            " OR (status <> 'held' AND final_transaction_id IS NOT NULL)",
            name="final_iff_closed",
        ),
        sa.CheckConstraint("status <> 'rejected' OR reason IS NOT NULL", name="reject_has_reason"),
        sa.CheckConstraint(
            "limit_applied IS NULL OR limit_applied >= 1", name="limit_applied_positive"
        ),
        #: A pickup code identifies one held redemption.
        sa.Index(
            "uq_redemptions_held_code",
            "pickup_code_hash",
            unique=True,
            sqlite_where=sa.text("status = 'held'"),
            postgresql_where=sa.text("status = 'held'"),
        ),
        sa.Index("ix_redemptions_member_reward", "member_id", "reward_id", "created_at"),
        sa.Index("ix_redemptions_status_expires", "status", "expires_at"),
        sa.Index("ix_redemptions_community_status", "community_id", "status"),
        sa.Index("ix_redemptions_reward_id", "reward_id"),
    )

    #: Allocated before the hold is posted (the hold carries it): see
    #: ``services.redemptions.next_redemption_id``.
    id: Mapped[int] = mapped_column(primary_key=True)
    reward_id: Mapped[int] = mapped_column(sa.ForeignKey("rewards.id"))
    member_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    #: The member's community in the reward's scope: its secretary hands the reward
    #: over and its ledger accounts (redemption sink) receive the points.
    community_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id"))
    quantity: Mapped[int]
    cost_each: Mapped[int]
    total: Mapped[int]
    status: Mapped[RedemptionStatus] = mapped_column(
        str_enum(RedemptionStatus, "redemption_status"), default=RedemptionStatus.HELD
    )
    #: True when stock was reserved (the reward had limited stock at the request).
    stock_reserved: Mapped[bool] = mapped_column(default=False)
    #: The per-member limit in force at the request and the period bucket it was
    #: counted in (``2026-11``, ``2026-Q4``, ``2026``, ``all``); NULL: no limit.
    limit_applied: Mapped[int | None]
    period_key: Mapped[str | None] = mapped_column(sa.String(10))
    #: HMAC digest of the pickup code (the code itself is never stored).
    pickup_code_hash: Mapped[str] = mapped_column(sa.String(64))
    #: Random salt from which the member's pages re-derive the code (with the app key).
    code_salt: Mapped[str] = mapped_column(sa.String(32))
    hold_transaction_id: Mapped[int] = mapped_column(sa.ForeignKey("ledger_transactions.id"))
    #: The redeem (fulfilled) or release (cancelled/rejected/expired) transaction.
    final_transaction_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("ledger_transactions.id")
    )
    #: ``u<member>:<sha256 of the client's Idempotency-Key>`` -- a retry returns this row.
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(200), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: Why it was rejected or cancelled (required for rejections).
    reason: Mapped[str | None] = mapped_column(sa.String(MAX_REASON))
    #: Who fulfilled, cancelled or rejected it (NULL for expiry by the system).
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    #: When the member was reminded that the hold is about to expire.
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Wrong pickup codes entered since the last lock-out (``services.redemptions.lockout``).
    code_failures: Mapped[int] = mapped_column(default=0, server_default="0")
    #: No pickup code (not even the right one) is accepted before this time.
    code_locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    reward: Mapped[Reward] = relationship(lazy="joined")
    member: Mapped[User] = relationship(lazy="joined", foreign_keys=[member_id])

    def __repr__(self) -> str:
        return f"<Redemption {self.id} reward={self.reward_id} {self.status} x{self.quantity}>"


class StockChange(Model):
    """One movement of a reward's stock (append-only by convention; verified)."""

    __tablename__ = "reward_stock_changes"
    __table_args__ = (
        sa.CheckConstraint(
            "stock_after IS NULL OR stock_after >= 0", name="stock_after_nonnegative"
        ),
        sa.CheckConstraint(
            "stock_before IS NULL OR stock_after IS NULL OR delta IS NULL"
            " OR stock_after = stock_before + delta",
            name="delta_matches",
        ),
        sa.Index("ix_reward_stock_changes_reward_id_id", "reward_id", "id"),
        sa.Index("ix_reward_stock_changes_redemption_id", "redemption_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reward_id: Mapped[int] = mapped_column(sa.ForeignKey("rewards.id"))
    kind: Mapped[StockChangeKind] = mapped_column(str_enum(StockChangeKind, "stock_change_kind"))
    #: ``stock_after - stock_before`` (NULL when either side is unlimited).
    delta: Mapped[int | None]
    stock_before: Mapped[int | None]
    stock_after: Mapped[int | None]
    redemption_id: Mapped[int | None] = mapped_column(sa.ForeignKey("redemptions.id"))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(sa.String(NOTE_MAX))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
