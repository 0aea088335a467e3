"""Points policy: the settlement arithmetic (pure functions) and the policy in force.

The contract (DESIGN.md, API.md): ``points = round(hours x base_rate x m)`` per
participant, hours capped per delivery, ``m`` from the average score
(>= 4.5 -> 1.2, >= 3.5 -> 1.0, >= 2.5 -> 0.5, else 0). Two hours rated 5 and 4
(average 4.5) earn ``round(2 x 10 x 1.2) = 24`` points.

Arithmetic is exact: scores, thresholds and multipliers become ``Fraction``s
(a JSON ``1.2`` means the decimal 1.2, not the nearest binary float), and rounding
is half-up (``2.5 -> 3``), never Python's banker's ``round``.

Versions: a change is a new row (version n+1 of the community, :func:`new_policy_version`,
audited with the terms it changed); a settlement records the version it used, so a change
applies to later settlements only and never to points already earned.
:func:`community_policy` is the policy as a community's people read it (the version in
force, the one before, the difference).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal
from fractions import Fraction
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from ..database import writing
from ..extensions import db
from ..models import Area, AreaKind, ExpiryRule, PointsPolicy, User
from ..models.points_policy import default_multipliers
from . import audit, permissions
from .errors import Conflict, NotFound, ValidationFailed

Number = int | float | Decimal | Fraction

MIN_SCORE = 1
MAX_SCORE = 5


class PolicyTerms(Protocol):
    """What the arithmetic reads from a policy (a :class:`PointsPolicy` row fits)."""

    hours_cap_minutes: int
    base_rate: int
    multipliers: Any
    unrated_multiplier_percent: int


def default_policy_values() -> dict[str, Any]:
    """Return the terms of the default policy (DESIGN.md)."""
    return {
        "hours_cap_minutes": 480,
        "base_rate": 10,
        "multipliers": default_multipliers(),
        "unrated_multiplier_percent": 100,
        "rating_window_days": 7,
        "expiry_rule": ExpiryRule.NONE,
        "redemption_hold_days": 14,
    }


# --- pure arithmetic ----------------------------------------------------------------


def _decimal_fraction(value: Number) -> Fraction:
    """Return a policy figure as written in decimal (``1.2`` is 6/5, not a binary float)."""
    if isinstance(value, bool):
        raise TypeError("a policy figure must be a number")
    if isinstance(value, float):
        return Fraction(str(value))
    return Fraction(value)


def _exact(value: Number) -> Fraction:
    """Return a computed value (e.g. an average score) exactly."""
    if isinstance(value, bool):
        raise TypeError("a score must be a number")
    return Fraction(value)


def round_half_up(value: Fraction) -> int:
    """Round to the nearest integer, halves away from zero (``2.5 -> 3``, ``-2.5 -> -3``)."""
    if value >= 0:
        return math.floor(value + Fraction(1, 2))
    return -math.floor(-value + Fraction(1, 2))


def average_score(scores: Iterable[int]) -> Fraction | None:
    """Return the exact average of ``scores`` (None when there are none)."""
    values = list(scores)
    if not values:
        return None
    for s in values:
        if isinstance(s, bool) or not isinstance(s, int) or not MIN_SCORE <= s <= MAX_SCORE:
            raise ValueError(f"a score is an integer from {MIN_SCORE} to {MAX_SCORE}: {s!r}")
    return Fraction(sum(values), len(values))


def multiplier_table(policy: PolicyTerms) -> list[tuple[Fraction, Fraction]]:
    """Return the policy's ``(minimum average, multiplier)`` rows, highest minimum first."""
    rows = [(_decimal_fraction(t), _decimal_fraction(m)) for t, m in policy.multipliers]
    return sorted(rows, key=lambda r: r[0], reverse=True)


def multiplier(avg_score: Number | None, policy: PolicyTerms) -> Fraction:
    """Return the rating multiplier for an average score (None: nobody rated).

    :raises ValueError: the average lies outside 1..5.
    """
    if avg_score is None:
        return Fraction(policy.unrated_multiplier_percent, 100)
    avg = _exact(avg_score)
    if not MIN_SCORE <= avg <= MAX_SCORE:
        raise ValueError(f"an average score lies between {MIN_SCORE} and {MAX_SCORE}: {avg_score}")
    for minimum, factor in multiplier_table(policy):
        if avg >= minimum:
            return factor
    return Fraction(0)


