"""The rewards catalogue (积分兑换奖品): create, edit, retire, stock, list.

Design overview
---------------
* A reward is offered on an area and open to members holding a member role in that
  area's subtree. The community's secretary manages rewards of the community (or
  its grids); an officer those in their subtree (``permissions`` "rewards" section).
* Open for redemption = not retired, not paused, and ``active_from <= now <
  active_to`` (either bound may be absent).
* ``stock`` is the number of items left to reserve (NULL: unlimited). Every change
  writes a :class:`StockChange` row with the figure before and after, so the stock
  report and ``ledger verify`` can account for every item:
  ``initial`` at creation, ``edit`` when a manager sets a new figure (audited),
  ``reserve``/``return`` for redemptions (``services/redemptions``).
* An edit locks the reward row first (``SELECT ... FOR UPDATE`` on PostgreSQL;
  SQLite's ``BEGIN IMMEDIATE`` serializes writers) and then sets the figure, so a
  concurrent reservation is either counted in "before" or reserves from the new
  figure. Edits never touch the ledger, so they respect the ledger's lock order
  (ledger head -> accounts -> rewards) trivially.
* Retiring is a conditional ``UPDATE ... WHERE retired_at IS NULL``; a retired
  reward cannot be edited or redeemed, but its held redemptions can still be
  handed over, cancelled or rejected.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from ..extensions import db
from ..models import (
    Area,
    LimitPeriod,
    Redemption,
    RedemptionStatus,
    Reward,
    Role,
    StockChange,
    StockChangeKind,
    User,
    utcnow,
)
from ..models.rewards import (
    DESCRIPTION_MAX,
    MAX_COST,
    MAX_LIMIT,
    MAX_STOCK,
    NAME_MAX,
    NOTE_MAX,
    SPONSOR_MAX,
)
from . import audit, permissions
from .errors import Conflict, NotFound, ValidationFailed

#: Largest id the integer columns hold.
MAX_ID = 2**31 - 1

#: Fields a manager may change with :func:`update_reward`.
EDITABLE = frozenset(
    {
        "name",
        "description",
        "cost",
        "stock",
        "per_member_limit",
        "limit_period",
        "sponsor",
        "active_from",
        "active_to",
        "is_active",
    }
)

_rewards = cast(sa.Table, Reward.__table__)


# --- reading -------------------------------------------------------------------------


def get_reward(reward_id: int) -> Reward:
    """Return the reward or raise :class:`NotFound`."""
    if not 1 <= reward_id <= MAX_ID:  # never a database error for an absurd id
        raise NotFound("Reward not found.")
    reward = db.session.get(Reward, reward_id)
    if reward is None:
        raise NotFound("Reward not found.")
    return reward


def get_visible_reward(actor: User, reward_id: int) -> Reward:
    """Return the reward if ``actor`` may see it; :class:`NotFound` otherwise (no leak)."""
    reward = get_reward(reward_id)
    if not permissions.may(actor, "reward.view", reward):
        raise NotFound("Reward not found.")
    return reward


def closed_reason(reward: Reward, now: datetime | None = None) -> str | None:
    """Return why ``reward`` cannot be redeemed now (English msgid), or None if open."""
    now = now or utcnow()
    if reward.retired_at is not None:
        return "This reward has been retired."
    if not reward.is_active:
        return "This reward is paused."
    if reward.active_from is not None and now < reward.active_from:
        return "This reward is not open yet."
    if reward.active_to is not None and now >= reward.active_to:
        return "This reward is no longer offered."
    return None


def _open_condition(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        Reward.retired_at.is_(None),
        Reward.is_active.is_(True),
        sa.or_(Reward.active_from.is_(None), Reward.active_from <= now),
        sa.or_(Reward.active_to.is_(None), Reward.active_to > now),
    )


def scope_area_ids(user: User, roles: list[Role] | None = None) -> set[int]:
    """Return the ids of every area whose rewards are open to ``user``: each grant's
    area and its ancestors (a reward on an area covers its subtree)."""
    out: set[int] = set()
    for g in user.grants:
        if g.area is not None and (roles is None or g.role in roles):
            out.update(g.area.ancestor_ids())
    return out


def open_rewards_stmt(user: User, now: datetime | None = None) -> sa.Select[Any]:
    """Return a SELECT of the rewards open now to ``user``'s areas, cheapest first."""
    now = now or utcnow()
    ids = scope_area_ids(user)
    return (
        sa.select(Reward)
        .where(Reward.area_id.in_(sorted(ids) or [-1]), _open_condition(now))
        .order_by(Reward.cost, Reward.id)
    )


