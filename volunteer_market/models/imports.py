"""Bulk imports of residents and members (a job row per uploaded file)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model
from .types import UTCDateTime, str_enum, utcnow

#: At most this many data rows per file (a community of 8,000 residents fits).
MAX_IMPORT_ROWS = 20_000
#: At most this many row errors are kept on a job (the count of refused rows is exact).
MAX_IMPORT_ERRORS = 2_000


class ImportKind(enum.StrEnum):
    RESIDENTS = "residents"  # 居民
    MEMBERS = "members"  # 下沉党员


class ImportStatus(enum.StrEnum):
    PENDING = "pending"  # stored, waiting for a runner
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ImportJob(Model):
    """One uploaded file: its validation result and, for a real run, its progress.

    ``rows`` holds the rows still to write (personal data: cleared when the job ends);
    ``errors`` the refused rows as ``{row, field, message}`` (never a row's values).
    """

    __tablename__ = "import_jobs"
    __table_args__ = (
        sa.CheckConstraint("done >= 0 AND done <= total", name="done_within_total"),
        sa.CheckConstraint(
            "created >= 0 AND updated >= 0 AND unchanged >= 0 AND refused >= 0 AND written >= 0",
            name="counts_not_negative",
        ),
        sa.Index("ix_import_jobs_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ImportKind] = mapped_column(str_enum(ImportKind, "import_kind"))
    community_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id"), index=True)
    #: None for a job started from the command line.
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), index=True)
    dry_run: Mapped[bool] = mapped_column(default=False)
    status: Mapped[ImportStatus] = mapped_column(str_enum(ImportStatus, "import_status"))
    filename: Mapped[str] = mapped_column(sa.String(255))
    #: Data rows in the file; ``done`` of them are processed (written or refused).
    total: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    created: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    refused: Mapped[int] = mapped_column(default=0)
    #: How many of ``rows`` are written (the runner resumes here).
    written: Mapped[int] = mapped_column(default=0)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    rows: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Set by the runner at the start and after every chunk: a running job whose
    #: heartbeat is old lost its runner (``flask import run-pending`` takes it over).
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
