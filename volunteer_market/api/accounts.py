"""/api/v1/me, /api/v1/areas, /api/v1/users."""

from __future__ import annotations

from ..database import atomic
from ..extensions import db
from ..http.throttles import mark_login_failed, password_check_throttle
from ..models import Area, Role, RoleGrant
from ..schemas.accounts import (
    AreaIn,
    AreaOut,
    AreaQuery,
    MeOut,
    PasswordChangeIn,
    PasswordResetIn,
    RoleGrantIn,
    RoleGrantOut,
    UserIn,
    UserOut,
)
from ..schemas.common import page_of
from ..services import areas as area_service
from ..services import auth as auth_service
from ..services import passwords, permissions
from ..services import users as user_service
from ..services.errors import AuthenticationFailed, NotFound, ValidationFailed
from ..services.wallet import points_summary
from .common import (
    actor,
    bearer_token,
    before_password_change,
    make_blueprint,
    paginate,
    problem_response,
)

me_blp = make_blueprint("api_me", "/me", "The signed-in user")
areas_blp = make_blueprint("api_areas", "/areas", "The area tree")
users_blp = make_blueprint("api_users", "/users", "Users and role grants")


@me_blp.route("", methods=["GET"])
@before_password_change
@me_blp.response(200, MeOut)
def me() -> dict:
    """Return the caller, their role grants and their points."""
    user = actor()
    view = user_service.present_user(user, user)
    return {"user": view, "roles": view["roles"], "points": points_summary(user)}


@me_blp.route("/password", methods=["POST"])
@before_password_change
@password_check_throttle
@me_blp.arguments(PasswordChangeIn)
@me_blp.response(204)
@me_blp.alt_response(401, response=problem_response(401))  # wrong current password
@me_blp.alt_response(429, response=problem_response(429))  # too many wrong passwords
def change_password(data: dict) -> None:
    """Change my password (ends my page sessions and revokes my other tokens; the token
    of this request stays valid; clears a reset's must-change flag)."""
    user = actor()
    if not passwords.verify_password(user.password_hash, data["old_password"]):
        mark_login_failed()
        raise AuthenticationFailed("The current password is wrong.")
    with atomic():
        user_service.set_password(
            user, user, data["new_password"], keep_token_id=auth_service.token_id(bearer_token())
        )


@areas_blp.route("", methods=["POST"])
@areas_blp.arguments(AreaIn)
@areas_blp.response(201, AreaOut)
def create_area(data: dict) -> Area:
    """Create an area (admin)."""
    with atomic():
        return area_service.create_area(actor(), **data)


@areas_blp.route("", methods=["GET"])
@areas_blp.arguments(AreaQuery, location="query")
@areas_blp.response(200, page_of(AreaOut))
@areas_blp.alt_response(404, response=problem_response(404))  # no such area ``under``
def list_areas(args: dict) -> dict:
    """List areas (filters: parent_id, kind, under = subtree of an area)."""
    permissions.require(actor(), "area.view")
    under = area_service.get_area(args["under"]) if args.get("under") else None
    stmt = area_service.list_areas(
        parent_id=args.get("parent_id"), kind=args.get("kind"), under=under
    )
    return paginate(stmt, args["page"], args["per_page"])


@areas_blp.route("/<int:area_id>", methods=["GET"])
@areas_blp.response(200, AreaOut)
def get_area(area_id: int) -> Area:
    """Return one area."""
    permissions.require(actor(), "area.view")
    return area_service.get_area(area_id)


@users_blp.route("", methods=["POST"])
@users_blp.arguments(UserIn)
@users_blp.response(201, UserOut)
def create_user(data: dict) -> dict:
    """Create a user (admin; a secretary for their own community)."""
    with atomic():
        user = user_service.create_user(actor(), **data)
    return user_service.present_user(actor(), user)


@users_blp.route("/<int:user_id>", methods=["GET"])
@users_blp.response(200, UserOut)
def get_user(user_id: int) -> dict:
    """Return a user, with personal data masked unless the caller may see it."""
    return user_service.present_user(actor(), user_service.get_visible_user(actor(), user_id))


@users_blp.route("/<int:user_id>/password-reset", methods=["POST"])
@users_blp.arguments(PasswordResetIn)
@users_blp.response(204)
def reset_password(data: dict, user_id: int) -> None:
    """Set a new password for a person of my community; they must change it at their
    next login (admin; the secretary of their community)."""
    user = user_service.get_visible_user(actor(), user_id)
    with atomic():
        user_service.reset_password(actor(), user, data["password"])


@users_blp.route("/<int:user_id>/roles", methods=["POST"])
@users_blp.arguments(RoleGrantIn)
@users_blp.response(201, RoleGrantOut)
def grant_role(data: dict, user_id: int) -> RoleGrant:
    """Grant a role on an area (admin; a secretary may grant member/resident/grid_worker
    in their own community)."""
    user = user_service.get_visible_user(actor(), user_id)
    role: Role = data["role"]
    area = None
    if data.get("area_id") is not None:
        try:
            area = area_service.get_area(data["area_id"])
        except NotFound:
            raise ValidationFailed("Unknown area.", errors={"area_id": ["Unknown area."]}) from None
    with atomic():
        return user_service.grant_role(actor(), user, role, area)


@users_blp.route("/<int:user_id>/roles/<int:grant_id>", methods=["DELETE"])
@users_blp.response(204)
def revoke_role(user_id: int, grant_id: int) -> None:
    """End a role grant (kept in history)."""
    user_service.get_visible_user(actor(), user_id)
    grant = db.session.get(RoleGrant, grant_id)
    if grant is None or grant.user_id != user_id:
        raise NotFound("Role grant not found.")
    with atomic():
        user_service.revoke_role(actor(), grant)
