"""Users and role grants: create, grant, revoke, present with privacy masks."""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa

from ..extensions import db
from ..models import ApiToken, Area, Role, RoleGrant, User, utcnow
from ..models.users import UNUSABLE_PASSWORD, normalize_phone
from . import audit, passwords, permissions
from .errors import Conflict, Forbidden, NotFound, ValidationFailed
from .permissions import GRANTABLE_KINDS, GrantTarget

MIN_PASSWORD_LENGTH = 8


def get_user(user_id: int) -> User:
    """Return the user or raise :class:`NotFound`."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("User not found.")
    return user


def get_visible_user(actor: User, user_id: int, action: str = "user.view") -> User:
    """Return the user if ``actor`` may see them, by the policy rule ``action``:
    ``user.view`` (the user's record) or ``ledger.view`` (their points ledger).

    :raises NotFound: no such user, or one the actor may not see (the same answer, so
        that ids do not tell who exists).
    """
    user = db.session.get(User, user_id)
    if user is None or not permissions.may(actor, action, user):
        raise NotFound("User not found.")
    return user


def communities_where(user: User, roles: list[Role]) -> list[Area]:
    """Return the communities where ``user`` holds one of ``roles`` (on the community or
    one of its grids), by id."""
    ids = permissions.communities_of(user, roles)
    if not ids:
        return []
    return list(db.session.scalars(sa.select(Area).where(Area.id.in_(ids)).order_by(Area.id)))


def holders_of(role: Role, community: Area) -> list[User]:
    """Return the active users holding ``role`` in ``community`` or one of its grids,
    by display name."""
    return list(
        db.session.scalars(
            sa.select(User)
            .join(RoleGrant, RoleGrant.user_id == User.id)
            .join(Area, Area.id == RoleGrant.area_id)
            .where(
                RoleGrant.role == role,
                RoleGrant.revoked_at.is_(None),
                User.is_active.is_(True),
                Area.path.startswith(community.path, autoescape=True),
            )
            .distinct()
            .order_by(User.display_name, User.id)
        )
    )


def managed_users(actor: User) -> sa.Select[User]:
    """Return the users ``actor`` manages, by id: everyone for an admin; for a secretary,
    those holding a role in their communities and those they created.

    :raises Forbidden: the actor is neither.
    """
    stmt = sa.select(User).order_by(User.id)
    if permissions.is_admin(actor):
        return stmt
    communities = permissions.grant_areas(actor, [Role.SECRETARY])
    if not communities:
        raise Forbidden("You are not allowed to do this.")
    in_area = (
        sa.select(RoleGrant.user_id)
        .join(Area, Area.id == RoleGrant.area_id)
        .where(
            RoleGrant.revoked_at.is_(None),
            sa.or_(*[Area.path.startswith(a.path) for a in communities]),
        )
    )
    return stmt.where(sa.or_(User.id.in_(in_area), User.created_by_id == actor.id))


def grantable_areas(actor: User) -> list[Area]:
    """Return the areas ``actor`` may grant roles on, in tree order: every area for an
    admin, a secretary's communities with their grids."""
    if permissions.is_admin(actor):
        return list(db.session.scalars(sa.select(Area).order_by(Area.path)))
    communities = permissions.grant_areas(actor, [Role.SECRETARY])
    if not communities:
        return []
    return list(
        db.session.scalars(
            sa.select(Area)
            .where(sa.or_(*[Area.path.startswith(a.path) for a in communities]))
            .order_by(Area.path)
        )
    )


def find_by_username(username: str) -> User | None:
    """Return the user with this username (case-insensitive), or None."""
    return db.session.execute(
        sa.select(User).where(sa.func.lower(User.username) == username.strip().lower())
    ).scalar_one_or_none()


def find_by_phone(phone: str) -> User | None:
    """Return the user with this mobile number (any written form), or None."""
    number = normalize_phone(phone)
    if number is None:
        return None
    return db.session.execute(sa.select(User).where(User.phone == number)).scalar_one_or_none()


def find_for_login(name: str) -> User | None:
    """Return the user a login form's name means: a username, else a phone number.

    Usernames are never digits only (``schemas.accounts.validate_username``), so a
    phone number cannot name one account by username and another by phone.
    """
    return find_by_username(name) or find_by_phone(name)


def has_password(user: User) -> bool:
    """Return True if the user can sign in with a password (imported people cannot)."""
    return user.password_hash != UNUSABLE_PASSWORD


def create_user(
    actor: User | None,
    *,
    username: str,
    password: str,
    display_name: str,
    phone: str | None = None,
    address: str | None = None,
    household_tags: str | None = None,
    home_unit: str | None = None,
) -> User:
    """Create a user account.

    :raises Forbidden: unless the actor is an admin or a secretary (``None`` = CLI).
    :raises Conflict: the username is taken.
    """
    if actor is not None:
        permissions.require(actor, "user.create")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            "Password too short.",
            errors={"password": [f"At least {MIN_PASSWORD_LENGTH} characters."]},
        )
    if find_by_username(username) is not None:
        raise Conflict("This username is taken.", errors={"username": ["Taken."]})
    if phone is not None and find_by_phone(phone) is not None:
        raise Conflict(
            "This phone number belongs to another account.",
            errors={"phone": ["This phone number belongs to another account."]},
        )
    user = User(
        username=username.strip(),
        password_hash=passwords.hash_password(password),
        display_name=display_name.strip(),
        phone=phone,
        address=address,
        household_tags=household_tags,
        home_unit=home_unit,
        created_by_id=actor.id if actor is not None else None,
    )
    db.session.add(user)
    db.session.flush()
    audit.record(actor, "user.create", "user", user.id)
    return user


