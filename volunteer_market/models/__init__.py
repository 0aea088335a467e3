"""Models, one module per aggregate. Importing this package registers every table."""

from .appeals import APPEAL_TEXT_MAX, Appeal, AppealStatus
from .areas import CHILD_KIND, Area, AreaKind
from .audit import AuditEntry, Notification
from .deliveries import (  # noqa: E402
    MAX_PARTICIPANT_MINUTES,
    Delivery,
    DeliveryBeneficiary,
    DeliveryNoShow,
    DeliveryParticipant,
    DeliveryStatus,
)
from .evaluations import (  # noqa: E402  (annual evaluation)
    AnnualProject,
    AnnualStat,
    Evaluation,
    EvaluationRow,
    EvaluationStatus,
    Objection,
    ObjectionStatus,
    ServiceCertificate,
)
from .idempotency import IdempotencyKey  # noqa: E402
from .imports import MAX_IMPORT_ERRORS, MAX_IMPORT_ROWS, ImportJob, ImportKind, ImportStatus
from .ledger import (  # noqa: E402
    GENESIS_HASH,
    MEMBER_KINDS,
    AccountKind,
    LedgerAccount,
    LedgerEntry,
    LedgerHead,
    LedgerTransaction,
    TransactionKind,
    ledger_trigger_ddl,
    ledger_trigger_drop_ddl,
)
from .moderation import (  # noqa: E402  (comment reports, call-backs)
    MODERATION_TEXT_MAX,
    CallbackOutcome,
    CommentReport,
    RatingCallback,
    ReportStatus,
)
from .needs import Need, NeedStatus  # noqa: E402
from .outbox import (  # noqa: E402  (notifications outside the app)
    MAX_EMAIL,
    MAX_WEBHOOK_URL,
    PERSON_CHANNELS,
    Channel,
    CommunityWebhook,
    NotificationPreference,
    OutboxMessage,
    OutboxStatus,
)
from .points_policy import ExpiryRule, PointsPolicy  # noqa: E402  (ledger)
from .projects import (  # noqa: E402  (projects, teams, needs, deliveries)
    MAX_CAPACITY,
    Category,
    Project,
    ProjectAction,
    ProjectMode,
    ProjectStatus,
    ProjectTransition,
    TeamMembership,
    TeamStatus,
)
from .rankings import (  # noqa: E402  (rankings)
    Exposure,
    RankingMember,
    RankingScoreCount,
    RankingSettings,
    RankingTeam,
)
from .ratings import Rating, RatingReply, Settlement, SettlementPosting  # noqa: E402
from .registrations import MAX_REJECT_REASON, Registration, RegistrationStatus
from .rewards import (  # noqa: E402  (rewards and redemption)
    COUNTED_STATUSES,
    LimitPeriod,
    Redemption,
    RedemptionStatus,
    Reward,
    StockChange,
    StockChangeKind,
)
from .sessions import (  # noqa: E402  (sessions and attendance)
    MAX_SLOTS,
    PLACE_MAX,
    CalendarFeed,
    ProjectSession,
    SessionAttendance,
    SessionSignup,
    SessionStatus,
    SignupStatus,
)
from .types import UTCDateTime, utcnow
from .users import ApiToken, Role, RoleGrant, User

__all__ = [
    "MODERATION_TEXT_MAX",
    "CallbackOutcome",
    "CommentReport",
    "RatingCallback",
    "ReportStatus",
    "MAX_REJECT_REASON",
    "Registration",
    "RegistrationStatus",
    "MAX_IMPORT_ERRORS",
    "MAX_IMPORT_ROWS",
    "ImportJob",
    "ImportKind",
    "ImportStatus",
    "AnnualProject",
    "AnnualStat",
    "Evaluation",
    "EvaluationRow",
    "EvaluationStatus",
    "Objection",
    "ObjectionStatus",
    "ServiceCertificate",
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
    # projects, teams, needs, deliveries
    "MAX_CAPACITY",
    "MAX_PARTICIPANT_MINUTES",
    "Category",
    "Delivery",
    "DeliveryBeneficiary",
    "DeliveryNoShow",
    "DeliveryParticipant",
    "DeliveryStatus",
    "Need",
    "NeedStatus",
    "Project",
    "ProjectAction",
    "ProjectMode",
    "ProjectStatus",
    "ProjectTransition",
    "TeamMembership",
    "TeamStatus",
    # ledger
    "GENESIS_HASH",
    "MEMBER_KINDS",
    "AccountKind",
    "ExpiryRule",
    "IdempotencyKey",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerHead",
    "LedgerTransaction",
    "PointsPolicy",
    "TransactionKind",
    "ledger_trigger_ddl",
    "ledger_trigger_drop_ddl",
    # ratings and settlement
    "Rating",
    "RatingReply",
    "Settlement",
    "SettlementPosting",
    # rewards and redemption
    "COUNTED_STATUSES",
    "LimitPeriod",
    "Redemption",
    "RedemptionStatus",
    "Reward",
    "StockChange",
    "StockChangeKind",
    # appeals
    "APPEAL_TEXT_MAX",
    "Appeal",
    "AppealStatus",
    # sessions and attendance
    "MAX_SLOTS",
    "PLACE_MAX",
    "CalendarFeed",
    "ProjectSession",
    "SessionAttendance",
    "SessionSignup",
    "SessionStatus",
    "SignupStatus",
    # rankings
    "Exposure",
    "RankingMember",
    "RankingScoreCount",
    "RankingSettings",
    "RankingTeam",
    # notifications outside the app
    "MAX_EMAIL",
    "MAX_WEBHOOK_URL",
    "PERSON_CHANNELS",
    "Channel",
    "CommunityWebhook",
    "NotificationPreference",
    "OutboxMessage",
    "OutboxStatus",
]
