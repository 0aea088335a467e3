"""Users, their role grants on areas, and API tokens."""

from __future__ import annotations

import enum
import re
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .areas import Area
from .types import UTCDateTime, str_enum, utcnow

#: A mainland mobile number as stored: 11 digits starting 1[3-9] (what login by phone
#: and the bulk import match on). :func:`normalize_phone` turns typed or spreadsheet
#: forms (spaces, dashes, a +86 / 0086 prefix, a trailing ".0") into it.
PHONE_RE = re.compile(r"^1[3-9][0-9]{9}$")
_PHONE_NOISE = re.compile(r"[\s\-()（）]")

#: The household tags a secretary may record (DESIGN.md "Privacy": personal data).
HOUSEHOLD_TAGS: tuple[str, ...] = (
    "空巢",
    "独居",
    "残疾",
    "困难",
    "短租",
    "高龄",
    "低保",
    "留守",
    "优抚",
    "孤寡",
)

#: A password hash no password matches (imported people until someone sets one).
UNUSABLE_PASSWORD = "!"  # noqa: S105  (a marker, not a password)


def normalize_phone(value: str) -> str | None:
    """Return ``value`` as an 11-digit mainland mobile number, or None if it is not one."""
    text = _PHONE_NOISE.sub("", value.strip())
    if text.endswith(".0"):  # a number cell read from a spreadsheet as a float
        text = text[:-2]
    for prefix in ("+86", "0086"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    if len(text) == 13 and text.startswith("86"):
        text = text[2:]
    return text if PHONE_RE.match(text) else None


class Role(enum.StrEnum):
    MEMBER = "member"  # 下沉党员
    RESIDENT = "resident"  # 居民
    GRID_WORKER = "grid_worker"  # 网格员
    SECRETARY = "secretary"  # 社区书记
    OFFICER = "officer"  # 街道/区 管理员
    ADMIN = "admin"  # 系统管理员


class User(Model):
    __tablename__ = "users"
    __table_args__ = (
        # Login by phone number: one account per number (NULLs do not collide).
        sa.Index("uq_users_phone", "phone", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    display_name: Mapped[str] = mapped_column(sa.String(100))
    #: Personal data (DESIGN.md "Privacy"): shown unmasked only where the policy allows.
    phone: Mapped[str | None] = mapped_column(sa.String(32))
    address: Mapped[str | None] = mapped_column(sa.String(255))
    #: Comma-separated household tags such as 空巢,独居,残疾 (personal data).
    household_tags: Mapped[str | None] = mapped_column(sa.String(255))
    #: 工作单位, used by the annual evaluation.
    home_unit: Mapped[str | None] = mapped_column(sa.String(255))
    locale: Mapped[str | None] = mapped_column(sa.String(10))
    #: Large-text mode (适老化): larger type and higher contrast on every page.
    large_text: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    is_active: Mapped[bool] = mapped_column(default=True)
    #: Bumped on logout and password change: every older session cookie stops working.
    session_version: Mapped[int] = mapped_column(default=1)
    #: Set when a secretary resets the password: the next sign-in must change it.
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    grants: Mapped[list[RoleGrant]] = relationship(
        back_populates="user",
        primaryjoin="and_(User.id == RoleGrant.user_id, RoleGrant.revoked_at.is_(None))",
        viewonly=True,
        lazy="selectin",
        foreign_keys="RoleGrant.user_id",
    )

    # Flask-Login protocol ---------------------------------------------------
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        """Return the session identity: id plus session version, so logout kills copies."""
        return f"{self.id}:{self.session_version}"

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username}>"


class RoleGrant(Model):
    """A role held on an area (covering its subtree); admin grants are global."""

    __tablename__ = "role_grants"
    __table_args__ = (
        sa.CheckConstraint(
            "(role = 'admin' AND area_id IS NULL) OR (role <> 'admin' AND area_id IS NOT NULL)",
            name="admin_is_global",
        ),
        sa.Index(
            "uq_role_grants_active",
            "user_id",
            "role",
            "area_id",
            unique=True,
            sqlite_where=sa.text("revoked_at IS NULL"),
            postgresql_where=sa.text("revoked_at IS NULL"),
        ),
        sa.Index("ix_role_grants_area_role", "area_id", "role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    role: Mapped[Role] = mapped_column(str_enum(Role, "role"))
    area_id: Mapped[int | None] = mapped_column(sa.ForeignKey("areas.id"))
    granted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    user: Mapped[User] = relationship(
        foreign_keys=[user_id], back_populates="grants", lazy="raise_on_sql"
    )
    area: Mapped[Area | None] = relationship(lazy="joined")


class ApiToken(Model):
    """A bearer token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(lazy="joined")