def counted_minutes(minutes: int, policy: PolicyTerms) -> int:
    """Return the minutes that count for points: ``minutes`` capped by the policy.

    :raises ValueError: negative or non-integer minutes.
    """
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 0:
        raise ValueError(f"minutes must be a non-negative integer: {minutes!r}")
    return min(minutes, policy.hours_cap_minutes)


def points_for(minutes: int, avg_score: Number | None, policy: PolicyTerms) -> int:
    """Return the points one participant earns: ``round_half_up(h x rate x m)``, h capped."""
    hours = Fraction(counted_minutes(minutes, policy), 60)
    return round_half_up(hours * policy.base_rate * multiplier(avg_score, policy))


# --- the policy in force --------------------------------------------------------------


def _newest(community_id: int | None) -> PointsPolicy | None:
    cond = (
        PointsPolicy.community_id.is_(None)
        if community_id is None
        else PointsPolicy.community_id == community_id
    )
    return db.session.execute(
        sa.select(PointsPolicy).where(cond).order_by(PointsPolicy.version.desc()).limit(1)
    ).scalar_one_or_none()


def ensure_default_policy() -> PointsPolicy:
    """Return the newest default policy, creating version 1 if there is none (race-safe).

    Must run inside ``atomic()``.
    """
    policy = _newest(None)
    if policy is not None:
        return policy
    if not writing():
        raise RuntimeError("ensure_default_policy() must run inside atomic()")
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = {**default_policy_values(), "community_id": None, "version": 1}
    db.session.execute(insert(PointsPolicy).values(**values).on_conflict_do_nothing())
    policy = _newest(None)
    assert policy is not None
    return policy


def current_policy(community_id: int | None) -> PointsPolicy:
    """Return the newest policy version of the community, else the newest default.

    Inside ``atomic()`` a missing default is created (version 1) so that the result
    has an ``id`` to record; outside, an unsaved default with ``id = None`` is returned.
    """
    if community_id is not None:
        # One query: the community's newest version, else the newest default.
        found = db.session.execute(
            sa.select(PointsPolicy)
            .where(
                sa.or_(
                    PointsPolicy.community_id == community_id, PointsPolicy.community_id.is_(None)
                )
            )
            .order_by(PointsPolicy.community_id.is_(None), PointsPolicy.version.desc())
            .limit(1)
        ).scalar_one_or_none()
        if found is not None:
            return found
    if writing():
        return ensure_default_policy()
    return _newest(None) or PointsPolicy(community_id=None, version=0, **default_policy_values())


def _validate_terms(terms: dict[str, Any]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    rows = terms.get("multipliers")
    if rows is not None:
        ok = isinstance(rows, list) and all(
            isinstance(r, list | tuple)
            and len(r) == 2
            and all(isinstance(x, int | float) and not isinstance(x, bool) for x in r)
            and MIN_SCORE <= r[0] <= MAX_SCORE
            and 0 <= r[1] <= 5
            for r in rows
        )
        if ok:
            thresholds = [r[0] for r in rows]
            ok = thresholds == sorted(thresholds, reverse=True) and len(set(thresholds)) == len(
                thresholds
            )
        if not ok:
            errors["multipliers"] = [
                "A list of [minimum average 1..5, multiplier 0..5], highest minimum first."
            ]
    ranges = {
        "hours_cap_minutes": (1, 1440),
        "base_rate": (0, 1000),
        "unrated_multiplier_percent": (0, 500),
        "rating_window_days": (1, 90),
        "redemption_hold_days": (1, 365),
    }
    for name, (lo, hi) in ranges.items():
        value = terms.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi
        ):
            errors[name] = [f"An integer from {lo} to {hi}."]
    return errors


