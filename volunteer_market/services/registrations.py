"""Self-registration (在职党员到社区报到): apply, approve or reject, see the outcome.

Design overview
---------------
* **Apply** (anonymous, throttled at the edge): phone, name, password, community, role
  (member or resident), work unit. The password is hashed at once; no account exists
  yet, so a pending applicant cannot sign in. One pending request per phone number (a
  partial unique index backs the check); a number whose account already has a password
  is told to sign in instead. The community's secretaries are notified.
* **Decide** (``registration.decide``: a secretary of that community; the admin takes no
  part in community business): a conditional UPDATE from ``pending``, so two secretaries
  deciding at once never both win. Approval creates the account (username = the phone
  number, the chosen password) or completes an imported person's account that had no
  password, and grants the role on the community; the new account is notified. A
  rejection needs a reason.
* **The outcome**: the applicant keeps a status link (a random token, only its hash is
  stored) that shows pending, approved (sign in with your phone number) or the reason.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import (
    Area,
    AreaKind,
    Registration,
    RegistrationStatus,
    Role,
    RoleGrant,
    User,
    utcnow,
)
from . import audit, passwords, permissions
from .errors import Conflict, NotFound, ValidationFailed
from .users import MIN_PASSWORD_LENGTH, find_by_phone, find_by_username, has_password, holders_of

ROLES = (Role.MEMBER, Role.RESIDENT)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def register(
    *,
    phone: str,
    display_name: str,
    password: str,
    community: Area,
    role: Role,
    home_unit: str | None = None,
) -> tuple[Registration, str]:
    """Store a pending registration; return it and the raw token of its status link.

    :raises ValidationFailed: not a community, not member/resident, short password.
    :raises Conflict: the number already has an account with a password, or a request
        of this number is already waiting.
    """
    if community.kind != AreaKind.COMMUNITY:
        raise ValidationFailed("Not a community.", errors={"community_id": ["Not a community."]})
    if role not in ROLES:
        raise ValidationFailed(
            "Register as a member or a resident.",
            errors={"role": ["Register as a member or a resident."]},
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            "Password too short.",
            errors={"password": [f"At least {MIN_PASSWORD_LENGTH} characters."]},
        )
    existing = find_by_phone(phone)
    if existing is not None and has_password(existing):
        raise Conflict(
            "This phone number already has an account: sign in with it.",
            errors={"phone": ["This phone number already has an account: sign in with it."]},
        )
    token = secrets.token_urlsafe(24)
    registration = Registration(
        phone=phone,
        display_name=display_name.strip(),
        password_hash=passwords.hash_password(password),
        community_id=community.id,
        role=role,
        home_unit=home_unit,
        status=RegistrationStatus.PENDING,
        status_token_hash=_digest(token),
    )
    try:
        with db.session.begin_nested():
            db.session.add(registration)
    except IntegrityError:
        raise Conflict(
            "A registration of this phone number is already waiting.",
            errors={"phone": ["A registration of this phone number is already waiting."]},
        ) from None
    audit.record(
        None,
        "registration.submit",
        "registration",
        registration.id,
        area_id=community.id,
        detail={"role": role.value},
    )
    for secretary in holders_of(Role.SECRETARY, community):
        audit.notify(
            secretary.id,
            "registration.submitted",
            object_type="registration",
            object_id=registration.id,
            params={"name": registration.display_name},
        )
    return registration, token


def by_token(token: str) -> Registration:
    """Return the registration of a status link.

    :raises NotFound: no such link.
    """
    found = db.session.execute(
        sa.select(Registration).where(Registration.status_token_hash == _digest(token or ""))
    ).scalar_one_or_none()
    if found is None:
        raise NotFound("Registration not found.")
    return found


def get_registration(actor: User, registration_id: int) -> Registration:
    """Return a registration the actor may decide.

    :raises NotFound: no such registration, or not of the actor's communities.
    """
    found = db.session.get(Registration, registration_id)
    if found is None or not permissions.may(actor, "registration.view", found):
        raise NotFound("Registration not found.")
    return found


def visible(
    actor: User, *, status: RegistrationStatus | None = None, community_id: int | None = None
) -> sa.Select[Registration]:
    """Return the registrations of the actor's communities (as secretary), newest first."""
    ids = permissions.communities_of(actor, [Role.SECRETARY])
    if community_id is not None:
        ids &= {community_id}
    stmt = sa.select(Registration).where(Registration.community_id.in_(sorted(ids)))
    if status is not None:
        stmt = stmt.where(Registration.status == status)
    return stmt.order_by(Registration.created_at.desc(), Registration.id.desc())


