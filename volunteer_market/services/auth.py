"""Authentication: passwords, API bearer tokens, session versions."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..models import ApiToken, User, utcnow
from . import audit, passwords
from .errors import AuthenticationFailed
from .users import find_for_login

#: One message for every failure so the response never tells whether a user exists.
GENERIC_FAILURE = "Invalid username or password."


def authenticate(username: str, password: str) -> User:
    """Return the active user whose credentials these are (``username`` is a username
    or a phone number).

    :raises AuthenticationFailed: with the same generic message for every cause.
    """
    user = find_for_login(username) if username else None
    ok = passwords.verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        raise AuthenticationFailed(GENERIC_FAILURE)
    return user


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue_token(user: User, ttl: timedelta) -> tuple[str, ApiToken]:
    """Create a random bearer token for ``user``; only its hash is stored."""
    raw = secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, token_hash=_digest(raw), expires_at=utcnow() + ttl)
    db.session.add(token)
    db.session.flush()
    audit.record(user, "token.issue", "api_token", token.id)
    return raw, token


#: The user of a live token with the current role grants joined in: built once (bound
#: parameters only), so each API request only binds the digest and the clock.
_USER_FOR_TOKEN = (
    sa.select(User)
    .join(ApiToken, ApiToken.user_id == User.id)
    .where(
        ApiToken.token_hash == sa.bindparam("digest"),
        ApiToken.revoked_at.is_(None),
        ApiToken.expires_at > sa.bindparam("now", type_=ApiToken.__table__.c.expires_at.type),
        User.is_active.is_(True),
    )
    .options(joinedload(User.grants))
)


def user_for_token(raw: str) -> User | None:
    """Return the active user of an unexpired, unrevoked token, else None.

    One statement (the hot path of every API request, issue 21): the user is selected
    through the token with its current role grants (and their areas) joined in; no
    token object is loaded.
    """
    if not raw:
        return None
    result = db.session.execute(_USER_FOR_TOKEN, {"digest": _digest(raw), "now": utcnow()})
    return result.unique().scalar_one_or_none()


def token_id(raw: str | None) -> int | None:
    """Return the id of the token ``raw`` (revoked or not), or None if unknown."""
    if not raw:
        return None
    return db.session.execute(
        sa.select(ApiToken.id).where(ApiToken.token_hash == _digest(raw))
    ).scalar_one_or_none()


def revoke_token(raw: str) -> bool:
    """Revoke the token; return False if it was unknown or already revoked."""
    token = db.session.execute(
        sa.select(ApiToken).where(ApiToken.token_hash == _digest(raw))
    ).scalar_one_or_none()
    if token is None or token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    audit.record(token.user, "token.revoke", "api_token", token.id)
    return True


def load_session_user(session_id: str) -> User | None:
    """Return the user for a Flask-Login id ``"<id>:<session_version>"`` if still valid."""
    try:
        user_id_s, version_s = session_id.split(":", 1)
        user_id, version = int(user_id_s), int(version_s)
    except (ValueError, AttributeError):
        return None
    user = db.session.get(User, user_id)
    if user is None or not user.is_active or user.session_version != version:
        return None
    return user


def end_sessions(user: User) -> None:
    """Invalidate every page session of ``user`` (logout everywhere)."""
    user.session_version += 1
    audit.record(user, "session.end", "user", user.id)
