"""Service certificates (服务证明): a member's year in a community, verifiable by code.

The figures are the frozen evaluation row when the community's year is closed (with
its upheld corrections), otherwise the live annual report row. The content is made
canonical (sorted JSON) and hashed (SHA-256); the verification code is the hash's
first 16 hex digits, so it carries no personal data. The certificate is stored by
code; the public verification page looks a code up and shows what the certificate
states (the member's name masked). Who may have one issued: the member, the
secretary of their community, an officer over it (the ``ledger.view`` rule).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import Area, Evaluation, EvaluationRow, Role, ServiceCertificate, User, utcnow
from ...models.evaluations import CODE_LENGTH
from ...zones import zone
from .. import audit, permissions
from ..errors import NotFound, ValidationFailed
from ..users import get_visible_user
from .report import check_year, community_rows

_CODE_RE = re.compile(r"^[0-9A-F]{16}$")


@dataclass(frozen=True)
class Certificate:
    """What a certificate states, and its code."""

    code: str
    content: dict[str, Any]


def _community_for(actor: User, member: User, community_id: int | None) -> Area:
    mine = sorted(permissions.communities_of(member, [Role.MEMBER]))
    if community_id is not None:
        if community_id not in mine:
            raise NotFound("Community not found.")
        mine = [community_id]
    if actor.id != member.id:
        managed = permissions.communities_of(actor, [Role.SECRETARY, Role.OFFICER])
        officer_paths = [a.path for a in permissions.grant_areas(actor, [Role.OFFICER])]
        allowed = []
        for cid in mine:
            area = db.session.get(Area, cid)
            if area is not None and (
                cid in managed or any(area.path.startswith(p) for p in officer_paths)
            ):
                allowed.append(cid)
        mine = allowed
    if not mine:
        raise NotFound("Community not found.")
    area = db.session.get(Area, mine[0])
    if area is None:
        raise NotFound("Community not found.")
    return area


def _figures(member: User, community: Area, year: int) -> dict[str, Any]:
    evaluation = db.session.scalars(
        sa.select(Evaluation).where(
            Evaluation.community_id == community.id, Evaluation.year == year
        )
    ).first()
    if evaluation is not None:
        row = db.session.scalars(
            sa.select(EvaluationRow).where(
                EvaluationRow.evaluation_id == evaluation.id,
                EvaluationRow.user_id == member.id,
            )
        ).first()
        if row is not None:
            return {
                "hours": float(row.hours),
                "deliveries": row.deliveries,
                "points": row.points_earned,
                "status": evaluation.status.value,
            }
    for r in community_rows(community, year):
        if r["user_id"] == member.id:
            return {
                "hours": r["hours"],
                "deliveries": r["deliveries"],
                "points": r["points_earned"],
                "status": "live",
            }
    return {"hours": 0.0, "deliveries": 0, "points": 0, "status": "live"}


def digest_of(content: dict[str, Any]) -> str:
    """Return the SHA-256 (hex) of ``content`` as canonical JSON."""
    text = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def issue(
    actor: User,
    user_id: int,
    year: int,
    community_id: int | None = None,
    *,
    now: datetime | None = None,
) -> Certificate:
    """Issue (or re-issue: the same content has the same code) a member's certificate.

    :raises NotFound: no such user or community, or one the actor may not see.
    :raises ValidationFailed: a bad year.
    """
    member = get_visible_user(actor, user_id, "ledger.view")
    check_year(year)
    community = _community_for(actor, member, community_id)
    now = now or utcnow()
    local = now.astimezone(zone(community.timezone))
    content = {
        "community_id": community.id,
        "community": community.name,
        "user_id": member.id,
        "display_name": member.display_name,
        "home_unit": member.home_unit or "",
        "year": year,
        "period": f"{year}-01-01 – {year}-12-31",
        "issued_on": local.date().isoformat(),
        **_figures(member, community, year),
    }
    digest = digest_of(content)
    code = digest[:CODE_LENGTH].upper()
    existing = db.session.scalars(
        sa.select(ServiceCertificate).where(ServiceCertificate.code == code)
    ).first()
    if existing is None:
        try:
            with db.session.begin_nested():
                db.session.add(
                    ServiceCertificate(
                        code=code,
                        digest=digest,
                        user_id=member.id,
                        community_id=community.id,
                        year=year,
                        content=content,
                        issued_by_id=actor.id,
                        issued_at=now,
                    )
                )
                db.session.flush()
        except IntegrityError:
            pass  # issued concurrently with the same content: the same code
        audit.record(
            actor,
            "certificate.issue",
            "user",
            member.id,
            area_id=community.id,
            detail={"year": year, "code": code},
        )
    return Certificate(code=code, content=content)


def normalise_code(value: Any) -> str | None:
    """Return a code typed by someone (spaces, dashes, lower case allowed), or None."""
    if not isinstance(value, str):
        return None
    code = re.sub(r"[\s-]", "", value).upper()
    return code if _CODE_RE.match(code) else None


def mask_name(name: str) -> str:
    """Return a display name with all but its first character masked (张** )."""
    return name[:1] + "*" * max(len(name) - 1, 1)


def verify(code: Any) -> dict[str, Any] | None:
    """Return what the certificate with ``code`` states (name masked), or None.

    :raises ValidationFailed: not a well-formed code.
    """
    normal = normalise_code(code)
    if normal is None:
        raise ValidationFailed(
            "Not a verification code.", errors={"code": ["16 characters 0-9, A-F."]}
        )
    cert = db.session.scalars(
        sa.select(ServiceCertificate).where(ServiceCertificate.code == normal)
    ).first()
    if cert is None or digest_of(cert.content) != cert.digest:
        return None
    c = cert.content
    return {
        "code": cert.code,
        "community": c["community"],
        "display_name": mask_name(c["display_name"]),
        "year": c["year"],
        "hours": c["hours"],
        "deliveries": c["deliveries"],
        "points": c["points"],
        "issued_on": c["issued_on"],
    }
