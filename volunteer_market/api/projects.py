"""/api/v1/projects: propose, edit, review, teams, menu orders, covers, duplicate hints."""

from __future__ import annotations

from typing import Any

from flask import request

from ..database import atomic
from ..extensions import db
from ..http.uploads import read_upload, send_upload, upload_transaction
from ..models import Area, Project, ProjectAction, TeamStatus, User
from ..schemas.common import page_of
from ..schemas.deliveries import DeliveryOut, DeliveryQuery
from ..schemas.needs import NeedOut, OrderIn
from ..schemas.projects import (
    CommentIn,
    ProjectIn,
    ProjectOut,
    ProjectPatchIn,
    ProjectQuery,
    ReviewIn,
    SimilarListOut,
    SimilarQuery,
    TeamMemberOut,
    TeamOut,
    TransitionListOut,
)
from ..services import deliveries as delivery_service
from ..services import needs as need_service
from ..services import permissions
from ..services import projects as project_service
from ..services.errors import NotFound, ValidationFailed
from .common import IMAGE_RESPONSE_DOC, IMAGE_UPLOAD_DOC, actor, make_blueprint, paginate

blp = make_blueprint("api_projects", "/projects", "Micro-projects, teams and menu orders")


@blp.route("", methods=["POST"])
@blp.arguments(ProjectIn)
@blp.response(201, ProjectOut)
def create_project(data: dict) -> Project:
    """Propose a project (``draft``) in a community where the caller is a member."""
    with atomic():
        return project_service.create_project(actor(), **data)


@blp.route("", methods=["GET"])
@blp.arguments(ProjectQuery, location="query")
@blp.response(200, page_of(ProjectOut))
def list_projects(args: dict) -> dict:
    """List the projects the caller may see (filters: community_id, status, category, mode,
    q = text in title/description, mine = owned or on the team)."""
    me = actor()
    stmt = project_service.list_projects(
        me,
        community_id=args.get("community_id"),
        status=args.get("status"),
        category=args.get("category"),
        mode=args.get("mode"),
        q=args.get("q"),
        member_id=me.id if args.get("mine") else None,
    )
    return paginate(stmt, args["page"], args["per_page"])


@blp.route("/similar", methods=["GET"])
@blp.arguments(SimilarQuery, location="query")
@blp.response(200, SimilarListOut)
def similar(args: dict) -> dict:
    """Submitted/approved projects of the community with a title like ``title`` (duplicate hint)."""
    community = db.session.get(Area, args["community_id"])
    if community is None:
        raise ValidationFailed("Unknown community.", errors={"community_id": ["Unknown area."]})
    hits = project_service.similar_projects(
        actor(), community, args["title"], exclude_id=args.get("exclude_id")
    )
    return {
        "items": [
            {"id": p.id, "title": p.title, "status": p.status.value, "score": score}
            for p, score in hits
        ]
    }


@blp.route("/<int:project_id>", methods=["GET"])
@blp.response(200, ProjectOut)
def get_project(project_id: int) -> Project:
    """Return one project (404 if the caller may not see it)."""
    return project_service.get_visible_project(actor(), project_id)


@blp.route("/<int:project_id>", methods=["PATCH"])
@blp.arguments(ProjectPatchIn)
@blp.response(200, ProjectOut)
def update_project(data: dict, project_id: int) -> Project:
    """Edit a project (owner; in ``draft`` or ``changes_requested``)."""
    with atomic():
        project = project_service.get_visible_project(actor(), project_id)
        return project_service.update_project(actor(), project, data)


def _step(project_id: int, action: ProjectAction, comment: str | None = None) -> Project:
    with atomic():
        project = project_service.get_visible_project(actor(), project_id)
        project_service.transition(actor(), project, action, comment)
    return project


@blp.route("/<int:project_id>/submit", methods=["POST"])
@blp.response(200, ProjectOut)
def submit(project_id: int) -> Project:
    """Submit for review (owner): ``draft``/``changes_requested`` → ``submitted``."""
    return _step(project_id, ProjectAction.SUBMIT)


@blp.route("/<int:project_id>/withdraw", methods=["POST"])
@blp.response(200, ProjectOut)
def withdraw(project_id: int) -> Project:
    """Take a submission back (owner): ``submitted`` → ``draft``."""
    return _step(project_id, ProjectAction.WITHDRAW)


@blp.route("/<int:project_id>/review", methods=["POST"])
@blp.arguments(ReviewIn)
@blp.response(200, ProjectOut)
def review(data: dict, project_id: int) -> Project:
    """Approve, reject or request changes (the community's secretary; comment required
    unless approving)."""
    with atomic():
        project = project_service.get_visible_project(actor(), project_id)
        project_service.review(actor(), project, data["decision"], data.get("comment"))
    return project


@blp.route("/<int:project_id>/cancel", methods=["POST"])
@blp.arguments(CommentIn, required=False)
@blp.response(200, ProjectOut)
def cancel(data: dict, project_id: int) -> Project:
    """Cancel (owner in draft/changes_requested; owner or secretary once approved)."""
    return _step(project_id, ProjectAction.CANCEL, data.get("comment"))


@blp.route("/<int:project_id>/complete", methods=["POST"])
@blp.arguments(CommentIn, required=False)
@blp.response(200, ProjectOut)
def complete(data: dict, project_id: int) -> Project:
    """Mark an approved project completed (owner or secretary)."""
    return _step(project_id, ProjectAction.COMPLETE, data.get("comment"))


