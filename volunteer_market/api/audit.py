"""/api/v1/audit: the audit log, as far as the caller may read it (the community's
secretary: its entries; an officer: his subtree's; the admin: all)."""

from __future__ import annotations

from typing import Any

from ..schemas.audit import AuditEntryOut, AuditQuery
from ..schemas.common import page_of
from ..services import audit_log
from .common import actor, make_blueprint, paginate

blp = make_blueprint("api_audit", "/audit", "Audit log")


@blp.route("", methods=["GET"])
@blp.arguments(AuditQuery, location="query")
@blp.response(200, page_of(AuditEntryOut))
def list_entries(args: dict) -> dict[str, Any]:
    """Audit entries newest first, filtered by ``area_id`` (and its subtree),
    ``object_type``, ``object_id``, ``actor_id``, ``since`` and ``until`` (dates,
    inclusive). Personal data and staff's free text in ``detail`` are ``***`` to a
    reader who may not see them. An area outside the caller's scope is 404."""
    reader = actor()
    page, per_page = args.pop("page"), args.pop("per_page")
    stmt = audit_log.entries(reader, audit_log.AuditFilters(**args))
    result = paginate(stmt, page, per_page, scalars=False)
    result["items"] = audit_log.present(reader, result["items"])
    return result
