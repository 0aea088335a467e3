"""Starting an import (check every row, store the job) and writing it chunk by chunk.

The edge (``http/imports.py``) commits each chunk in its own transaction so the
progress (``done`` of ``total``) is visible while the job runs, and a job that lost its
runner resumes exactly where it stopped: ``written`` (the rows written) advances in the
same transaction as the rows themselves.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa

from ...extensions import db
from ...models import (
    MAX_IMPORT_ERRORS,
    Area,
    AreaKind,
    ImportJob,
    ImportKind,
    ImportStatus,
    RoleGrant,
    User,
    utcnow,
)
from ...models.users import UNUSABLE_PASSWORD
from .. import audit, permissions
from ..errors import NotFound, ValidationFailed
from .checking import check_rows, existing_by_phone, held_roles, may_update, role_of
from .files import read_sheet

#: Rows written per transaction.
CHUNK = 500
#: A running job without a heartbeat for this long lost its runner.
STALE_AFTER = timedelta(minutes=5)


def get_job(actor: User | None, job_id: int) -> ImportJob:
    """Return the job if ``actor`` started it (``None`` = the command line: any).

    :raises NotFound: no such job, or one the actor did not start.
    """
    job = db.session.get(ImportJob, job_id)
    if job is None or (actor is not None and not permissions.may(actor, "import.view", job)):
        raise NotFound("Import not found.")
    return job


def start(
    actor: User | None,
    *,
    kind: ImportKind,
    community: Area,
    data: bytes,
    filename: str,
    dry_run: bool,
) -> ImportJob:
    """Check every row of the file and store the job: a dry run is finished at once
    (with the counts it would have), a real run waits for a runner (``pending``).

    :raises Forbidden: unless an admin or the secretary of ``community`` (``None`` = CLI).
    :raises ValidationFailed: not a community; the file is unreadable or has no rows.
    """
    if community.kind != AreaKind.COMMUNITY:
        raise ValidationFailed("Not a community.", errors={"community_id": ["Not a community."]})
    if actor is not None:
        permissions.require(actor, "import.create", community)
    sheet = read_sheet(data, filename)
    checked = check_rows(kind, community, sheet.rows)
    job = ImportJob(
        kind=kind,
        community_id=community.id,
        created_by_id=actor.id if actor is not None else None,
        dry_run=dry_run,
        status=ImportStatus.PENDING,
        filename=(filename or "upload")[:255],
        total=len(sheet.rows),
        done=checked.refused,
        refused=checked.refused,
        errors=checked.errors[:MAX_IMPORT_ERRORS],
        written=0,
    )
    if dry_run:
        existing = existing_by_phone([r["phone"] for r in checked.rows])
        job.updated = sum(1 for r in checked.rows if r["phone"] in existing)
        job.created = len(checked.rows) - job.updated
        job.done = job.total
        job.status = ImportStatus.DONE
        job.finished_at = utcnow()
    else:
        job.rows = checked.rows
    db.session.add(job)
    db.session.flush()
    audit.record(
        actor,
        "import.start",
        "import_job",
        job.id,
        area_id=community.id,
        detail={"kind": kind.value, "dry_run": dry_run, "total": job.total},
    )
    return job


def claim(job_id: int, now: datetime | None = None) -> bool:
    """Mark a pending job (or a running one whose runner died) as running by this
    runner; False if another runner has it or it has ended (a conditional UPDATE)."""
    now = now or utcnow()
    result = db.session.execute(
        sa.update(ImportJob)
        .where(
            ImportJob.id == job_id,
            sa.or_(
                ImportJob.status == ImportStatus.PENDING,
                sa.and_(
                    ImportJob.status == ImportStatus.RUNNING,
                    ImportJob.heartbeat_at < now - STALE_AFTER,
                ),
            ),
        )
        .values(status=ImportStatus.RUNNING, heartbeat_at=now)
        .execution_options(synchronize_session=False)
    )
    return cast("sa.CursorResult[Any]", result).rowcount == 1


def claimable(now: datetime | None = None) -> list[int]:
    """Return the ids of pending jobs and of running jobs that lost their runner."""
    now = now or utcnow()
    return list(
        db.session.scalars(
            sa.select(ImportJob.id)
            .where(
                sa.or_(
                    ImportJob.status == ImportStatus.PENDING,
                    sa.and_(
                        ImportJob.status == ImportStatus.RUNNING,
                        ImportJob.heartbeat_at < now - STALE_AFTER,
                    ),
                )
            )
            .order_by(ImportJob.id)
        )
    )


def _lock(job_id: int) -> ImportJob:
    job = db.session.execute(
        sa.select(ImportJob).where(ImportJob.id == job_id).with_for_update()
    ).scalar_one()
    db.session.refresh(job)
    return job


def _usernames_taken(names: list[str]) -> set[str]:
    if not names:
        return set()
    return set(
        db.session.scalars(
            sa.select(sa.func.lower(User.username)).where(
                sa.func.lower(User.username).in_([n.lower() for n in names])
            )
        )
    )


def _update(user: User, values: dict[str, Any]) -> bool:
    changed = False
    for column in ("display_name", "address", "household_tags", "home_unit"):
        if (
            column in values
            and values[column] is not None
            and getattr(user, column) != values[column]
        ):
            setattr(user, column, values[column])
            changed = True
    return changed


def write_chunk(job_id: int, size: int = CHUNK) -> bool:
    """Write the next ``size`` rows of a running job; return True while rows remain.

    Each row's phone number is looked up again (someone may have been added since the
    check): an existing person of the community is updated (a role granted if they lack
    it), a number that now belongs to someone else's person is refused, a new number
    creates a person without a password (a secretary sets one, or they rate by slip).
    """
    job = _lock(job_id)
    if job.status != ImportStatus.RUNNING:
        return False
    rows = job.rows or []
    part = rows[job.written : job.written + size]
    community = db.session.get(Area, job.community_id)
    assert community is not None
    actor = db.session.get(User, job.created_by_id) if job.created_by_id else None
    role = role_of(job.kind)
    existing = existing_by_phone([r["phone"] for r in part])
    held = held_roles([u.id for u in existing.values()], role, community)
    new_rows = [r for r in part if r["phone"] not in existing]
    taken = _usernames_taken([r["phone"] for r in new_rows])
    errors: list[dict[str, Any]] = []
    grants: list[RoleGrant] = []
    created: list[tuple[User, dict[str, Any]]] = []
    for values in part:
        user = existing.get(values["phone"])
        if user is None:
            username = values["phone"] if values["phone"] not in taken else "u" + values["phone"]
            user = User(
                username=username,
                password_hash=UNUSABLE_PASSWORD,
                display_name=values["display_name"],
                phone=values["phone"],
                address=values.get("address"),
                household_tags=values.get("household_tags"),
                home_unit=values.get("home_unit"),
                created_by_id=job.created_by_id,
            )
            created.append((user, values))
            continue
        reason = may_update(user, community)
        if reason is not None:
            errors.append({"row": values["row"], "field": "phone", "message": reason})
            continue
        changed = _update(user, values)
        if user.id not in held:
            grants.append(
                RoleGrant(
                    user_id=user.id,
                    role=role,
                    area_id=values["area_id"],
                    granted_by_id=job.created_by_id,
                )
            )
            changed = True
        if changed:
            job.updated += 1
            audit.record(
                actor,
                "user.import_update",
                "user",
                user.id,
                area_id=community.id,
                detail={"import_job_id": job.id},
            )
        else:
            job.unchanged += 1
    db.session.add_all([u for u, _v in created])
    db.session.flush()
    for user, values in created:
        grants.append(
            RoleGrant(
                user_id=user.id,
                role=role,
                area_id=values["area_id"],
                granted_by_id=job.created_by_id,
            )
        )
        audit.record(
            actor,
            "user.import_create",
            "user",
            user.id,
            area_id=community.id,
            detail={"import_job_id": job.id},
        )
    db.session.add_all(grants)
    job.created += len(created)
    job.refused += len(errors)
    if errors:
        room = MAX_IMPORT_ERRORS - len(job.errors)
        job.errors = [*job.errors, *errors[: max(room, 0)]]
    job.written += len(part)
    job.done += len(part)
    job.heartbeat_at = utcnow()
    more = job.written < len(rows)
    if not more:
        _finish(job, actor)
    db.session.flush()
    return more


def _finish(job: ImportJob, actor: User | None) -> None:
    job.status = ImportStatus.DONE
    job.rows = None  # personal data: kept only while needed
    job.finished_at = utcnow()
    audit.record(
        actor,
        "import.finish",
        "import_job",
        job.id,
        area_id=job.community_id,
        detail={"created": job.created, "updated": job.updated, "refused": job.refused},
    )
    if job.created_by_id is not None:
        audit.notify(
            job.created_by_id,
            "import.finished",
            object_type="import_job",
            object_id=job.id,
            params={"created": job.created, "updated": job.updated, "refused": job.refused},
        )


def fail(job_id: int) -> None:
    """Mark a job failed (its runner hit an unexpected error); the rows are dropped."""
    job = _lock(job_id)
    if job.status in (ImportStatus.DONE, ImportStatus.FAILED):
        return
    job.status = ImportStatus.FAILED
    job.rows = None
    job.finished_at = utcnow()
    audit.record(None, "import.fail", "import_job", job.id, area_id=job.community_id)