def new_policy_version(actor: User | None, community: Area | None, **terms: Any) -> PointsPolicy:
    """Create the next policy version for ``community`` (None: the default policy).

    Terms not given are copied from the version in force. Earlier versions stay
    untouched: settlements keep pointing at the version they used.

    A version applies to the settlements made after it only: a settled delivery keeps
    the version it recorded, so nobody's change reaches points already earned.

    :raises Forbidden: unless the actor may manage the policy (``points_policy.manage``:
        a community's secretary, an officer over it, the admin; the default policy: the
        admin; ``None`` = CLI/demo).
    :raises ValidationFailed: unknown or out-of-range terms.
    :raises Conflict: another version was created at the same moment.
    """
    if actor is not None:
        permissions.require(actor, "points_policy.manage", community)
    allowed = set(default_policy_values())
    unknown = set(terms) - allowed
    if unknown:
        raise ValidationFailed(
            "Unknown policy terms.", errors={k: ["Unknown field."] for k in sorted(unknown)}
        )
    if "expiry_rule" in terms:
        try:
            terms["expiry_rule"] = ExpiryRule(terms["expiry_rule"])
        except ValueError:
            raise ValidationFailed(
                "Unknown expiry rule.", errors={"expiry_rule": ["Unknown rule."]}
            ) from None
    errors = _validate_terms(terms)
    if errors:
        raise ValidationFailed("Invalid policy terms.", errors=errors)
    community_id = community.id if community is not None else None
    base = current_policy(community_id)
    newest_own = _newest(community_id)
    values = {name: getattr(base, name) for name in allowed}
    values.update(terms)
    policy = PointsPolicy(
        community_id=community_id,
        version=(newest_own.version + 1) if newest_own is not None else 1,
        created_by_id=actor.id if actor is not None else None,
        **values,
    )
    try:
        with db.session.begin_nested():
            db.session.add(policy)
    except IntegrityError:
        raise Conflict("Another policy version was created just now; try again.") from None
    audit.record(
        actor,
        "points_policy.create",
        "points_policy",
        policy.id,
        area_id=community_id,
        detail={
            "version": policy.version,
            "changed": {c["term"]: [c["before"], c["after"]] for c in changes(base, policy)},
        },
    )
    return policy


def get_policy(policy_id: int) -> PointsPolicy:
    """Return a policy version by id or raise :class:`NotFound`."""
    policy = db.session.get(PointsPolicy, policy_id)
    if policy is None:
        raise NotFound("Points policy not found.")
    return policy


# --- a community's policy as its people read it ----------------------------------------

#: The terms a community sets, in the order the settings page shows them.
TERMS = (
    "base_rate",
    "multipliers",
    "hours_cap_minutes",
    "unrated_multiplier_percent",
    "rating_window_days",
    "redemption_hold_days",
    "expiry_rule",
)


def terms_of(policy: PointsPolicy) -> dict[str, Any]:
    """Return the terms of ``policy`` as plain values (the expiry rule as its value)."""
    out = {name: getattr(policy, name) for name in TERMS}
    out["expiry_rule"] = ExpiryRule(out["expiry_rule"]).value
    out["multipliers"] = [list(row) for row in policy.multipliers]
    return out


def changes(before: PointsPolicy | None, after: PointsPolicy) -> list[dict[str, Any]]:
    """Return ``[{term, before, after}]`` for the terms that differ (none without ``before``)."""
    if before is None:
        return []
    old, new = terms_of(before), terms_of(after)
    return [
        {"term": name, "before": old[name], "after": new[name]}
        for name in TERMS
        if old[name] != new[name]
    ]


def _own_versions(community_id: int, newest: int) -> list[PointsPolicy]:
    return list(
        db.session.scalars(
            sa.select(PointsPolicy)
            .where(PointsPolicy.community_id == community_id)
            .order_by(PointsPolicy.version.desc())
            .limit(newest)
        )
    )


def _default_before(policy_id: int) -> PointsPolicy | None:
    """The default version that was newest when version ``policy_id`` was made."""
    return db.session.scalars(
        sa.select(PointsPolicy)
        .where(PointsPolicy.community_id.is_(None), PointsPolicy.id < policy_id)
        .order_by(PointsPolicy.version.desc())
        .limit(1)
    ).first()


def community_policy(viewer: User, community: Area) -> dict[str, Any]:
    """Return the policy in force in ``community`` and how it differs from the one before.

    ``{policy, inherited, previous, changes}``: ``inherited`` when the community has no
    version of its own (the default policy applies); ``previous`` is the community's
    version before the current one, else the default it replaced (None for the default).

    :raises NotFound: not a community, or the viewer may not read its policy.
    """
    if community.kind != AreaKind.COMMUNITY or not permissions.may(
        viewer, "points_policy.view", community
    ):
        raise NotFound("Community not found.")
    policy = current_policy(community.id)
    inherited = policy.community_id is None
    previous: PointsPolicy | None = None
    if not inherited:
        own = _own_versions(community.id, 2)
        previous = own[1] if len(own) > 1 else _default_before(policy.id)
    return {
        "policy": policy,
        "inherited": inherited,
        "previous": previous,
        "changes": changes(previous, policy),
    }
