"""Call-backs (回访) of proxy ratings: the secretary phones a sample of residents back.

Design overview
===============

A proxy rating (代评) is entered by a grid worker or the secretary for a resident
without a phone (``ratings.rate(on_behalf_of=...)``, flagged ``is_proxy``). To keep
proxies honest the community's secretary phones a **sample** of them back:

* **The sample** (:func:`sample`, ``moderation.community``): of the community's proxy
  ratings entered or changed in the last :data:`CALLBACK_WINDOW` that have no final
  outcome yet, :data:`SAMPLE_SIZE` drawn at random -- seeded by the app's secret key,
  the community and the local date, so the list is stable for a day and nobody
  entering proxies can predict which of his will be called. Each item shows the
  resident's phone in full only to whom ``user.view_personal`` allows (the
  community's secretary; DESIGN.md "Privacy"), and says whether the caller may record
  it (``can_record``: not a rating he entered, nor of a delivery he served in).
* **The outcome** (:func:`record_callback`, ``callback.record`` on
  ``permissions.RatingOversight``, guarded by the no-self-dealing rule):
  ``confirmed`` (the resident agrees), ``disputed`` (he does not; a note is required)
  or ``unreachable`` (may be tried again). A rating gets one final outcome
  (``confirmed``/``disputed``: partial UNIQUE index; 409 before the insert).
* **A disputed call-back** opens the path to an appeal: the resident is notified that
  he may appeal the proxy rating, and his 14-day appeal window runs from the disputed
  call-back (``services/appeals.py``); it also shows as the integrity signal
  ``disputed_callback`` (``services/integrity.py``).

Audited (``rating.callback``, outcome only: the note may hold what the resident said
and stays in ``rating_callbacks``). Nothing here moves points.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import (
    Area,
    CallbackOutcome,
    Delivery,
    Project,
    Rating,
    RatingCallback,
    User,
    utcnow,
)
from ..zones import area_zone
from . import audit, permissions
from .errors import Conflict, Forbidden, ValidationFailed
from .moderation import clean_reason
from .users import mask_phone

#: Proxy ratings entered or changed this long ago or later are sampled.
CALLBACK_WINDOW = timedelta(days=30)
#: How many proxy ratings the sample holds (fewer when the community has fewer).
SAMPLE_SIZE = 10
#: At most this many candidates are drawn from (the newest), so the sample stays bounded.
MAX_CANDIDATES = 2000
#: How many recorded call-backs :func:`recent_callbacks` returns.
RECENT_LIMIT = 20
FINAL_OUTCOMES = (CallbackOutcome.CONFIRMED, CallbackOutcome.DISPUTED)


def _require_community(actor: User, community: Area) -> None:
    if not permissions.may(actor, "moderation.community", community):
        raise Forbidden(
            "Only the community's secretary calls its proxy ratings back.", action="callback"
        )


def _seed(community: Area, now: datetime) -> int:
    key = current_app.config["SECRET_KEY"]
    key_bytes = key.encode() if isinstance(key, str) else bytes(key)
    day = now.astimezone(area_zone(community)).date().isoformat()
    digest = hmac.new(key_bytes, f"callbacks:{community.id}:{day}".encode(), hashlib.sha256)
    return int.from_bytes(digest.digest()[:8], "big")


def _finalised() -> sa.Select[int]:
    return sa.select(RatingCallback.rating_id).where(RatingCallback.outcome.in_(FINAL_OUTCOMES))


def sample(actor: User, community: Area, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Return today's sample of the community's proxy ratings to phone back.

    :raises Forbidden: not the community's secretary.
    """
    _require_community(actor, community)
    now = now or utcnow()
    candidates = list(
        db.session.execute(
            sa.select(Rating.id)
            .join(Delivery, Delivery.id == Rating.delivery_id)
            .where(
                Delivery.community_id == community.id,
                Rating.is_proxy.is_(True),
                Rating.updated_at >= now - CALLBACK_WINDOW,
                Rating.id.not_in(_finalised()),
            )
            .order_by(Rating.id.desc())
            .limit(MAX_CANDIDATES)
        ).scalars()
    )
    chosen = random.Random(_seed(community, now)).sample(  # noqa: S311  (not a secret)
        sorted(candidates), min(SAMPLE_SIZE, len(candidates))
    )
    return present(actor, sorted(chosen))