def _decide(
    actor: User, registration: Registration, status: RegistrationStatus, **values: Any
) -> None:
    permissions.require(actor, "registration.decide", registration)
    result = db.session.execute(
        sa.update(Registration)
        .where(
            Registration.id == registration.id, Registration.status == RegistrationStatus.PENDING
        )
        .values(status=status, decided_by_id=actor.id, decided_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    if cast("sa.CursorResult[Any]", result).rowcount != 1:
        raise Conflict("This registration has already been decided.")
    db.session.refresh(registration)


def approve(actor: User, registration: Registration) -> User:
    """Approve: create (or complete) the account and grant the role on the community.

    :raises Forbidden: not a secretary of the registration's community.
    :raises Conflict: already decided; the number got an account with a password meanwhile.
    """
    _decide(actor, registration, RegistrationStatus.APPROVED)
    community = db.session.get(Area, registration.community_id)
    assert community is not None
    user = find_by_phone(registration.phone)
    if user is not None and has_password(user):
        raise Conflict("This phone number already has an account: sign in with it.")
    if user is None:
        username = registration.phone
        if find_by_username(username) is not None:
            username = "u" + registration.phone
        user = User(
            username=username,
            password_hash=registration.password_hash,
            display_name=registration.display_name,
            phone=registration.phone,
            home_unit=registration.home_unit,
            created_by_id=actor.id,
        )
        db.session.add(user)
        db.session.flush()
        audit.record(actor, "user.create", "user", user.id, area_id=community.id)
    else:  # an imported person without a password: their account, their password now
        user.password_hash = registration.password_hash
        user.home_unit = registration.home_unit or user.home_unit
        user.session_version += 1
        audit.record(actor, "user.password", "user", user.id, area_id=community.id)
    held = db.session.execute(
        sa.select(RoleGrant.id)
        .join(Area, Area.id == RoleGrant.area_id)
        .where(
            RoleGrant.user_id == user.id,
            RoleGrant.role == registration.role,
            RoleGrant.revoked_at.is_(None),
            Area.path.startswith(community.path, autoescape=True),
        )
    ).first()
    if held is None:
        grant = RoleGrant(
            user_id=user.id, role=registration.role, area_id=community.id, granted_by_id=actor.id
        )
        db.session.add(grant)
        db.session.flush()
        db.session.expire(user, ["grants"])
        audit.record(
            actor,
            "role.grant",
            "user",
            user.id,
            area_id=community.id,
            detail={"role": registration.role.value, "grant_id": grant.id},
        )
    registration.user_id = user.id
    db.session.flush()
    audit.record(
        actor, "registration.approve", "registration", registration.id, area_id=community.id
    )
    audit.notify(
        user.id, "registration.approved", object_type="registration", object_id=registration.id
    )
    return user


def reject(actor: User, registration: Registration, reason: str) -> None:
    """Reject with a reason (the applicant sees it on their status link).

    :raises Forbidden: not a secretary of the registration's community.
    :raises ValidationFailed: no reason.
    :raises Conflict: already decided.
    """
    permissions.require(actor, "registration.decide", registration)
    if not reason.strip():
        raise ValidationFailed(
            "A reason is required.", errors={"reason": ["A reason is required."]}
        )
    _decide(actor, registration, RegistrationStatus.REJECTED, reason=reason.strip())
    audit.record(
        actor,
        "registration.reject",
        "registration",
        registration.id,
        area_id=registration.community_id,
    )