def grant_role(actor: User | None, user: User, role: Role, area: Area | None) -> RoleGrant:
    """Grant ``role`` on ``area`` to ``user`` (admin grants are global: ``area`` None).

    :raises Forbidden: the actor may not grant this role on this area.
    :raises ValidationFailed: the role cannot be held on this kind of area.
    :raises Conflict: the user already holds it.
    """
    if role == Role.ADMIN:
        if area is not None:
            raise ValidationFailed(
                "Admin is a global role.", errors={"area_id": ["Must be empty for admin."]}
            )
    else:
        if area is None:
            raise ValidationFailed("An area is required.", errors={"area_id": ["Required."]})
        if area.kind not in GRANTABLE_KINDS[role]:
            kinds = ", ".join(sorted(k.value for k in GRANTABLE_KINDS[role]))
            raise ValidationFailed(
                "This role cannot be held on this kind of area.",
                errors={"area_id": [f"{role.value} is granted on: {kinds}."]},
            )
    if actor is not None:
        permissions.require(actor, "role.grant", GrantTarget(role, area, user))
    area_id = area.id if area is not None else None
    existing = db.session.execute(
        sa.select(RoleGrant.id).where(
            RoleGrant.user_id == user.id,
            RoleGrant.role == role,
            RoleGrant.area_id.is_(None) if area_id is None else RoleGrant.area_id == area_id,
            RoleGrant.revoked_at.is_(None),
        )
    ).first()
    if existing is not None:
        raise Conflict("The user already holds this role here.")
    grant = RoleGrant(
        user_id=user.id, role=role, area_id=area_id, granted_by_id=actor.id if actor else None
    )
    db.session.add(grant)
    db.session.flush()
    db.session.expire(user, ["grants"])
    audit.record(
        actor,
        "role.grant",
        "user",
        user.id,
        area_id=area_id,
        detail={"role": role.value, "grant_id": grant.id},
    )
    return grant


