"""POST /api/v1/imports, GET /api/v1/imports/{id}, GET /api/v1/imports/template."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from marshmallow import ValidationError

from ..database import atomic
from ..http.imports import launch
from ..models import Area, ImportJob
from ..schemas.imports import ImportIn, ImportOut, TemplateQuery
from ..services import areas as area_service
from ..services import imports, permissions
from ..services.errors import NotFound, ValidationFailed
from .common import actor, make_blueprint

blp = make_blueprint("api_imports", "/imports", "Bulk import of residents and members")

UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "kind", "community_id"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "CSV (UTF-8, UTF-8 with BOM, GB18030) or XLSX.",
                        },
                        "kind": {"type": "string", "enum": ["residents", "members"]},
                        "community_id": {"type": "integer", "minimum": 1},
                        "dry_run": {"type": "boolean", "default": False},
                    },
                }
            }
        },
    }
}


def _community(community_id: int) -> Area:
    try:
        return area_service.get_area(community_id)
    except NotFound:
        raise ValidationFailed(
            "Unknown community.", errors={"community_id": ["Unknown community."]}
        ) from None


@blp.route("", methods=["POST"])
@blp.response(202, ImportOut)
@blp.doc(**UPLOAD_DOC)
def create_import(**_kw: Any) -> ImportJob:
    """Upload a file of residents or members: a dry run answers with every row error; a
    real run answers at once and writes in the background (poll the job)."""
    try:
        data = ImportIn().load(request.form.to_dict())
    except ValidationError as exc:
        raise ValidationFailed("Invalid input.", errors=exc.messages_dict) from None
    upload = request.files.get("file")
    if upload is None:
        raise ValidationFailed(
            "Upload a CSV or XLSX file.", errors={"file": ["Upload a CSV or XLSX file."]}
        )
    community = _community(data["community_id"])
    permissions.require(actor(), "import.create", community)
    with atomic():
        job = imports.start(
            actor(),
            kind=data["kind"],
            community=community,
            data=upload.read(),
            filename=upload.filename or "upload",
            dry_run=data["dry_run"],
        )
    if not job.dry_run:
        launch(job.id)
    return imports.get_job(actor(), job.id)


@blp.route("/<int:job_id>", methods=["GET"])
@blp.response(200, ImportOut)
def get_import(job_id: int) -> ImportJob:
    """Return the progress and summary of an import (only to the one who started it)."""
    return imports.get_job(actor(), job_id)


TEMPLATE_DOC: dict[str, Any] = {
    "responses": {
        "200": {
            "description": "The template: Chinese headers and an example row.",
            "content": {
                t: {"schema": {"type": "string", "format": "binary"}}
                for t in (imports.XLSX_MIME, "text/csv")
            },
        }
    }
}


@blp.route("/template", methods=["GET"])
@blp.arguments(TemplateQuery, location="query")
@blp.doc(**TEMPLATE_DOC)
def get_template(args: dict) -> Response:
    """Download the template with the Chinese column headers (XLSX or CSV)."""
    permissions.require(actor(), "import.start")
    content, mimetype, filename = imports.template(args["kind"], args["format"])
    response = Response(content, mimetype=mimetype)
    response.headers.set("Content-Disposition", "attachment", filename=filename)
    return response