def present(actor: User, rating_ids: list[int]) -> list[dict[str, Any]]:
    """Return proxy ratings as call-back items (the resident's phone as ``actor`` may see it)."""
    if not rating_ids:
        return []
    rows = db.session.execute(
        sa.select(Rating, Delivery.started_at, Project.title)
        .join(Delivery, Delivery.id == Rating.delivery_id)
        .join(Project, Project.id == Delivery.project_id)
        .where(Rating.id.in_(rating_ids))
        .order_by(Rating.id)
    ).all()
    people = {uid for r, _s, _t in rows for uid in (r.beneficiary_id, r.entered_by_id)}
    users = {u.id: u for u in db.session.scalars(sa.select(User).where(User.id.in_(people)))}
    attempts: dict[int, int] = dict(
        db.session.execute(
            sa.select(RatingCallback.rating_id, sa.func.count())
            .where(RatingCallback.rating_id.in_(rating_ids))
            .group_by(RatingCallback.rating_id)
        ).all()
    )
    out = []
    for rating, started_at, title in rows:
        resident = users[rating.beneficiary_id]
        full = permissions.may(actor, "user.view_personal", resident)
        out.append(
            {
                "rating_id": rating.id,
                "delivery_id": rating.delivery_id,
                "project_title": title,
                "started_at": started_at,
                "score": rating.score,
                "rated_at": rating.updated_at,
                "resident_id": resident.id,
                "resident_name": resident.display_name,
                "resident_phone": resident.phone if full else mask_phone(resident.phone),
                "entered_by_id": rating.entered_by_id,
                "entered_by_name": users[rating.entered_by_id].display_name,
                "attempts": attempts.get(rating.id, 0),
                "can_record": permissions.may(
                    actor, "callback.record", permissions.RatingOversight(rating)
                ),
            }
        )
    return out


def record_callback(
    actor: User,
    rating: Rating,
    outcome: Any,
    note: Any = None,
    *,
    now: datetime | None = None,
) -> RatingCallback:
    """Record the outcome of phoning the resident of a proxy rating back.

    :raises Forbidden: not the community's secretary, or a party to the rating.
    :raises ValidationFailed: unknown outcome; a dispute without a note; too long a note.
    :raises Conflict: not a proxy rating; it already has a final outcome.
    """
    permissions.require(actor, "callback.record", permissions.RatingOversight(rating))
    try:
        result = CallbackOutcome(outcome)
    except ValueError:
        raise ValidationFailed(
            "Unknown outcome.",
            errors={"outcome": ["One of confirmed, disputed, unreachable."]},
        ) from None
    text = clean_reason(note, required=result == CallbackOutcome.DISPUTED, field="note")
    if not rating.is_proxy:
        raise Conflict("Only proxy ratings are called back.")
    final = db.session.execute(
        sa.select(RatingCallback.id, RatingCallback.outcome).where(
            RatingCallback.rating_id == rating.id, RatingCallback.outcome.in_(FINAL_OUTCOMES)
        )
    ).first()
    if final is not None:
        raise Conflict("This rating has already been called back.", callback_id=final[0])
    delivery = db.session.get(Delivery, rating.delivery_id)
    assert delivery is not None  # a rating's foreign key
    callback = RatingCallback(
        rating_id=rating.id,
        community_id=delivery.community_id,
        caller_id=actor.id,
        outcome=result,
        note=text,
        created_at=now or utcnow(),
    )
    try:
        with db.session.begin_nested():
            db.session.add(callback)
            db.session.flush()
    except IntegrityError:
        raise Conflict("This rating has already been called back.") from None
    audit.record(
        actor,
        "rating.callback",
        "rating",
        rating.id,
        area_id=delivery.community_id,
        detail={"callback_id": callback.id, "outcome": result.value},
    )
    if result == CallbackOutcome.DISPUTED:
        title = db.session.execute(
            sa.select(Project.title).where(Project.id == delivery.project_id)
        ).scalar_one()
        audit.notify(
            rating.beneficiary_id,
            "callback.disputed",
            object_type="rating",
            object_id=rating.id,
            params={"title": title},
        )
    return callback


def recent_callbacks(actor: User, community: Area) -> list[dict[str, Any]]:
    """Return the community's latest recorded call-backs, newest first.

    :raises Forbidden: not the community's secretary.
    """
    _require_community(actor, community)
    rows = db.session.execute(
        sa.select(RatingCallback, User.display_name)
        .join(User, User.id == RatingCallback.caller_id)
        .where(RatingCallback.community_id == community.id)
        .order_by(RatingCallback.created_at.desc(), RatingCallback.id.desc())
        .limit(RECENT_LIMIT)
    ).all()
    return [present_callback(cb, caller_name=name) for cb, name in rows]


def present_callback(callback: RatingCallback, *, caller_name: str = "") -> dict[str, Any]:
    """Return a recorded call-back as a dict."""
    return {
        "id": callback.id,
        "rating_id": callback.rating_id,
        "outcome": callback.outcome.value,
        "note": callback.note,
        "caller_id": callback.caller_id,
        "caller_name": caller_name,
        "created_at": callback.created_at,
    }


def disputed_since(rating_id: int) -> datetime | None:
    """Return when the rating's call-back was disputed, if it was."""
    return db.session.execute(
        sa.select(RatingCallback.created_at).where(
            RatingCallback.rating_id == rating_id,
            RatingCallback.outcome == CallbackOutcome.DISPUTED,
        )
    ).scalar_one_or_none()
