"""Models, one module per aggregate. Importing this package registers every table."""

from .areas import CHILD_KIND, Area, AreaKind
from .audit import AuditEntry, Notification
from .types import UTCDateTime, utcnow
from .users import ApiToken, Role, RoleGrant, User

__all__ = [
    "CHILD_KIND",
    "ApiToken",
    "Area",
    "AreaKind",
    "AuditEntry",
    "Notification",
    "Role",
    "RoleGrant",
    "UTCDateTime",
    "User",
    "utcnow",
]
