"""The policy table: every role x every foundation action x own/other area.

The world is built once per module (through the services, on a private database)
and the tests only ask :func:`permissions.may`, so the whole table stays fast.
Expected answers are written out by hand below -- not derived from the rules.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import Area, Role, User
from volunteer_market.services import permissions
from volunteer_market.services.errors import Forbidden, NotFound
from volunteer_market.services.permissions import GrantTarget

from ..factories import make_user
from .conftest import restore_world

ACTORS = [
    "admin",
    "officer_district",
    "officer_street",  # officer on 龙阳街 (communities A and B)
    "officer_other",  # officer on 琴断口街 (community C)
    "secretary_a",
    "secretary_b",
    "grid_a1",
    "member_a",
    "resident_a",
    "nobody",  # an account without any role
    "inactive",  # holds admin and secretary of A, but is deactivated
]

FOUNDATION_ACTIONS = {
    "area.create",
    "area.view",
    "user.create",
    "user.view",
    "user.view_personal",
    "role.grant",
    "role.revoke",
    "audit.view",
}


@dataclass
class PolicyWorld:
    users: dict
    areas: dict


@pytest.fixture(scope="module")
def pw(module_app, world_template):
    """The world plus two more accounts, loaded once, detached for the whole table."""
    app = module_app[0]
    with app.app_context():
        restore_world(app, module_app[1], world_template)
        users = {u.username: u for u in db.session.scalars(sa.select(User))}
        users["nobody"] = make_user("nobody")
        inactive = make_user(
            "inactive",
            (Role.ADMIN, None),
            (Role.SECRETARY, db.session.get(Area, world_template.area_ids["community_a"])),
        )
        with atomic():
            db.session.get(User, inactive.id).is_active = False
        users["inactive"] = inactive
        for user in users.values():
            db.session.refresh(user)
            for grant in user.grants:  # load grants and their areas before detaching
                assert grant.area is None or grant.area.path
        areas = {k: db.session.get(Area, i) for k, i in world_template.area_ids.items()}
        db.session.expunge_all()
        db.session.remove()
    return PolicyWorld(users=users, areas=areas)


def _case_ids(cases):
    return [f"{a}-{t}" for a, t, _ in cases]


def _expand(allowed: dict[str, set[str]], targets: list[str]) -> list[tuple[str, str, bool]]:
    """Return (actor, target, expected) for every actor x target."""
    return [(a, t, a in allowed.get(t, set())) for a in ACTORS for t in targets]


ALL_ACTIVE = set(ACTORS) - {"inactive"}


# --- area.create / area.view / user.create -------------------------------------------

AREA_TARGETS = ["community_a", "community_c", "none"]

AREA_CREATE = _expand({t: {"admin"} for t in AREA_TARGETS}, AREA_TARGETS)
AREA_VIEW = _expand(dict.fromkeys(AREA_TARGETS, ALL_ACTIVE), AREA_TARGETS)
USER_CREATE = _expand(
    {"none": {"admin", "secretary_a", "secretary_b"}},
    ["none"],
)


def _area(pw, name):
    return None if name == "none" else pw.areas[name]


@pytest.mark.parametrize(("actor", "target", "expected"), AREA_CREATE, ids=_case_ids(AREA_CREATE))
def test_area_create(pw, actor, target, expected):
    assert permissions.may(pw.users[actor], "area.create", _area(pw, target)) is expected


@pytest.mark.parametrize(("actor", "target", "expected"), AREA_VIEW, ids=_case_ids(AREA_VIEW))
def test_area_view(pw, actor, target, expected):
    assert permissions.may(pw.users[actor], "area.view", _area(pw, target)) is expected


@pytest.mark.parametrize(("actor", "target", "expected"), USER_CREATE, ids=_case_ids(USER_CREATE))
def test_user_create(pw, actor, target, expected):
    assert permissions.may(pw.users[actor], "user.create") is expected


# --- user.view / user.view_personal -------------------------------------------------

USER_TARGETS = [
    "resident_a",  # resident of grid A1 (community A)
    "resident_a2",  # resident of grid A2 (community A)
    "member_a2",  # member of community A
    "resident_b",  # community B, same street as A
    "resident_c",  # community C, other street
    "officer_street",
    "admin",
    "nobody",
]

USER_VIEW = _expand(
    {
        "resident_a": {
            "admin",
            "officer_district",
            "officer_street",
            "secretary_a",
            "grid_a1",
            "resident_a",
        },
        "resident_a2": {"admin", "officer_district", "officer_street", "secretary_a", "grid_a1"},
        "member_a2": {"admin", "officer_district", "officer_street", "secretary_a", "grid_a1"},
        "resident_b": {"admin", "officer_district", "officer_street", "secretary_b"},
        "resident_c": {"admin", "officer_district", "officer_other"},
        "officer_street": {"admin", "officer_district", "officer_street"},
        "admin": {"admin"},
        "nobody": {"admin", "nobody"},
    },
    USER_TARGETS,
)

#: Personal data: self and the secretary and grid workers of the user's community
#: (DESIGN.md "Privacy") -- never officers, members, other communities or (issue 20) the admin.
USER_VIEW_PERSONAL = _expand(
    {
        "resident_a": {"secretary_a", "grid_a1", "resident_a"},
        "resident_a2": {"secretary_a", "grid_a1"},
        "member_a2": {"secretary_a", "grid_a1"},
        "resident_b": {"secretary_b"},
        "resident_c": set(),
        "officer_street": {"officer_street"},
        "admin": {"admin"},
        "nobody": {"nobody"},
    },
    USER_TARGETS,
)


@pytest.mark.parametrize(("actor", "target", "expected"), USER_VIEW, ids=_case_ids(USER_VIEW))
def test_user_view(pw, actor, target, expected):
    assert permissions.may(pw.users[actor], "user.view", pw.users[target]) is expected


@pytest.mark.parametrize(
    ("actor", "target", "expected"), USER_VIEW_PERSONAL, ids=_case_ids(USER_VIEW_PERSONAL)
)
def test_user_view_personal(pw, actor, target, expected):
    assert permissions.may(pw.users[actor], "user.view_personal", pw.users[target]) is expected


def test_personal_data_implies_visibility(pw):
    """Whoever may see a user's personal data may also see the user."""
    for actor, target in itertools.product(pw.users.values(), pw.users.values()):
        if permissions.may(actor, "user.view_personal", target):
            assert permissions.may(actor, "user.view", target), (actor.username, target.username)


