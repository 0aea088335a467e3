"""Admin pages: areas, users and role grants (admins; secretaries for their community)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from marshmallow import ValidationError

from ..database import atomic
from ..extensions import db
from ..models import Area, Role, RoleGrant
from ..schemas.accounts import AreaIn, PasswordResetIn, RoleGrantIn, UserIn
from ..services import areas as area_service
from ..services import permissions
from ..services import users as user_service
from ..services.errors import DomainError
from .forms import domain_errors, form_data, form_errors, form_id
from .paging import page_arg, paginate

bp = Blueprint("web_admin", __name__, url_prefix="/admin")

PER_PAGE = 50


@bp.route("/areas", methods=["GET", "POST"])
@login_required
def areas() -> ResponseReturnValue:
    """List the area tree and add areas (admins: this page manages the tree)."""
    permissions.require(current_user, "area.create")
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        try:
            data = AreaIn().load(form_data(request.form, ["name", "kind", "parent_id"]))
            with atomic():
                area = area_service.create_area(current_user, **data)
        except ValidationError as exc:
            errors, status = form_errors(exc), 422
        except DomainError as exc:
            errors, status = domain_errors(exc), exc.status
        else:
            flash(_("已添加区域：%(name)s", name=area.name), "success")
            return redirect(url_for("web_admin.areas"))
    all_areas = db.session.scalars(sa.select(Area).order_by(Area.path)).all()
    return render_template(
        "admin/areas.html", areas=all_areas, errors=errors, form=request.form
    ), status


@bp.route("/users", methods=["GET", "POST"])
@login_required
def users() -> ResponseReturnValue:
    """List users I manage; create a user."""
    if not permissions.may(current_user, "user.create"):
        abort(403)
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        try:
            data = UserIn().load(
                form_data(
                    request.form,
                    [
                        "username",
                        "password",
                        "display_name",
                        "phone",
                        "address",
                        "household_tags",
                        "home_unit",
                    ],
                )
            )
            with atomic():
                user = user_service.create_user(current_user, **data)
        except ValidationError as exc:
            errors, status = form_errors(exc), 422
        except DomainError as exc:
            errors, status = domain_errors(exc), exc.status
        else:
            flash(_("已创建用户：%(name)s", name=user.display_name), "success")
            return redirect(url_for("web_admin.user_detail", user_id=user.id))
    page = paginate(user_service.managed_users(current_user), page_arg(), PER_PAGE)
    people = [user_service.present_user(current_user, u) for u in page["items"]]
    form = {k: v for k, v in request.form.items() if k != "password"}
    return render_template(
        "admin/users.html",
        people=people,
        errors=errors,
        form=form,
        page=page["page"],
        total=page["total"],
        per_page=PER_PAGE,
    ), status


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@login_required
def user_detail(user_id: int) -> ResponseReturnValue:
    """Show a user with their grants; grant or revoke roles; reset their password."""
    user = user_service.get_visible_user(current_user, user_id)
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        action = request.form.get("action")
        try:
            if action == "grant":
                data = RoleGrantIn().load(form_data(request.form, ["role", "area_id"]))
                area = None
                if data.get("area_id") is not None:
                    area = db.session.get(Area, data["area_id"])
                    if area is None:
                        raise ValidationError({"area_id": [_("未知区域。")]})
                with atomic():
                    user_service.grant_role(current_user, user, data["role"], area)
                flash(_("已授予角色。"), "success")
            elif action == "revoke":
                grant_id = form_id(request.form.get("grant_id", "").strip())
                grant = db.session.get(RoleGrant, grant_id) if grant_id else None
                if grant is None or grant.user_id != user.id:
                    raise ValidationError({"grant_id": [_("无效的授权。")]})
                with atomic():
                    user_service.revoke_role(current_user, grant)
                flash(_("已撤销角色。"), "success")
            elif action == "reset_password":
                data = PasswordResetIn().load(form_data(request.form, ["password"]))
                with atomic():
                    user_service.reset_password(current_user, user, data["password"])
                flash(_("密码已重置，对方下次登录时需修改。"), "success")
            else:
                raise ValidationError({"action": [_("未知操作。")]})
        except ValidationError as exc:
            errors, status = form_errors(exc), 422
        except DomainError as exc:
            if exc.status == 403:
                abort(403)
            errors, status = domain_errors(exc), exc.status
        else:
            return redirect(url_for("web_admin.user_detail", user_id=user.id))
    db.session.expire(user, ["grants"])
    return render_template(
        "admin/user.html",
        person=user_service.present_user(current_user, user),
        target=user,
        grants=user.grants,
        roles=list(Role),
        areas=user_service.grantable_areas(current_user),
        errors=errors,
    ), status
