"""Exposure settings: how an area's rankings are shown to residents and members.

Full list, top-N or tiers; the setting of the area or its nearest configured
ancestor applies (:func:`exposure_for`); secretaries, officers and admins set it
(:func:`set_exposure`, audited).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ...extensions import db
from ...models import Area, User, utcnow
from ...models.rankings import MAX_TOP_N, Exposure, RankingSettings
from .. import audit, permissions
from ..errors import ValidationFailed


@dataclass(frozen=True)
class ExposureSetting:
    """The exposure that applies to an area (its own setting or an ancestor's)."""

    mode: Exposure
    top_n: int | None = None
    gold_pct: int = 10
    silver_pct: int = 30
    bronze_pct: int = 60
    #: The area whose setting applies (None: the default, full list).
    area_id: int | None = None


@functools.cache
def _settings_statement() -> sa.Select[*tuple[Any, ...]]:
    """Settings of the area at ``:path``, its ancestors and its subtree (the table has a
    row per configured area only); of the ancestors' the deepest one applies, the
    subtree's are the communities' settings that ``hiding.py`` honours. Ancestors come
    from the materialized path inside the statement (``:path LIKE path || '%'``), the
    subtree from ``path LIKE :path || '%'``; built once, scalar bound parameters only,
    plain Core."""
    areas, settings = Area.__table__, RankingSettings.__table__
    path = sa.bindparam("path", type_=sa.String)
    return (
        sa.select(
            areas.c.path,
            settings.c.area_id,
            settings.c.exposure,
            settings.c.top_n,
            settings.c.gold_pct,
            settings.c.silver_pct,
            settings.c.bronze_pct,
        )
        .select_from(settings.join(areas, areas.c.id == settings.c.area_id))
        .where(sa.or_(path.like(areas.c.path + "%"), areas.c.path.like(path + "%")))
    )


def settings_around(area: Area) -> list[Any]:
    """Return the setting rows of ``area``, its ancestors and its subtree (with ``path``)."""
    conn = db.session.connection()
    return list(conn.execute(_settings_statement(), {"path": area.path}).all())


def exposure_for(area: Area, around: list[Any] | None = None) -> ExposureSetting:
    """Return the setting that applies to ``area``: its own or its nearest ancestor's
    (``around``: the rows of :func:`settings_around`, when already read)."""
    if around is None:
        around = settings_around(area)
    rows = [r for r in around if area.path.startswith(r.path)]
    if rows:
        s = max(rows, key=lambda r: len(r.path))  # the deepest configured ancestor
        return ExposureSetting(
            Exposure(s.exposure), s.top_n, s.gold_pct, s.silver_pct, s.bronze_pct, s.area_id
        )
    return ExposureSetting(Exposure.FULL)


def set_exposure(
    actor: User | None,
    area: Area,
    mode: Exposure | str,
    *,
    top_n: int | None = None,
    gold_pct: int = 10,
    silver_pct: int = 30,
    bronze_pct: int = 60,
) -> RankingSettings:
    """Set how ``area``'s rankings are shown to residents and members. Audited.

    :raises Forbidden: unless the actor is the community's secretary, an officer over
        the area, or an admin (``actor=None`` is the CLI/demo).
    :raises ValidationFailed: unknown mode, ``top_n`` outside 1..1000, tiers not increasing.
    """
    if actor is not None:
        permissions.require(actor, "rankings.configure", area)
    try:
        mode = Exposure(mode)
    except ValueError:
        raise ValidationFailed(
            "Unknown exposure.", errors={"exposure": ["Use full, top_n or tiers."]}
        ) from None
    if mode == Exposure.TOP_N:
        if isinstance(top_n, bool) or not isinstance(top_n, int) or not 1 <= top_n <= MAX_TOP_N:
            raise ValidationFailed(
                "N must be between 1 and 1000.", errors={"top_n": ["From 1 to 1000."]}
            )
    else:
        top_n = None
    if not 0 < gold_pct < silver_pct < bronze_pct <= 100:
        raise ValidationFailed(
            "Tier percentiles must increase: 0 < gold < silver < bronze <= 100.",
            errors={"tiers": ["0 < gold < silver < bronze <= 100."]},
        )
    setting = db.session.get(RankingSettings, area.id)
    if setting is None:
        setting = RankingSettings(area_id=area.id)
        db.session.add(setting)
    setting.exposure = mode
    setting.top_n = top_n
    setting.gold_pct, setting.silver_pct, setting.bronze_pct = gold_pct, silver_pct, bronze_pct
    setting.updated_by_id = actor.id if actor is not None else None
    setting.updated_at = utcnow()
    db.session.flush()
    audit.record(
        actor,
        "rankings.configure",
        "area",
        area.id,
        area_id=area.id,
        detail={
            "exposure": mode.value,
            "top_n": top_n,
            "tiers": [gold_pct, silver_pct, bronze_pct],
        },
    )
    return setting