# --- role.grant / role.revoke ----------------------------------------------------------

SECRETARY_GRANTABLE = ["member", "resident", "grid_worker"]
GRANT_TARGETS = [
    *[
        f"{role}@{area}"
        for role in SECRETARY_GRANTABLE
        for area in ("community_a", "grid_a1", "grid_a2", "community_b", "grid_b1", "community_c")
    ],
    "secretary@community_a",
    "secretary@community_b",
    "officer@street",
    "officer@district",
    "admin@none",
]


def _grant_allowed() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {t: {"admin"} for t in GRANT_TARGETS}
    for role in SECRETARY_GRANTABLE:
        for area in ("community_a", "grid_a1", "grid_a2"):
            out[f"{role}@{area}"].add("secretary_a")
        for area in ("community_b", "grid_b1"):
            out[f"{role}@{area}"].add("secretary_b")
    return out


ROLE_GRANT = _expand(_grant_allowed(), GRANT_TARGETS)


def _grant_target(pw, spec: str) -> GrantTarget:
    role, area = spec.split("@")
    return GrantTarget(Role(role), _area(pw, area))


@pytest.mark.parametrize("action", ["role.grant", "role.revoke"])
@pytest.mark.parametrize(("actor", "target", "expected"), ROLE_GRANT, ids=_case_ids(ROLE_GRANT))
def test_role_grant_and_revoke(pw, action, actor, target, expected):
    assert permissions.may(pw.users[actor], action, _grant_target(pw, target)) is expected


# --- audit.view ------------------------------------------------------------------------

