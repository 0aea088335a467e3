"""``import residents|members FILE --community ID`` and ``import run-pending``."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from ..database import atomic
from ..extensions import db
from ..http.imports import run_job, run_pending
from ..models import Area, ImportKind
from ..services import imports
from ..services.context import set_origin
from ..services.errors import DomainError


@click.group("import")
def import_group() -> None:
    """Bulk import of residents and members (CSV or XLSX), and the background runner."""


def _run_file(kind: ImportKind, file: Path, community_id: int, dry_run: bool) -> None:
    set_origin("cli")
    community = db.session.get(Area, community_id)
    if community is None:
        raise click.ClickException(f"No area {community_id}.")
    try:
        with atomic():
            job = imports.start(
                None,
                kind=kind,
                community=community,
                data=file.read_bytes(),
                filename=file.name,
                dry_run=dry_run,
            )
            job_id, total = job.id, job.total
    except DomainError as exc:
        details = "; ".join(m for ms in (exc.errors or {}).values() for m in ms)
        raise click.ClickException(details or exc.detail) from None
    if not dry_run:
        with click.progressbar(length=total, label=f"Import {job_id}") as bar:
            seen = 0

            def progress(done: int, _total: int) -> None:
                nonlocal seen
                bar.update(done - seen)
                seen = done

            run_job(job_id, progress)
    db.session.expire_all()
    job = imports.get_job(None, job_id)
    for error in job.errors:
        click.echo(f"row {error['row']} {error['field']}: {error['message']}", err=True)
    verb = "would create" if dry_run else "created"
    click.echo(
        f"Import {job.id} ({job.status.value}): {job.total} rows, {verb} {job.created}, "
        f"updated {job.updated}, unchanged {job.unchanged}, refused {job.refused}."
    )


_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@import_group.command("residents")
@click.argument("file", type=_FILE)
@click.option("--community", "community_id", type=int, required=True, help="Community id.")
@click.option("--dry-run", is_flag=True, help="Check every row; write nothing.")
@with_appcontext
def import_residents(file: Path, community_id: int, dry_run: bool) -> None:
    """Import residents (姓名, 手机号, 网格, 住址, 家庭标签) into a community."""
    _run_file(ImportKind.RESIDENTS, file, community_id, dry_run)


@import_group.command("members")
@click.argument("file", type=_FILE)
@click.option("--community", "community_id", type=int, required=True, help="Community id.")
@click.option("--dry-run", is_flag=True, help="Check every row; write nothing.")
@with_appcontext
def import_members(file: Path, community_id: int, dry_run: bool) -> None:
    """Import members (姓名, 手机号, 网格, 工作单位) into a community."""
    _run_file(ImportKind.MEMBERS, file, community_id, dry_run)


@import_group.command("run-pending")
@with_appcontext
def import_run_pending() -> None:
    """Finish pending imports and those whose runner stopped (cron, or after a restart)."""
    set_origin("cli")
    ran = run_pending()
    click.echo(f"Ran {len(ran)} import job(s).")