def revoke_role(actor: User | None, grant: RoleGrant) -> RoleGrant:
    """End a role grant (kept for history, never deleted).

    :raises Conflict: already revoked.
    """
    if actor is not None:
        permissions.require(actor, "role.revoke", GrantTarget(grant.role, grant.area))
    if grant.revoked_at is not None:
        raise Conflict("This role grant has already ended.")
    grant.revoked_at = utcnow()
    grant.revoked_by_id = actor.id if actor else None
    db.session.flush()
    user = db.session.get(User, grant.user_id)
    if user is not None:
        db.session.expire(user, ["grants"])
    audit.record(
        actor,
        "role.revoke",
        "user",
        grant.user_id,
        area_id=grant.area_id,
        detail={"role": grant.role.value, "grant_id": grant.id},
    )
    return grant


def set_password(
    actor: User | None, user: User, new_password: str, *, keep_token_id: int | None = None
) -> int:
    """Change the password, end every page session of ``user`` and revoke every API token
    of theirs but ``keep_token_id`` (the caller's own); return how many were revoked.

    The page session the change was made from is ended too (its session version is
    stale); the view signs that one browser in again with the new version.

    :raises ValidationFailed: the new password is too short.
    """
    if len(new_password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            "Password too short.",
            errors={"password": [f"At least {MIN_PASSWORD_LENGTH} characters."]},
        )
    user.password_hash = passwords.hash_password(new_password)
    user.session_version += 1
    user.must_change_password = False
    stmt = (
        sa.update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if keep_token_id is not None:
        stmt = stmt.where(ApiToken.id != keep_token_id)
    revoked = cast("sa.CursorResult[Any]", db.session.execute(stmt)).rowcount
    audit.record(actor, "user.password", "user", user.id, detail={"tokens_revoked": revoked})
    return revoked


def reset_password(actor: User, user: User, new_password: str) -> None:
    """Give ``user`` a new password that must be changed at the next login; end their
    page sessions and revoke their API tokens.

    :raises Forbidden: unless the actor is an admin or the secretary of a community
        where the user holds only member, resident or grid-worker roles (never oneself).
    :raises ValidationFailed: the password is too short.
    """
    permissions.require(actor, "user.reset_password", user)
    if len(new_password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            "Password too short.",
            errors={"password": [f"At least {MIN_PASSWORD_LENGTH} characters."]},
        )
    user.password_hash = passwords.hash_password(new_password)
    user.session_version += 1
    user.must_change_password = True
    db.session.execute(
        sa.update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    db.session.flush()
    audit.record(actor, "user.password_reset", "user", user.id)
    audit.notify(user.id, "user.password_reset", object_type="user", object_id=user.id)


def mask_phone(phone: str | None) -> str | None:
    """Return ``138****1234`` for ``13812341234``; short values are fully masked."""
    if not phone:
        return phone
    if len(phone) >= 7:
        return (
            phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
            if len(phone) > 7
            else phone[:3] + "****"
        )
    return "*" * len(phone)


#: What a viewer without the right sees of an address or household tags: that there is
#: one, nothing of it (a first character such as "残" or "空" is already the tag).
MASK = "***"


def mask_text(value: str | None) -> str | None:
    """Return a masked stand-in for free-text personal data (address, household tags):
    :data:`MASK` when there is a value, nothing of the value itself."""
    if not value:
        return value
    return MASK


def present_user(viewer: User | None, user: User) -> dict[str, Any]:
    """Return the user as ``viewer`` may see it: personal data masked unless allowed
    (``user.view_personal``). Officers see no household tags at all (not even that there
    are some): they have no need to, and a street's residents are many."""
    full = viewer is not None and permissions.may(viewer, "user.view_personal", user)
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "phone": user.phone if full else mask_phone(user.phone),
        "address": user.address if full else mask_text(user.address),
        "household_tags": (
            user.household_tags
            if full
            else None
            if viewer is not None and any(g.role == Role.OFFICER for g in viewer.grants)
            else mask_text(user.household_tags)
        ),
        "home_unit": user.home_unit,
        "is_active": user.is_active,
        "must_change_password": user.must_change_password,
        "roles": [{"id": g.id, "role": g.role.value, "area_id": g.area_id} for g in user.grants],
    }
