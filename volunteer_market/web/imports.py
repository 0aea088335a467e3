"""Bulk import pages: upload (with a dry run), a job's progress and summary, templates."""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from marshmallow import ValidationError

from ..database import atomic
from ..extensions import db
from ..http.imports import launch
from ..models import Area, AreaKind, ImportKind, ImportStatus, Role
from ..schemas.imports import ImportIn, TemplateQuery
from ..services import imports, permissions
from ..services import users as user_service
from ..services.errors import DomainError
from .forms import domain_errors, form_data, form_errors
from .messages import message_text

bp = Blueprint("web_imports", __name__, url_prefix="/imports")

#: Row errors shown on the page (the API returns every kept one).
SHOWN_ERRORS = 200


#: The columns a row error names, as the template's headers call them.
COLUMN_LABELS = {
    "display_name": _l("姓名"),
    "phone": _l("手机号"),
    "grid": _l("网格"),
    "address": _l("住址"),
    "household_tags": _l("家庭标签"),
    "home_unit": _l("工作单位"),
}


def column_label(name: str) -> str:
    """Return the header name of a column (the name itself if unknown)."""
    return str(COLUMN_LABELS.get(name, name))


def _communities() -> list[Area]:
    """The communities I may import into: all for an admin, a secretary's own."""
    if permissions.is_admin(current_user):
        areas = user_service.grantable_areas(current_user)
        return [a for a in areas if a.kind == AreaKind.COMMUNITY]
    return user_service.communities_where(current_user, [Role.SECRETARY])


@bp.route("", methods=["GET", "POST"])
@login_required
def upload() -> ResponseReturnValue:
    """Show the upload form; on POST check the file (dry run) or start the import."""
    if not permissions.may(current_user, "import.start"):
        abort(403)
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        fields = form_data(request.form, ["kind", "community_id", "dry_run"])
        fields["dry_run"] = "dry_run" in request.form
        upload_file = request.files.get("file")
        try:
            data = ImportIn().load(fields)
            if upload_file is None or not upload_file.filename:
                raise ValidationError({"file": ["Upload a CSV or XLSX file."]})
            community = db.session.get(Area, data["community_id"])
            if community is None:
                raise ValidationError({"community_id": ["Unknown community."]})
            if not permissions.may(current_user, "import.create", community):
                abort(403)
            with atomic():
                job = imports.start(
                    current_user,
                    kind=data["kind"],
                    community=community,
                    data=upload_file.read(),
                    filename=upload_file.filename,
                    dry_run=data["dry_run"],
                )
        except ValidationError as exc:
            errors, status = form_errors(exc), 422
        except DomainError as exc:
            errors, status = domain_errors(exc), exc.status
        else:
            if not job.dry_run:
                launch(job.id)
            return redirect(url_for("web_imports.job", job_id=job.id))
    return render_template(
        "imports/upload.html",
        communities=_communities(),
        kinds=list(ImportKind),
        errors=errors,
        form=request.form,
    ), status


@bp.route("/<int:job_id>")
@login_required
def job(job_id: int) -> ResponseReturnValue:
    """Show a job: progress while it runs (the page reloads itself), then its summary."""
    found = imports.get_job(current_user, job_id)
    row_errors = [{**e, "message": message_text(e["message"])} for e in found.errors[:SHOWN_ERRORS]]
    running = found.status in (ImportStatus.PENDING, ImportStatus.RUNNING)
    community = db.session.get(Area, found.community_id)
    return render_template(
        "imports/job.html",
        job=found,
        community=community,
        row_errors=row_errors,
        column_label=column_label,
        running=running,
        percent=int(100 * found.done / found.total) if found.total else 100,
    )


@bp.route("/template")
@login_required
def template() -> ResponseReturnValue:
    """Download the template with the Chinese column headers."""
    if not permissions.may(current_user, "import.start"):
        abort(403)
    try:
        args = TemplateQuery().load(request.args.to_dict())
    except ValidationError:
        abort(404)
    content, mimetype, filename = imports.template(args["kind"], args["format"])
    response = Response(content, mimetype=mimetype)
    response.headers.set("Content-Disposition", "attachment", filename=filename)
    return response