@blp.route("/<int:project_id>/transitions", methods=["GET"])
@blp.response(200, TransitionListOut)
def transitions(project_id: int) -> dict:
    """The project's audited lifecycle history (who, when, why): its owner and the
    community's staff (as on the project page)."""
    project = project_service.get_visible_project(actor(), project_id)
    permissions.require(actor(), "project.history", project)
    return {"items": project_service.transitions_of(project)}


# --- cover image ----------------------------------------------------------------


@blp.route("/<int:project_id>/cover", methods=["PUT"])
@blp.response(200, ProjectOut)
@blp.doc(**IMAGE_UPLOAD_DOC)
def put_cover(project_id: int) -> Project:
    """Upload the cover image (multipart field ``file``; PNG/JPEG/WebP, at most 2 MB)."""
    data = read_upload(request.files.get("file"))
    with upload_transaction() as files, atomic():
        project = project_service.get_visible_project(actor(), project_id)
        project_service.check_editable(actor(), project)
        files.replace(project.cover_path)
        project_service.set_cover(actor(), project, files.store(data, "file"))
    return project


@blp.route("/<int:project_id>/cover", methods=["GET"])
@blp.doc(**IMAGE_RESPONSE_DOC)
def get_cover(project_id: int) -> Any:
    """The cover image of a project the caller may see."""
    project = project_service.get_visible_project(actor(), project_id)
    return send_upload(project.cover_path)


# --- team -----------------------------------------------------------------------


def team_entries(viewer: User, project: Project) -> list[dict[str, Any]]:
    """Return the owner and members; pending/declined requests only for owner and staff."""
    full = permissions.may(viewer, "team.manage", project) or permissions.may(
        viewer, "project.review", project
    )
    statuses = None if full else [TeamStatus.ACTIVE]
    entries = [
        {
            "user_id": project.owner_id,
            "display_name": project.owner.display_name,
            "status": "active",
            "role": "owner",
            "requested_at": None,
        }
    ]
    for m in project_service.team_of(project, statuses):
        entries.append(
            {
                "user_id": m.user_id,
                "display_name": m.user.display_name,
                "status": m.status.value,
                "role": "member",
                "requested_at": m.requested_at,
            }
        )
    return entries


@blp.route("/<int:project_id>/team", methods=["GET"])
@blp.response(200, TeamOut)
def get_team(project_id: int) -> dict:
    """The team: owner and active members (the owner also sees requests)."""
    project = project_service.get_visible_project(actor(), project_id)
    return {
        "capacity": project.capacity,
        "team_size": project.team_size,
        "items": team_entries(actor(), project),
    }


@blp.route("/<int:project_id>/team", methods=["POST"])
@blp.response(201, TeamMemberOut)
def join(project_id: int) -> dict:
    """Ask to join the team (member of the project's community) → ``pending``."""
    with atomic():
        project = project_service.get_visible_project(actor(), project_id)
        project_service.request_join(actor(), project)
    return {"user_id": actor().id, "status": TeamStatus.PENDING.value}


@blp.route("/<int:project_id>/team/leave", methods=["POST"])
@blp.response(200, TeamMemberOut)
def leave(project_id: int) -> dict:
    """Leave the team or withdraw a pending request → ``left``."""
    with atomic():
        project = project_service.get_visible_project(actor(), project_id)
        project_service.leave_team(actor(), project)
    return {"user_id": actor().id, "status": TeamStatus.LEFT.value}


@blp.route("/<int:project_id>/team/<int:user_id>/approve", methods=["POST"])
@blp.response(200, TeamMemberOut)
def approve_member(project_id: int, user_id: int) -> dict:
    """Accept a join request (owner); 409 when the team is full."""
    with atomic():
        project = project_service.get_visible_project(actor(), project_id)
        project_service.approve_member(actor(), project, user_id)
    return {"user_id": user_id, "status": TeamStatus.ACTIVE.value}


@blp.route("/<int:project_id>/team/<int:user_id>/decline", methods=["POST"])
@blp.response(200, TeamMemberOut)
def decline_member(project_id: int, user_id: int) -> dict:
    """Decline a join request (owner)."""
    with atomic():
        project = project_service.get_visible_project(actor(), project_id)
        project_service.decline_member(actor(), project, user_id)
    return {"user_id": user_id, "status": TeamStatus.DECLINED.value}


# --- menu orders and deliveries -------------------------------------------------


@blp.route("/<int:project_id>/orders", methods=["POST"])
@blp.arguments(OrderIn, required=False)
@blp.response(201, NeedOut)
def order(data: dict, project_id: int) -> Any:
    """Order a ``menu`` service (resident of its community) → a need bound to the project."""
    with atomic():
        project = project_service.get_visible_project(actor(), project_id)
        need = need_service.order_menu(actor(), project, description=data.get("description", ""))
        return need_service.get_need(need.id)


@blp.route("/<int:project_id>/deliveries", methods=["GET"])
@blp.arguments(DeliveryQuery, location="query")
@blp.response(200, page_of(DeliveryOut))
def project_deliveries(args: dict, project_id: int) -> dict:
    """The project's deliveries the caller may see, newest first."""
    project = project_service.get_visible_project(actor(), project_id)
    if args.get("project_id") not in (None, project.id):
        raise NotFound("Delivery not found.")
    stmt = delivery_service.list_deliveries(actor(), project_id=project.id)
    return paginate(stmt, args["page"], args["per_page"])
