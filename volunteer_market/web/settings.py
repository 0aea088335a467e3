"""Community settings page (社区设置): the points policy in force and how it differs
from the version before, a new version (the secretary, an officer over the community,
the admin), wallet expiry (a term of the policy) and the rankings' exposure."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from marshmallow import ValidationError

from ..database import atomic
from ..extensions import db
from ..models import Area, AreaKind, ExpiryRule
from ..schemas.points_policy import MAX_MULTIPLIER_ROWS, PointsPolicyIn
from ..services import permissions
from ..services import points_policy as policy_service
from ..services import rankings as ranking_service
from ..services.errors import DomainError, NotFound
from .forms import domain_errors, form_errors

bp = Blueprint("web_settings", __name__)

#: The policy form's plain fields (the multiplier rows are ``mult_min_<i>``/``mult_factor_<i>``).
FIELDS = (
    "base_rate",
    "hours_cap",
    "unrated_multiplier_percent",
    "rating_window_days",
    "redemption_hold_days",
    "expiry",
)
#: Multiplier rows the form offers.
FORM_ROWS = 5


def _communities() -> list[Area]:
    """The communities whose settings the user may change (secretary, officer, admin)."""
    return [
        a
        for a in db.session.scalars(
            sa.select(Area).where(Area.kind == AreaKind.COMMUNITY).order_by(Area.path)
        )
        if permissions.may(current_user, "points_policy.manage", a)
    ]


def _community(community_id: int) -> Area:
    area = db.session.get(Area, community_id)
    if area is None or not permissions.may(current_user, "points_policy.view", area):
        abort(404)
    return area


@bp.route("/settings")
@login_required
def choose() -> ResponseReturnValue:
    """Open the settings of my community (or pick one of those I run)."""
    if not permissions.may(current_user, "community.settings_page"):
        abort(403)
    communities = _communities()
    if len(communities) == 1:
        return redirect(url_for("web_settings.settings_page", community_id=communities[0].id))
    return render_template("settings/choose.html", communities=communities)


def _form_values(policy: Any) -> dict[str, str]:
    values = {
        "base_rate": str(policy.base_rate),
        "hours_cap": f"{policy.hours_cap_minutes / 60:g}",
        "unrated_multiplier_percent": str(policy.unrated_multiplier_percent),
        "rating_window_days": str(policy.rating_window_days),
        "redemption_hold_days": str(policy.redemption_hold_days),
        "expiry": ExpiryRule(policy.expiry_rule).value,
    }
    for i, (minimum, factor) in enumerate(policy.multipliers):
        values[f"mult_min_{i}"], values[f"mult_factor_{i}"] = f"{minimum:g}", f"{factor:g}"
    return values


def _render(
    community: Area, values: dict[str, str] | None = None, errors: dict | None = None
) -> str:
    view = policy_service.community_policy(current_user, community)
    return render_template(
        "settings/settings.html",
        community=community,
        area=community,
        view=view,
        values=values or _form_values(view["policy"]),
        errors=errors or {},
        rows=max(FORM_ROWS, len(view["policy"].multipliers)),
        expiry_rules=[r.value for r in ExpiryRule],
        setting=ranking_service.exposure_for(community),
        back="settings",
    )


@bp.route("/communities/<int:community_id>/settings")
@login_required
def settings_page(community_id: int) -> ResponseReturnValue:
    """Show the community's points policy, wallet expiry and ranking exposure."""
    return _render(_community(community_id))


def _terms(form: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """Return the form as the API's body (rows with both cells) and the typed values."""
    values = {k: form.get(k, "").strip() for k in FIELDS}
    body: dict[str, Any] = {k: v for k, v in values.items() if v}
    rows = []
    for i in range(MAX_MULTIPLIER_ROWS):
        low, factor = (
            form.get(f"mult_min_{i}", "").strip(),
            form.get(f"mult_factor_{i}", "").strip(),
        )
        values[f"mult_min_{i}"], values[f"mult_factor_{i}"] = low, factor
        if low or factor:
            rows.append([low, factor])
    if rows:
        body["multipliers"] = rows
    return body, values


@bp.route("/communities/<int:community_id>/settings/points-policy", methods=["POST"])
@login_required
def save_policy(community_id: int) -> ResponseReturnValue:
    """Make a new version of the policy from the form (nothing when nothing changed)."""
    community = _community(community_id)
    if not permissions.may(current_user, "points_policy.manage", community):
        abort(403)
    body, values = _terms(request.form)
    try:
        terms = PointsPolicyIn().load(body)
        current = policy_service.terms_of(policy_service.current_policy(community.id))
        terms = {k: v for k, v in terms.items() if current.get(k) != v}
        if not terms:
            flash(_("积分规则没有改动，未生成新版本。"), "success")
            return redirect(url_for("web_settings.settings_page", community_id=community.id))
        with atomic():
            policy = policy_service.new_policy_version(current_user, community, **terms)
    except ValidationError as exc:
        return _render(community, values, form_errors(exc)), 422
    except NotFound:
        abort(404)
    except DomainError as exc:
        return _render(community, values, domain_errors(exc)), exc.status
    flash(_("已生成积分规则第 %(n)s 版，之后结算的服务按新规则计分。", n=policy.version), "success")
    return redirect(url_for("web_settings.settings_page", community_id=community.id))