def managed_area_condition(user: User) -> sa.ColumnElement[bool] | None:
    """Return a condition on :class:`Area` selecting the areas whose rewards ``user``
    manages (None if none)."""
    paths = [a.path for a in permissions.grant_areas(user, [Role.SECRETARY, Role.OFFICER])]
    if not paths:
        return None
    return sa.or_(*[Area.path.startswith(p, autoescape=True) for p in paths])


def managed_rewards_stmt(user: User, *, include_retired: bool = True) -> sa.Select[Any]:
    """Return a SELECT of the rewards ``user`` manages (secretary: own community;
    officer: subtree), newest first.

    :raises Forbidden: the user manages no area.
    """
    permissions.require(user, "reward.manage_any")
    cond = managed_area_condition(user)
    assert cond is not None
    stmt = sa.select(Reward).join(Area, Area.id == Reward.area_id).where(cond)
    if not include_retired:
        stmt = stmt.where(Reward.retired_at.is_(None))
    return stmt.order_by(Reward.retired_at.is_not(None), Reward.id.desc())


def list_rewards(
    user: User, *, manage: bool = False, now: datetime | None = None
) -> sa.Select[Any]:
    """Return the rewards open to ``user`` (default) or those ``user`` manages."""
    if manage:
        return managed_rewards_stmt(user)
    return open_rewards_stmt(user, now)


# --- validation ------------------------------------------------------------------------