AUDIT_TARGETS = ["community_a", "grid_a1", "community_b", "street", "street2", "district", "none"]
AUDIT_VIEW = _expand(
    {
        "community_a": {"admin", "officer_district", "officer_street", "secretary_a"},
        "grid_a1": {"admin", "officer_district", "officer_street", "secretary_a"},
        "community_b": {"admin", "officer_district", "officer_street", "secretary_b"},
        "street": {"admin", "officer_district", "officer_street"},
        "street2": {"admin", "officer_district", "officer_other"},
        "district": {"admin", "officer_district"},
        "none": {"admin"},
    },
    AUDIT_TARGETS,
)


@pytest.mark.parametrize(("actor", "target", "expected"), AUDIT_VIEW, ids=_case_ids(AUDIT_VIEW))
def test_audit_view(pw, actor, target, expected):
    assert permissions.may(pw.users[actor], "audit.view", _area(pw, target)) is expected


# --- the module's own contract ------------------------------------------------------------


def test_table_covers_every_foundation_action():
    covered = {"area.create", "area.view", "user.create", "user.view", "user.view_personal"}
    covered |= {"role.grant", "role.revoke", "audit.view"}
    assert covered == FOUNDATION_ACTIONS
    assert set(permissions.actions()) >= FOUNDATION_ACTIONS


def test_actions_lists_rules_sorted():
    names = permissions.actions()
    assert names == sorted(names)
    assert len(names) == len(set(names))


@pytest.mark.parametrize("actor", ["admin", "member_a", "inactive", None])
def test_unknown_action_raises_lookup_error(pw, actor):
    user = pw.users[actor] if actor else None
    with pytest.raises(LookupError):
        permissions.may(user, "area.destroy")
    with pytest.raises(LookupError):
        permissions.require(user, "no.such.action")


def test_anonymous_may_nothing(pw):
    for action in FOUNDATION_ACTIONS:
        assert permissions.may(None, action, pw.areas["community_a"]) is False


def test_require_raises_forbidden_with_action(pw):
    with pytest.raises(Forbidden) as info:
        permissions.require(pw.users["member_a"], "area.create")
    assert info.value.status == 403
    assert info.value.extra == {"action": "area.create"}
    permissions.require(pw.users["admin"], "area.create")  # no exception


def test_duplicate_rule_is_refused(pw):
    with pytest.raises(RuntimeError, match="duplicate rule"):
        permissions.rule("area.create")(lambda actor, target: True)
    # the original rule is still in force
    assert permissions.may(pw.users["member_a"], "area.create") is False


def test_revoked_grant_no_longer_counts(app, world):
    """A revoked secretary grant takes the power away at once."""
    from volunteer_market.services import users as user_service

    sec = world.secretary_a
    target = GrantTarget(Role.MEMBER, world.community_a)
    assert permissions.may(sec, "role.grant", target)
    with atomic():
        user_service.revoke_role(world.admin, sec.grants[0])
    db.session.refresh(sec)
    assert sec.grants == []
    assert not permissions.may(sec, "role.grant", target)
    assert not permissions.may(sec, "user.create")


# --- "may this user see that user": one service function ---------------------------------


@pytest.mark.parametrize("action", ["user.view", "ledger.view"])
def test_get_visible_user_follows_the_rule(app, world, action):
    """``users.get_visible_user`` returns exactly the users the rule lets the actor see;
    for any other it raises the same NotFound as for an id nobody has."""
    from volunteer_market.services import users as user_service

    seen = 0
    for actor, target in itertools.product(world.users.values(), world.users.values()):
        if permissions.may(actor, action, target):
            assert user_service.get_visible_user(actor, target.id, action) is target
            seen += 1
        else:
            with pytest.raises(NotFound, match="^User not found.$"):
                user_service.get_visible_user(actor, target.id, action)
    assert 0 < seen < len(world.users) ** 2  # both answers occur
    with pytest.raises(NotFound, match="^User not found.$"):
        user_service.get_visible_user(world.admin, 10**6, action)


def test_the_admin_sees_a_member_but_not_their_ledger(app, world):
    from volunteer_market.services import users as user_service

    assert user_service.get_visible_user(world.admin, world.member_a.id) is world.member_a
    with pytest.raises(NotFound):
        user_service.get_visible_user(world.admin, world.member_a.id, "ledger.view")
    member = user_service.get_visible_user(world.secretary_a, world.member_a.id, "ledger.view")
    assert member is world.member_a