def _int_in(errors: dict[str, list[str]], name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        errors.setdefault(name, []).append(f"An integer from {lo} to {hi}.")


def _text(errors: dict[str, list[str]], name: str, value: Any, hi: int, *, required: bool) -> Any:
    if value is None:
        if required:
            errors.setdefault(name, []).append("Required.")
        return None
    if not isinstance(value, str):
        errors.setdefault(name, []).append("Must be text.")
        return value
    value = value.strip()
    if required and not value:
        errors.setdefault(name, []).append("Required.")
    if len(value) > hi:
        errors.setdefault(name, []).append(f"At most {hi} characters.")
    return value


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise reward fields (full set: after merging an edit).

    :raises ValidationFailed: with field errors.
    """
    errors: dict[str, list[str]] = {}
    out = dict(values)
    out["name"] = _text(errors, "name", values.get("name"), NAME_MAX, required=True)
    out["description"] = (
        _text(errors, "description", values.get("description"), DESCRIPTION_MAX, required=False)
        or ""
    )
    sponsor = _text(errors, "sponsor", values.get("sponsor"), SPONSOR_MAX, required=False)
    out["sponsor"] = sponsor or None
    _int_in(errors, "cost", values.get("cost"), 1, MAX_COST)
    if values.get("stock") is not None:
        _int_in(errors, "stock", values["stock"], 0, MAX_STOCK)
    if values.get("per_member_limit") is not None:
        _int_in(errors, "per_member_limit", values["per_member_limit"], 1, MAX_LIMIT)
    try:
        out["limit_period"] = LimitPeriod(values.get("limit_period") or LimitPeriod.ALL)
    except ValueError:
        errors.setdefault("limit_period", []).append("One of month, quarter, year, all.")
    for name in ("active_from", "active_to"):
        value = values.get(name)
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            errors.setdefault(name, []).append("A date and time with an offset.")
    start, end = values.get("active_from"), values.get("active_to")
    if (
        isinstance(start, datetime)
        and isinstance(end, datetime)
        and start.tzinfo is not None
        and end.tzinfo is not None
        and end <= start
    ):
        errors.setdefault("active_to", []).append("Must be after the start.")
    if not isinstance(values.get("is_active", True), bool):
        errors.setdefault("is_active", []).append("true or false.")
    if errors:
        raise ValidationFailed("The reward has invalid fields.", errors=errors)
    return out


# --- stock log -------------------------------------------------------------------------


def record_stock_change(
    reward_id: int,
    kind: StockChangeKind,
    *,
    before: int | None,
    after: int | None,
    actor: User | None,
    delta: int | None = None,
    redemption_id: int | None = None,
    note: str | None = None,
) -> StockChange:
    """Append one stock movement (``delta`` defaults to ``after - before``)."""
    if delta is None and before is not None and after is not None:
        delta = after - before
    change = StockChange(
        reward_id=reward_id,
        kind=kind,
        delta=delta,
        stock_before=before,
        stock_after=after,
        redemption_id=redemption_id,
        actor_id=actor.id if actor is not None else None,
        note=(note or None) and note[:NOTE_MAX],
        created_at=utcnow(),
    )
    db.session.add(change)
    db.session.flush()
    return change


def lock_reward(reward_id: int) -> Any:
    """Lock the reward row (PostgreSQL ``FOR UPDATE``) and return its current
    ``(stock, retired_at)`` row. Must run inside ``atomic()``."""
    row = db.session.execute(
        sa.select(_rewards.c.stock, _rewards.c.retired_at)
        .where(_rewards.c.id == reward_id)
        .with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFound("Reward not found.")
    return row


# --- writing ---------------------------------------------------------------------------


def create_reward(
    actor: User | None,
    *,
    area_id: int,
    name: str,
    cost: int,
    description: str | None = "",
    stock: int | None = None,
    per_member_limit: int | None = None,
    limit_period: LimitPeriod | str = LimitPeriod.ALL,
    sponsor: str | None = None,
    active_from: datetime | None = None,
    active_to: datetime | None = None,
    is_active: bool = True,
) -> Reward:
    """Offer a reward on an area (the secretary of its community, an officer above it).

    ``actor=None`` is the CLI/demo. Audited; the initial stock is the first stock change.

    :raises ValidationFailed: unknown area or invalid fields.
    :raises Forbidden: the actor may not offer rewards on that area.
    """
    area = db.session.get(Area, area_id) if isinstance(area_id, int) else None
    if area is None:
        raise ValidationFailed("Unknown area.", errors={"area_id": ["Unknown area."]})
    if actor is not None:
        permissions.require(actor, "reward.create", area)
    values = _clean(
        {
            "name": name,
            "description": description,
            "cost": cost,
            "stock": stock,
            "per_member_limit": per_member_limit,
            "limit_period": limit_period,
            "sponsor": sponsor,
            "active_from": active_from,
            "active_to": active_to,
            "is_active": is_active,
        }
    )
    now = utcnow()
    reward = Reward(
        area_id=area.id,
        created_by_id=actor.id if actor is not None else None,
        created_at=now,
        updated_at=now,
        **values,
    )
    db.session.add(reward)
    db.session.flush()
    db.session.refresh(reward)  # times come back in UTC, as everywhere else
    record_stock_change(
        reward.id, StockChangeKind.INITIAL, before=None, after=reward.stock, actor=actor
    )
    audit.record(
        actor,
        "reward.create",
        "reward",
        reward.id,
        area_id=area.id,
        detail={"cost": reward.cost, "stock": reward.stock, "sponsor": reward.sponsor},
    )
    return reward


def _audit_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, LimitPeriod):
        return value.value
    return value


def update_reward(
    actor: User | None, reward: Reward, *, stock_note: str | None = None, **changes: Any
) -> Reward:
    """Change some fields of a reward (its managers); a new ``stock`` figure is a
    stock change (audited, with the figure before and after).

    :raises Forbidden: the actor does not manage the reward.
    :raises Conflict: the reward is retired.
    :raises ValidationFailed: unknown or invalid fields.
    """
    if actor is not None:
        permissions.require(actor, "reward.manage", reward)
    unknown = set(changes) - EDITABLE
    if unknown:
        raise ValidationFailed(
            "Unknown reward fields.", errors={k: ["Unknown field."] for k in sorted(unknown)}
        )
    current = lock_reward(reward.id)
    if current.retired_at is not None:
        raise Conflict("A retired reward cannot be edited.")
    db.session.refresh(reward)
    merged = {name: getattr(reward, name) for name in EDITABLE}
    merged.update(changes)
    values = _clean(merged)
    changed: dict[str, Any] = {}
    for name in EDITABLE - {"stock"}:
        if name in changes and getattr(reward, name) != values[name]:
            changed[name] = [_audit_value(getattr(reward, name)), _audit_value(values[name])]
            setattr(reward, name, values[name])
    if "stock" in changes and values["stock"] != current.stock:
        before, after = current.stock, values["stock"]
        db.session.execute(_rewards.update().where(_rewards.c.id == reward.id).values(stock=after))
        record_stock_change(
            reward.id,
            StockChangeKind.EDIT,
            before=before,
            after=after,
            actor=actor,
            note=stock_note,
        )
        changed["stock"] = [before, after]
    if changed:
        reward.updated_at = utcnow()
        db.session.flush()
        db.session.refresh(reward)
        audit.record(
            actor,
            "reward.update",
            "reward",
            reward.id,
            area_id=reward.area_id,
            detail={"changed": changed},
        )
    return reward


def retire_reward(actor: User | None, reward: Reward) -> Reward:
    """Close a reward for good (its managers). Held redemptions stay valid.

    :raises Forbidden: the actor does not manage the reward.
    :raises Conflict: it is already retired.
    """
    if actor is not None:
        permissions.require(actor, "reward.manage", reward)
    now = utcnow()
    result = db.session.execute(
        _rewards.update()
        .where(_rewards.c.id == reward.id, _rewards.c.retired_at.is_(None))
        .values(retired_at=now, is_active=False, updated_at=now)
    )
    if cast(sa.CursorResult[Any], result).rowcount != 1:
        raise Conflict("This reward has already been retired.")
    db.session.refresh(reward)
    audit.record(actor, "reward.retire", "reward", reward.id, area_id=reward.area_id)
    return reward


def set_image(actor: User | None, reward: Reward, name: str | None) -> Reward:
    """Set (or clear) the reward's stored image file name (its managers).

    :raises Forbidden: the actor does not manage the reward.
    :raises Conflict: the reward is retired.
    """
    if actor is not None:
        permissions.require(actor, "reward.manage", reward)
    if reward.retired_at is not None:
        raise Conflict("A retired reward cannot be edited.")
    reward.image_path = name
    reward.updated_at = utcnow()
    db.session.flush()
    audit.record(
        actor,
        "reward.image",
        "reward",
        reward.id,
        area_id=reward.area_id,
        detail={"set": bool(name)},
    )
    return reward


# --- stock report ----------------------------------------------------------------------


def stock_report(user: User) -> list[dict[str, Any]]:
    """Return one row per reward ``user`` manages: stock left, items held, handed over
    and returned, the number of stock edits (newest reward first)."""
    rewards = list(db.session.scalars(managed_rewards_stmt(user)))
    if not rewards:
        return []
    ids = [r.id for r in rewards]
    r = Redemption
    qty = sa.func.coalesce(sa.func.sum(r.quantity), 0)
    counts: dict[tuple[int, str], int] = {
        (row.reward_id, row.status.value if hasattr(row.status, "value") else row.status): int(
            row.qty
        )
        for row in db.session.execute(
            sa.select(r.reward_id, r.status, qty.label("qty"))
            .where(r.reward_id.in_(ids))
            .group_by(r.reward_id, r.status)
        )
    }
    edits = dict(
        db.session.execute(
            sa.select(StockChange.reward_id, sa.func.count())
            .where(StockChange.reward_id.in_(ids), StockChange.kind == StockChangeKind.EDIT)
            .group_by(StockChange.reward_id)
        ).all()
    )
    out = []
    for reward in rewards:

        def n(status: RedemptionStatus, rid: int = reward.id) -> int:
            return counts.get((rid, status.value), 0)

        out.append(
            {
                "reward": reward,
                "stock": reward.stock,
                "held": n(RedemptionStatus.HELD),
                "fulfilled": n(RedemptionStatus.FULFILLED),
                "returned": n(RedemptionStatus.CANCELLED)
                + n(RedemptionStatus.REJECTED)
                + n(RedemptionStatus.EXPIRED),
                "edits": int(edits.get(reward.id, 0)),
            }
        )
    return out


def stock_changes_stmt(reward: Reward) -> sa.Select[Any]:
    """Return a SELECT of the reward's stock changes, newest first."""
    return (
        sa.select(StockChange)
        .where(StockChange.reward_id == reward.id)
        .order_by(StockChange.id.desc())
    )
