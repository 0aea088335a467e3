"""Access-control matrix over every rule of ``app.url_map`` (issue 8, item 1).

Every (route, method) has one line in :data:`MATRIX` naming the actors that are
allowed. Objects in the URL always belong to community **B** (or to its street),
so every caller from community A -- resident, member, grid worker, secretary --
must be refused (401/403/404, or a redirect to the login page): no IDOR. Nobody
may ever get a 5xx. ``test_every_route_is_in_the_matrix`` fails, listing the
routes, when a route is added to the app without a line here.

Adding a route: one line in :data:`MATRIX`, ``("METHOD", "/rule"): ALLOWED_SET``.

Outcomes (the same rule for every route, GET or write, page or API):

* *refused* = 401/403/404, or for anonymous page requests a redirect to ``/login``. A
  400/409/422 is never a refusal: the permission check must come first.
* *allowed* = 2xx/3xx (a page's redirect must not flash an error: some pages redirect
  after a refusal too). Every route that takes input is sent a VALID request from
  :data:`BODIES` -- a JSON body, a form (with its CSRF token), an upload, or the query
  arguments of a GET -- built from objects of community B, with a fresh object of B of
  its own where a success changes state (a need to cancel, claim or release, projects
  to cancel, complete, review, join or leave, the owner's draft to edit, projects to
  submit and withdraw, a pending team request per answer, held redemptions, a settleable
  delivery, a reward to retire, one-time rating codes for every caller, a user whose
  roles are granted or revoked), one for each allowed caller where two may change it
  (the secretary and the owner cancel a project). So no route's success changes what
  another route (or a later caller) sees, and each outcome is the real permission
  outcome for every caller; 409 and 422 are accepted nowhere. Routes without input are
  sent none (their valid request).
* The exceptions, listed in :data:`GATE_PASSED_STATE_REFUSED` with their reasons: a
  caller the gate lets through whose request cannot succeed in this world (staff and the
  owner leaving a team, the owner joining their own) gets exactly the status named
  there.

Refused callers run before allowed ones on every route, so no allowed caller's write
can turn a later refusal into a state error (or hide one). The requests that end
sessions or tokens run last (:data:`RUN_LAST`).

Actors (objects are in community B, owned by ``member_b``):

=============  ==============================================================
anon           no session, no token
resident       resident_a (community A)
member         member_a (community A)
owner          member_b: the member of community B who owns B's objects (projects,
               the recorded deliveries, redemptions, the ledger and user in URLs)
non_owner      member_b2: a member of community B who owns nothing
grid           grid_a1 (grid worker in community A)
sec_this       secretary_b (secretary of B, the objects' community)
sec_other      secretary_a (secretary of A)
officer_out    officer_other (officer of the other street, outside B's subtree)
admin          admin
=============  ==============================================================
"""

from __future__ import annotations

import contextvars
import io
import re
import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient

from volunteer_market.database import atomic
from volunteer_market.models import Role, utcnow

from ..factories import (
    PASSWORD,
    add_team_member,
    bearer,
    give_points,
    image_bytes,
    make_delivery,
    make_need,
    make_project,
    make_reward,
    make_user,
    redeem,
)

ACTORS = (
    "anon",
    "resident",
    "member",
    "owner",
    "non_owner",
    "grid",
    "sec_this",
    "sec_other",
    "officer_out",
    "admin",
)
USERNAMES = {
    "resident": "resident_a",
    "member": "member_a",
    "owner": "member_b",
    "non_owner": "member_b2",
    "grid": "grid_a1",
    "sec_this": "secretary_b",
    "sec_other": "secretary_a",
    "officer_out": "officer_other",
    "admin": "admin",
}

#: Whom each caller signs in as through ``POST /login`` and ``POST /api/v1/auth/token``
#: (anonymous callers use the credentials of resident_b).
LOGIN_AS = {**USERNAMES, "anon": "resident_b"}
ZONE = ZoneInfo("Asia/Shanghai")  # the communities' time zone (page forms take local times)

# --- actor sets -------------------------------------------------------------------------------
EVERYONE = frozenset(ACTORS)
SIGNED_IN = EVERYONE - {"anon"}
NOBODY: frozenset[str] = frozenset()
ADMIN = frozenset({"admin"})
B_STAFF = frozenset({"sec_this", "admin"})  # may manage objects of community B
B_MEMBERS = frozenset({"owner", "non_owner"})  # members of community B
B_VIEW = B_STAFF | B_MEMBERS  # may see B's public objects
MEMBERS = frozenset({"member"}) | B_MEMBERS
STAFF_ANYWHERE = frozenset({"sec_this", "sec_other", "admin"})  # a secretary or an admin
STAFF = frozenset({"grid", "sec_this", "sec_other", "officer_out", "admin"})

# Routes never checked (served to everyone, no data): static files and the API docs.
SKIP = {
    ("GET", "/static/<path:filename>"),
    ("GET", "/api/v1/openapi.json"),
}

# (method, rule) -> allowed actors. URL placeholders are filled from OBJECTS.
MATRIX: dict[tuple[str, str], frozenset[str]] = {
    # --- pages ---------------------------------------------------------------------------
    ("GET", "/"): SIGNED_IN,
    ("GET", "/login"): EVERYONE,
    ("POST", "/login"): EVERYONE,  # own credentials, after /logout
    ("POST", "/logout"): SIGNED_IN,
    ("GET", "/profile"): SIGNED_IN,
    ("POST", "/profile"): SIGNED_IN,
    ("POST", "/text-size"): EVERYONE,  # the large-text switch (a cookie for anonymous)
    ("GET", "/admin/areas"): ADMIN,
    ("POST", "/admin/areas"): ADMIN,
    ("GET", "/admin/users"): frozenset({"sec_this", "sec_other", "admin"}),
    ("POST", "/admin/users"): frozenset({"sec_this", "sec_other", "admin"}),
    ("GET", "/admin/users/<int:user_id>"): B_STAFF | {"owner"},  # member_b: self
    ("POST", "/admin/users/<int:user_id>"): B_STAFF,
    ("GET", "/deliveries/<int:delivery_id>"): B_VIEW,  # member_b2 served in it
    ("GET", "/deliveries/<int:delivery_id>/photo"): B_VIEW,
    ("GET", "/deliveries/<int:delivery_id>/ratings"): B_VIEW,
    ("POST", "/deliveries/<int:delivery_id>/ratings"): frozenset({"sec_this"}),  # proxy
    ("POST", "/deliveries/<int:delivery_id>/settle"): frozenset({"sec_this"}),
    # rating slips: the secretary of B, who is not on the delivery (grid_a1 is of A)
    ("GET", "/deliveries/<int:delivery_id>/slips"): frozenset({"sec_this"}),
    ("POST", "/deliveries/<int:delivery_id>/slips"): frozenset({"sec_this"}),
    ("GET", "/ledger/members"): frozenset({"sec_this", "sec_other", "officer_out"}),
    ("GET", "/ledger/members/<int:user_id>"): frozenset({"owner", "sec_this"}),
    ("POST", "/ledger/members/<int:user_id>/adjust"): frozenset({"sec_this"}),
    ("POST", "/ledger/transactions/<int:tx_id>/reverse"): frozenset({"sec_this"}),
    ("GET", "/needs"): SIGNED_IN,
    ("POST", "/needs/<int:need_id>/<string:verb>"): frozenset({"sec_this"}),
    ("GET", "/needs/new"): frozenset({"resident", "grid"}),
    ("POST", "/needs/new"): NOBODY,  # for resident_b: only B's residents, grid worker
    ("GET", "/notifications"): SIGNED_IN,
    ("POST", "/notifications"): SIGNED_IN,
    ("GET", "/points"): SIGNED_IN,
    ("GET", "/projects"): SIGNED_IN,
    ("GET", "/projects/<int:project_id>"): SIGNED_IN,  # approved: public
    ("POST", "/projects/<int:project_id>/action"): frozenset({"owner", "sec_this"}),  # cancel
    ("GET", "/projects/<int:project_id>/cover"): SIGNED_IN,
    ("GET", "/projects/<int:project_id>/deliveries/new"): B_MEMBERS,  # the team
    ("POST", "/projects/<int:project_id>/deliveries/new"): B_MEMBERS,
    ("GET", "/projects/<int:project_id>/edit"): frozenset({"owner"}),  # a draft
    ("POST", "/projects/<int:project_id>/edit"): frozenset({"owner"}),
    ("POST", "/projects/<int:project_id>/order"): NOBODY,  # B's residents (not cast)
    ("POST", "/projects/<int:project_id>/review"): frozenset({"sec_this"}),
    ("POST", "/projects/<int:project_id>/team/<int:user_id>/<string:verb>"): frozenset({"owner"}),
    ("POST", "/projects/<int:project_id>/team/<string:verb>"): frozenset({"non_owner"}),  # join
    ("GET", "/projects/mine"): SIGNED_IN,
    ("GET", "/projects/new"): MEMBERS,
    ("POST", "/projects/new"): B_MEMBERS,  # in community B
    ("GET", "/rankings"): SIGNED_IN,
    ("GET", "/rankings/communities"): frozenset({"sec_this", "sec_other", "officer_out", "admin"}),
    ("POST", "/rankings/settings/<int:area_id>"): B_STAFF,
    ("GET", "/rankings/teams"): frozenset({"sec_this", "sec_other", "officer_out", "admin"}),
    ("GET", "/rate"): EVERYONE,
    # issue 15: a code typed in the session of the delivery's recorder never rates
    ("POST", "/rate"): EVERYONE - {"owner"},
    ("GET", "/rate/<token>"): EVERYONE,  # a valid token of their own
    ("POST", "/rate/<token>"): EVERYONE - {"owner"},
    ("GET", "/ratings"): MEMBERS | {"resident"},
    ("POST", "/ratings/<int:rating_id>/edit"): frozenset({"sec_this"}),
    ("POST", "/ratings/<int:rating_id>/reply"): B_MEMBERS,  # both served in it
    ("GET", "/redemptions"): SIGNED_IN,
    ("GET", "/redemptions/<int:redemption_id>"): B_STAFF | {"owner"},  # member_b's
    ("POST", "/redemptions/<int:redemption_id>/cancel"): frozenset({"owner", "sec_this"}),
    ("POST", "/redemptions/<int:redemption_id>/reject"): frozenset({"sec_this"}),
    ("GET", "/redemptions/mine"): SIGNED_IN,
    ("GET", "/review"): frozenset({"sec_this", "sec_other"}),
    ("GET", "/rewards"): MEMBERS,
    ("GET", "/rewards/<int:reward_id>"): B_VIEW,
    ("GET", "/rewards/<int:reward_id>/edit"): frozenset({"sec_this"}),
    ("POST", "/rewards/<int:reward_id>/edit"): frozenset({"sec_this"}),
    ("GET", "/rewards/<int:reward_id>/image"): B_VIEW,
    ("POST", "/rewards/<int:reward_id>/redeem"): B_MEMBERS,
    ("POST", "/rewards/<int:reward_id>/retire"): frozenset({"sec_this"}),
    ("GET", "/rewards/<int:reward_id>/stock"): frozenset({"sec_this"}),
    ("GET", "/rewards/fulfil"): frozenset({"sec_this", "sec_other"}),
    ("POST", "/rewards/fulfil"): frozenset({"sec_this"}),
    ("GET", "/rewards/manage"): frozenset({"sec_this", "sec_other", "officer_out"}),
    ("GET", "/rewards/new"): frozenset({"sec_this", "sec_other", "officer_out"}),
    ("POST", "/rewards/new"): frozenset({"sec_this"}),  # on community B
    ("GET", "/rewards/stock"): frozenset({"sec_this", "sec_other", "officer_out"}),
    ("GET", "/settlement"): frozenset({"sec_this", "sec_other"}),
    ("GET", "/imports"): STAFF_ANYWHERE,  # the form: their own communities
    ("GET", "/register"): EVERYONE,
    ("POST", "/register"): EVERYONE,  # a number of its own for each caller
    ("GET", "/register/<token>"): EVERYONE,  # the link is the secret
    ("GET", "/registrations"): frozenset({"sec_this", "sec_other"}),
    ("POST", "/registrations/<int:registration_id>/<string:verb>"): frozenset({"sec_this"}),
    ("POST", "/imports"): B_STAFF,  # into community B
    ("GET", "/imports/<int:job_id>"): frozenset({"sec_this"}),  # who started it
    ("GET", "/imports/template"): STAFF_ANYWHERE,
    # sessions (pages): B's approved project is public; the feed link is the secret
    ("POST", "/projects/<int:project_id>/sessions"): frozenset({"owner"}),
    ("GET", "/sessions/<int:session_id>"): SIGNED_IN,
    ("POST", "/sessions/<int:session_id>/<string:verb>"): B_MEMBERS,  # sign up
    ("GET", "/sessions/<int:session_id>/check-in"): SIGNED_IN,
    ("POST", "/sessions/<int:session_id>/check-in"): B_MEMBERS,  # both hold a place
    ("GET", "/calendar/<string:feed>.ics"): EVERYONE,
    # --- API -----------------------------------------------------------------------------
    ("POST", "/api/v1/auth/token"): EVERYONE,
    ("DELETE", "/api/v1/auth/token"): SIGNED_IN,
    ("GET", "/api/v1/me"): SIGNED_IN,
    ("GET", "/api/v1/me/pending-ratings"): SIGNED_IN,  # their own list (maybe empty)
    ("POST", "/api/v1/imports"): B_STAFF,
    ("POST", "/api/v1/registrations"): EVERYONE,
    ("GET", "/api/v1/registrations"): SIGNED_IN,  # only a secretary's communities are listed
    ("POST", "/api/v1/registrations/<int:registration_id>/approve"): frozenset({"sec_this"}),
    ("POST", "/api/v1/registrations/<int:registration_id>/reject"): frozenset({"sec_this"}),
    ("GET", "/api/v1/imports/<int:job_id>"): frozenset({"sec_this"}),
    ("GET", "/api/v1/imports/template"): STAFF_ANYWHERE,
    ("POST", "/api/v1/me/password"): SIGNED_IN,  # one's own (the same password again)
    ("POST", "/api/v1/users/<int:user_id>/password-reset"): B_STAFF,
    # appeals: both members served in the appealed rating's delivery; member_b's appeal
    # is seen by him, B's secretary and the admin; only an officer of B's street decides
    # (none among the actors: officer_out is of the other street)
    ("POST", "/api/v1/appeals"): B_MEMBERS,
    ("GET", "/api/v1/appeals"): SIGNED_IN,  # their own list (maybe empty)
    ("GET", "/api/v1/appeals/<int:appeal_id>"): B_STAFF | {"owner"},
    ("POST", "/api/v1/appeals/<int:appeal_id>/decide"): frozenset(),
    ("GET", "/appeals"): SIGNED_IN,
    # integrity signals: B's secretary for B; the page shows any secretary or officer
    # the communities they oversee
    ("GET", "/api/v1/integrity/signals"): frozenset({"sec_this"}),
    ("GET", "/integrity"): frozenset({"sec_this", "sec_other", "officer_out"}),
    # comment moderation and call-backs: both members of B served in the reported
    # ratings' deliveries; B's secretary hides, unhides, dismisses and calls back (a
    # proxy rating grid_b1 entered); the pages list any secretary's own communities
    ("POST", "/api/v1/ratings/<int:rating_id>/reports"): B_MEMBERS,
    ("GET", "/api/v1/comment-reports"): frozenset({"sec_this"}),
    ("POST", "/api/v1/comment-reports/<int:report_id>/dismiss"): frozenset({"sec_this"}),
    ("POST", "/api/v1/ratings/<int:rating_id>/hide"): frozenset({"sec_this"}),
    ("POST", "/api/v1/ratings/<int:rating_id>/unhide"): frozenset({"sec_this"}),
    ("GET", "/api/v1/callbacks"): frozenset({"sec_this"}),
    ("POST", "/api/v1/ratings/<int:rating_id>/callbacks"): frozenset({"sec_this"}),
    ("POST", "/ratings/<int:rating_id>/report"): B_MEMBERS,
    ("POST", "/ratings/<int:rating_id>/hide"): frozenset({"sec_this"}),
    ("POST", "/ratings/<int:rating_id>/unhide"): frozenset({"sec_this"}),
    ("GET", "/moderation"): frozenset({"sec_this", "sec_other"}),
    ("POST", "/comment-reports/<int:report_id>/dismiss"): frozenset({"sec_this"}),
    ("GET", "/callbacks"): frozenset({"sec_this", "sec_other"}),
    ("POST", "/callbacks/<int:rating_id>"): frozenset({"sec_this"}),
    # audit log: every secretary, officer and the admin reads the entries of his scope
    ("GET", "/api/v1/audit"): frozenset({"sec_this", "sec_other", "officer_out", "admin"}),
    ("GET", "/audit"): frozenset({"sec_this", "sec_other", "officer_out", "admin"}),
    # B's points policy: read by those of B; a new version by B's secretary and the admin
    ("GET", "/api/v1/communities/<int:community_id>/points-policy"): B_VIEW,
    ("PUT", "/api/v1/communities/<int:community_id>/points-policy"): B_STAFF,
    ("GET", "/api/v1/communities/<int:community_id>/webhook"): B_STAFF,
    ("PUT", "/api/v1/communities/<int:community_id>/webhook"): B_STAFF,
    ("GET", "/api/v1/me/notification-channels"): SIGNED_IN,
    ("PUT", "/api/v1/me/notification-channels"): SIGNED_IN,
    ("POST", "/profile/notification-channels"): SIGNED_IN,
    ("POST", "/communities/<int:community_id>/settings/webhook"): B_STAFF,
    ("GET", "/communities/<int:community_id>/settings"): B_VIEW,
    ("POST", "/communities/<int:community_id>/settings/points-policy"): B_STAFF,
    ("GET", "/settings"): frozenset({"sec_this", "sec_other", "officer_out", "admin"}),
    # B's dashboard: B's secretary (officer_out is of the other street; no admin)
    ("GET", "/api/v1/dashboards/communities/<int:community_id>"): frozenset({"sec_this"}),
    ("GET", "/communities/<int:community_id>/dashboard"): frozenset({"sec_this"}),
    ("GET", "/dashboard"): frozenset({"sec_this", "sec_other", "officer_out"}),
    ("GET", "/appeals/new"): SIGNED_IN,
    ("POST", "/appeals/new"): B_MEMBERS,
    ("GET", "/appeals/<int:appeal_id>"): B_STAFF | {"owner"},
    ("POST", "/appeals/<int:appeal_id>/decide"): frozenset(),
    # sessions, sign-up, attendance, calendars: B's approved project is public
    ("POST", "/api/v1/projects/<int:project_id>/sessions"): frozenset({"owner"}),
    ("GET", "/api/v1/projects/<int:project_id>/sessions"): SIGNED_IN,
    ("GET", "/api/v1/sessions/<int:session_id>"): SIGNED_IN,
    ("GET", "/api/v1/sessions/<int:session_id>/calendar.ics"): SIGNED_IN,
    ("POST", "/api/v1/sessions/<int:session_id>/cancel"): frozenset({"owner"}),
    ("POST", "/api/v1/sessions/<int:session_id>/signups"): B_MEMBERS,
    ("DELETE", "/api/v1/sessions/<int:session_id>/signups"): B_MEMBERS,  # who hold one
    ("GET", "/api/v1/sessions/<int:session_id>/check-in-code"): frozenset({"owner"}),
    ("GET", "/api/v1/sessions/<int:session_id>/attendance"): frozenset({"owner"}),
    # member_b2 with the code (a place of their own); the owner marks member_b2 elsewhere
    ("POST", "/api/v1/sessions/<int:session_id>/check-ins"): B_MEMBERS,
    ("POST", "/api/v1/sessions/<int:session_id>/check-outs"): B_MEMBERS,
    ("POST", "/api/v1/sessions/<int:session_id>/delivery"): frozenset({"owner"}),
    ("GET", "/api/v1/me/calendar.ics"): SIGNED_IN,
    ("GET", "/api/v1/me/calendar-feed"): SIGNED_IN,
    ("POST", "/api/v1/me/calendar-feed/reset"): SIGNED_IN,
    ("GET", "/api/v1/wallet"): SIGNED_IN,
    ("POST", "/api/v1/adjustments"): frozenset({"sec_this"}),
    ("POST", "/api/v1/areas"): ADMIN,
    ("GET", "/api/v1/areas"): SIGNED_IN,
    ("GET", "/api/v1/areas/<int:area_id>"): SIGNED_IN,
    ("POST", "/api/v1/deliveries"): B_MEMBERS,  # the team
    ("GET", "/api/v1/deliveries"): SIGNED_IN,
    ("GET", "/api/v1/deliveries/<int:delivery_id>"): B_VIEW,
    ("PUT", "/api/v1/deliveries/<int:delivery_id>/photo"): frozenset({"owner"}),  # recorder
    ("GET", "/api/v1/deliveries/<int:delivery_id>/photo"): B_VIEW,
    ("POST", "/api/v1/deliveries/<int:delivery_id>/ratings"): frozenset({"sec_this"}),
    ("GET", "/api/v1/deliveries/<int:delivery_id>/ratings"): B_VIEW,
    ("POST", "/api/v1/deliveries/<int:delivery_id>/settle"): frozenset({"sec_this"}),
    ("GET", "/api/v1/deliveries/<int:delivery_id>/rating-slips"): frozenset({"sec_this"}),
    ("GET", "/api/v1/deliveries/<int:delivery_id>/settlement"): B_VIEW,
    ("POST", "/api/v1/needs"): NOBODY,  # for resident_b: only B's grid worker (not cast)
    ("GET", "/api/v1/needs"): SIGNED_IN,
    ("GET", "/api/v1/needs/<int:need_id>"): B_VIEW,
    ("POST", "/api/v1/needs/<int:need_id>/cancel"): frozenset({"sec_this"}),
    ("POST", "/api/v1/needs/<int:need_id>/claim"): B_MEMBERS,
    ("POST", "/api/v1/needs/<int:need_id>/dispatch"): frozenset({"sec_this"}),
    ("POST", "/api/v1/needs/<int:need_id>/release"): B_MEMBERS | {"sec_this"},
    ("GET", "/api/v1/notifications"): SIGNED_IN,
    ("POST", "/api/v1/notifications/read"): SIGNED_IN,
    ("POST", "/api/v1/projects"): B_MEMBERS,
    ("GET", "/api/v1/projects"): SIGNED_IN,
    ("GET", "/api/v1/projects/similar"): B_VIEW,  # in community B
    ("GET", "/api/v1/projects/<int:project_id>"): SIGNED_IN,
    ("PATCH", "/api/v1/projects/<int:project_id>"): frozenset({"owner"}),  # a draft
    ("POST", "/api/v1/projects/<int:project_id>/cancel"): frozenset({"owner", "sec_this"}),
    ("POST", "/api/v1/projects/<int:project_id>/complete"): frozenset({"owner", "sec_this"}),
    ("PUT", "/api/v1/projects/<int:project_id>/cover"): frozenset({"owner"}),  # a draft
    ("GET", "/api/v1/projects/<int:project_id>/cover"): SIGNED_IN,
    ("GET", "/api/v1/projects/<int:project_id>/deliveries"): SIGNED_IN,
    ("POST", "/api/v1/projects/<int:project_id>/orders"): NOBODY,  # B's residents
    ("POST", "/api/v1/projects/<int:project_id>/review"): frozenset({"sec_this"}),
    ("POST", "/api/v1/projects/<int:project_id>/submit"): frozenset({"owner"}),
    ("GET", "/api/v1/projects/<int:project_id>/team"): SIGNED_IN,
    ("POST", "/api/v1/projects/<int:project_id>/team"): frozenset({"non_owner"}),
    ("POST", "/api/v1/projects/<int:project_id>/team/<int:user_id>/approve"): frozenset({"owner"}),
    ("POST", "/api/v1/projects/<int:project_id>/team/<int:user_id>/decline"): frozenset({"owner"}),
    ("POST", "/api/v1/projects/<int:project_id>/team/leave"): frozenset({"non_owner"}),
    ("GET", "/api/v1/projects/<int:project_id>/transitions"): B_STAFF | {"owner"},
    ("POST", "/api/v1/projects/<int:project_id>/withdraw"): frozenset({"owner"}),
    ("GET", "/api/v1/rankings"): SIGNED_IN,
    ("GET", "/api/v1/rankings/communities"): ADMIN,  # of B's street
    ("PUT", "/api/v1/rankings/settings/<int:area_id>"): B_STAFF,
    ("GET", "/api/v1/rankings/teams"): B_STAFF,  # of B
    ("PATCH", "/api/v1/ratings/<int:rating_id>"): frozenset({"sec_this"}),  # proxy change
    ("POST", "/api/v1/ratings/<int:rating_id>/reply"): B_MEMBERS,  # both served
    ("POST", "/api/v1/ratings/by-code"): EVERYONE,
    ("GET", "/api/v1/redemptions"): SIGNED_IN,
    ("GET", "/api/v1/redemptions/<int:redemption_id>"): B_STAFF | {"owner"},
    ("POST", "/api/v1/redemptions/<int:redemption_id>/cancel"): frozenset({"owner", "sec_this"}),
    ("POST", "/api/v1/redemptions/<int:redemption_id>/fulfil"): frozenset({"sec_this"}),
    ("POST", "/api/v1/redemptions/<int:redemption_id>/reject"): frozenset({"sec_this"}),
    ("POST", "/api/v1/rewards"): frozenset({"sec_this"}),
    ("GET", "/api/v1/rewards"): SIGNED_IN,
    ("GET", "/api/v1/rewards/<int:reward_id>"): B_VIEW,
    ("PATCH", "/api/v1/rewards/<int:reward_id>"): frozenset({"sec_this"}),
    ("PUT", "/api/v1/rewards/<int:reward_id>/image"): frozenset({"sec_this"}),
    ("GET", "/api/v1/rewards/<int:reward_id>/image"): B_VIEW,
    ("POST", "/api/v1/rewards/<int:reward_id>/redemptions"): B_MEMBERS,
    ("POST", "/api/v1/rewards/<int:reward_id>/retire"): frozenset({"sec_this"}),
    ("GET", "/api/v1/rewards/<int:reward_id>/stock-changes"): frozenset({"sec_this"}),
    ("GET", "/api/v1/settlement-queue"): frozenset({"sec_this", "sec_other"}),
    ("POST", "/api/v1/transactions/<int:tx_id>/reverse"): frozenset({"sec_this"}),
    ("POST", "/api/v1/users"): frozenset({"sec_this", "sec_other", "admin"}),  # no object
    ("GET", "/api/v1/users/<int:user_id>"): B_STAFF | {"owner"},  # member_b: self
    ("GET", "/api/v1/users/<int:user_id>/ledger"): frozenset({"owner", "sec_this"}),
    # annual evaluation: B's secretary runs it; B's members see and object once published
    ("GET", "/api/v1/reports/annual"): B_STAFF,
    ("GET", "/api/v1/reports/communities"): B_STAFF,
    ("POST", "/api/v1/evaluations"): frozenset({"sec_this"}),
    ("GET", "/api/v1/evaluations/<int:evaluation_id>"): B_VIEW,
    ("POST", "/api/v1/evaluations/<int:evaluation_id>/publish"): frozenset({"sec_this"}),
    ("POST", "/api/v1/evaluations/<int:evaluation_id>/finalize"): frozenset({"sec_this"}),
    ("POST", "/api/v1/evaluations/<int:evaluation_id>/objections"): B_MEMBERS,
    ("POST", "/api/v1/objections/<int:objection_id>/answer"): frozenset({"sec_this"}),
    ("GET", "/api/v1/users/<int:user_id>/certificate"): frozenset({"owner", "sec_this"}),
    ("GET", "/reports/annual"): B_STAFF,
    ("GET", "/reports/communities"): B_STAFF,
    ("GET", "/evaluations/<int:evaluation_id>/notice"): B_VIEW,
    # the lifecycle pages: everyone signed in has a list (what they may see); B's
    # secretary runs the steps; B's members object during the notice
    ("GET", "/evaluations"): SIGNED_IN,
    ("POST", "/evaluations/close"): frozenset({"sec_this"}),
    ("GET", "/evaluations/<int:evaluation_id>"): B_VIEW,
    ("POST", "/evaluations/<int:evaluation_id>/publish"): frozenset({"sec_this"}),
    ("POST", "/evaluations/<int:evaluation_id>/finalize"): frozenset({"sec_this"}),
    ("GET", "/evaluations/<int:evaluation_id>/objections/new"): B_MEMBERS,
    ("POST", "/evaluations/<int:evaluation_id>/objections/new"): B_MEMBERS,
    ("POST", "/objections/<int:objection_id>/answer"): frozenset({"sec_this"}),
    ("GET", "/certificates/verify"): EVERYONE,
    ("GET", "/users/<int:user_id>/certificate"): frozenset({"owner", "sec_this"}),
    ("POST", "/api/v1/users/<int:user_id>/roles"): B_STAFF,
    ("DELETE", "/api/v1/users/<int:user_id>/roles/<int:grant_id>"): B_STAFF,
}

# Requests that end the caller's session or token: run after all the others.
RUN_LAST = (
    ("POST", "/logout"),
    ("POST", "/login"),  # signs every caller in again (after its logout)
    ("POST", "/api/v1/me/password"),  # ends the page sessions (the token still works)
    ("DELETE", "/api/v1/auth/token"),
)


class Multipart(dict):
    """A body sent as ``multipart/form-data`` (an upload), not JSON."""


def _form_key() -> str:
    return uuid.uuid4().hex


def _png() -> Multipart:
    return Multipart(file=(io.BytesIO(PNG), "matrix.png"))


PNG = image_bytes("png")


def _registration(actor: str, route: str) -> dict:
    """A registration with a phone number of its own per caller and route."""
    number = ACTORS.index(actor) + (0 if route == "api" else 50)
    return {
        "phone": f"136{number:08d}",
        "display_name": f"报到{actor}",
        "password": PASSWORD,
        "role": "member",
    }


class ReusableFile(io.BytesIO):
    """An upload a form may be sent with more than once (``test_form_nul`` posts the
    same form once per field): the test client's close rewinds it instead."""

    def close(self) -> None:
        self.seek(0)


def _people_csv(actor: str) -> bytes:
    """A file of one new resident (a dry run of it writes nobody)."""
    return f"姓名,手机号\n矩阵{actor},13599990000\n".encode()


def _attendance_body(o: dict, a: str) -> tuple[dict, dict]:
    """The owner marks member_b2 by ``user_id``; everyone else sends the code of the
    running session in which member_b2 holds a place (computed at request time)."""

    if a == "owner":
        return {"session_id": o["sessions"]["mark"]}, {"user_id": o["member_b2"].id}
    overrides, body = _code_body(o, "code")
    return overrides, {"code": body["code"]}


def _code_body(o: dict, key: str) -> tuple[dict, dict]:
    """The current check-in code of the running session ``key`` (at request time)."""
    from volunteer_market.services import sessions as session_service

    session = session_service.get_session(o["sessions"][key])
    code = session_service.current_code(o["session_owner"], session).code
    return {"session_id": session.id}, {"code": code, "action": "in"}


# Every route an allowed caller reaches with a request body (and every GET with required
# query arguments) is sent a VALID one, built from objects of community B, with a fresh
# object of its own where a success changes state (so no route's success shapes another
# route's outcome). ``(method, rule) -> f(objects, actor) -> (url_overrides, body)``;
# for a GET the body is the query string, for a page POST the form (CSRF token added),
# for the API the JSON (or a :class:`Multipart` upload). Routes not listed take no
# input: they are sent none, which is their valid request.
BODIES: dict[tuple[str, str], object] = {
    # --- pages -----------------------------------------------------------------------------
    ("POST", "/login"): lambda o, a: (  # runs after /logout (see RUN_LAST)
        {},
        {"username": LOGIN_AS.get(a, "resident_b"), "password": PASSWORD},
    ),
    ("POST", "/profile"): lambda o, a: ({}, {"action": "language", "locale": "zh_CN"}),
    ("POST", "/text-size"): lambda o, a: ({}, {"size": "large", "next": "/"}),
    ("POST", "/imports"): lambda o, a: (
        {},
        {
            "kind": "residents",
            "community_id": str(o["area_id"]),
            "dry_run": "1",
            "file": (ReusableFile(_people_csv(a)), "people.csv"),
        },
    ),
    ("GET", "/imports/template"): lambda o, a: ({}, {"kind": "members", "format": "csv"}),
    ("POST", "/register"): lambda o, a: (
        {},
        {**_registration(a, "page"), "community_id": str(o["area_id"])},
    ),
    ("GET", "/register/<token>"): lambda o, a: ({"token": o["registration_token"]}, {}),
    ("POST", "/registrations/<int:registration_id>/<string:verb>"): lambda o, a: (
        {"registration_id": o["registration_ids"]["page"], "verb": "approve"},
        {},
    ),
    ("POST", "/admin/areas"): lambda o, a: (
        {},
        {"name": f"表单网格{a}", "kind": "grid", "parent_id": o["area_id"]},
    ),
    ("POST", "/admin/users"): lambda o, a: (
        {},
        {"username": f"form_{a}", "password": PASSWORD, "display_name": f"表单用户{a}"},
    ),
    # grant a role to a fresh member of B; the second allowed caller grants another role
    ("POST", "/admin/users/<int:user_id>"): lambda o, a: (
        {"user_id": o["member_b4"]},
        {
            "action": "grant",
            "role": "grid_worker" if a == "admin" else "resident",
            "area_id": o["grid_b1"],
        },
    ),
    # a proxy rating of a fresh unrated delivery
    ("POST", "/deliveries/<int:delivery_id>/ratings"): lambda o, a: (
        {"delivery_id": o["page_unrated_delivery_id"]},
        {"score": "4", "comment": "代评", "on_behalf_of": str(o["resident_b"])},
    ),
    # a delivery awaiting ratings of its own, so no other route settles it first
    ("GET", "/deliveries/<int:delivery_id>/slips"): lambda o, a: (
        {"delivery_id": o["page_slips_delivery_id"]},
        {},
    ),
    ("POST", "/deliveries/<int:delivery_id>/slips"): lambda o, a: (
        {"delivery_id": o["page_slips_delivery_id"]},
        {},
    ),
    ("POST", "/ratings/<int:rating_id>/report"): lambda o, a: (
        {"rating_id": o["page_report_rating_id"]},
        {"reason": "矩阵举报"},
    ),
    ("POST", "/ratings/<int:rating_id>/hide"): lambda o, a: (
        {"rating_id": o["page_hide_rating_id"]},
        {"reason": "矩阵隐藏"},
    ),
    ("POST", "/ratings/<int:rating_id>/unhide"): lambda o, a: (
        {"rating_id": o["page_unhide_rating_id"]},
        {},
    ),
    ("POST", "/comment-reports/<int:report_id>/dismiss"): lambda o, a: (
        {"report_id": o["page_dismiss_report_id"]},
        {},
    ),
    ("POST", "/callbacks/<int:rating_id>"): lambda o, a: (
        {"rating_id": o["page_callback_rating_id"]},
        {"outcome": "confirmed"},
    ),
    ("POST", "/appeals/new"): lambda o, a: (
        {},
        {"rating_id": str(o["page_reply_rating_id"]), "reason": "矩阵申诉"},
    ),
    ("POST", "/appeals/<int:appeal_id>/decide"): lambda o, a: (
        {},
        {"decision": "dismissed", "reason": "矩阵裁决"},
    ),
    # a fresh delivery past its rating window that nobody rated
    ("POST", "/deliveries/<int:delivery_id>/settle"): lambda o, a: (
        {"delivery_id": o["page_settle_delivery_id"]},
        {"confirm_unrated": "1"},
    ),
    ("POST", "/ledger/members/<int:user_id>/adjust"): lambda o, a: (
        {},
        {"amount": "5", "reason": "矩阵测试", "form_key": _form_key()},
    ),
    ("POST", "/ledger/transactions/<int:tx_id>/reverse"): lambda o, a: (
        {"tx_id": o["page_tx_id"]},
        {"reason": "误加"},
    ),
    ("POST", "/needs/<int:need_id>/<string:verb>"): lambda o, a: (
        {"need_id": o["page_cancel_need_id"], "verb": "cancel"},
        {},
    ),
    # B's community: only B's residents and grid workers may post there (none in the cast)
    ("POST", "/needs/new"): lambda o, a: (
        {},
        {
            "community_id": str(o["area_id"]),
            "title": "代买菜",
            "category": "errand",
            "on_behalf_of": str(o["resident_b"]),
        },
    ),
    ("POST", "/projects/<int:project_id>/action"): lambda o, a: (
        {"project_id": o["page_cancel_project_ids"][a == "owner"]},
        {"action": "cancel", "comment": "矩阵测试"},
    ),
    # a session of its own for each allowed caller (one member serves in one at a time)
    ("POST", "/projects/<int:project_id>/deliveries/new"): lambda o, a: (
        {},
        {
            "started_at": o["page_when"][a == "owner"][0],
            "ended_at": o["page_when"][a == "owner"][1],
            f"participant_{o['member_b2'].id}": "1",
            f"hours_{o['member_b2'].id}": "2",
            "beneficiaries": str(o["resident_b"]),
        },
    ),
    # the owner's draft (only drafts and projects sent back are edited)
    ("GET", "/projects/<int:project_id>/edit"): lambda o, a: (
        {"project_id": o["edit_project_id"]},
        {},
    ),
    ("POST", "/projects/<int:project_id>/edit"): lambda o, a: (
        {"project_id": o["edit_project_id"]},
        {"title": "义务理发", "description": "每月为老人免费理发。", "category": "elderly"},
    ),
    ("POST", "/projects/<int:project_id>/order"): lambda o, a: ({}, {"description": "预约"}),
    ("POST", "/projects/<int:project_id>/review"): lambda o, a: (
        {"project_id": o["page_submitted_project_id"]},
        {"decision": "approve", "comment": ""},
    ),
    # the owner answers a pending request of member_b3
    ("POST", "/projects/<int:project_id>/team/<int:user_id>/<string:verb>"): lambda o, a: (
        {"project_id": o["pending_project_ids"][0], "user_id": o["member_b3"], "verb": "approve"},
        {},
    ),
    ("POST", "/projects/<int:project_id>/team/<string:verb>"): lambda o, a: (
        {"project_id": o["page_join_project_id"], "verb": "join"},
        {},
    ),
    ("POST", "/projects/new"): lambda o, a: (
        {},
        {
            "community_id": str(o["area_id"]),
            "title": f"表单项目{a}",
            "description": "测试项目。",
            "category": "elderly",
            "mode": "event",
            "capacity": "3",
            "planned_hours": "2",
        },
    ),
    ("POST", "/rankings/settings/<int:area_id>"): lambda o, a: ({}, {"exposure": "full"}),
    # every caller rates with a one-time code of their own (codes work without a session)
    ("POST", "/rate"): lambda o, a: (
        {},
        {"code": o["codes"]["page"][a].code, "step": "submit", "score": "5", "comment": ""},
    ),
    ("GET", "/rate/<token>"): lambda o, a: ({"token": o["codes"]["token"][a].token}, {}),
    ("POST", "/rate/<token>"): lambda o, a: (
        {"token": o["codes"]["token"][a].token},
        {"step": "submit", "score": "5", "comment": ""},
    ),
    ("POST", "/ratings/<int:rating_id>/edit"): lambda o, a: (
        {"rating_id": o["open_rating_id"]},
        {"score": "4", "comment": "改评"},
    ),
    # a rating of a delivery member_b2 served in (the API's reply takes the other one)
    ("POST", "/ratings/<int:rating_id>/reply"): lambda o, a: (
        {"rating_id": o["page_reply_rating_id"]},
        {"text": "谢谢"},
    ),
    ("POST", "/redemptions/<int:redemption_id>/cancel"): lambda o, a: (
        {"redemption_id": o["page_cancel_redemption_ids"][a == "owner"]},
        {"reason": "不要了"},
    ),
    ("POST", "/redemptions/<int:redemption_id>/reject"): lambda o, a: (
        {"redemption_id": o["page_reject_redemption_id"]},
        {"reason": "库存不足"},
    ),
    ("POST", "/rewards/<int:reward_id>/edit"): lambda o, a: (
        {"reward_id": o["page_edit_reward_id"]},
        {
            "name": "矩阵编辑",
            "description": "",
            "sponsor": "",
            "cost": "10",
            "limit_period": "all",
            "is_active": "1",
        },
    ),
    ("POST", "/rewards/<int:reward_id>/redeem"): lambda o, a: (
        {"reward_id": o["page_redeem_reward_id"]},
        {"quantity": "1", "form_key": _form_key()},
    ),
    ("POST", "/rewards/<int:reward_id>/retire"): lambda o, a: (
        {"reward_id": o["page_retire_reward_id"]},
        {},
    ),
    ("POST", "/rewards/fulfil"): lambda o, a: (
        {},
        {
            "redemption_id": str(o["page_fulfil_redemption"].redemption.id),
            "code": o["page_fulfil_redemption"].pickup_code,
        },
    ),
    ("POST", "/rewards/new"): lambda o, a: (
        {},
        {
            "area_id": str(o["area_id"]),
            "name": f"表单奖品{a}",
            "description": "",
            "sponsor": "",
            "cost": "5",
            "limit_period": "all",
            "is_active": "1",
        },
    ),
    # --- API -------------------------------------------------------------------------------
    ("POST", "/api/v1/auth/token"): lambda o, a: (
        {},
        {"username": LOGIN_AS.get(a, "resident_b"), "password": PASSWORD},
    ),
    ("POST", "/api/v1/imports"): lambda o, a: (
        {},
        Multipart(
            file=(io.BytesIO(_people_csv(a)), "people.csv"),
            kind="residents",
            community_id=str(o["area_id"]),
            dry_run="true",
        ),
    ),
    ("GET", "/api/v1/imports/template"): lambda o, a: ({}, {"kind": "residents"}),
    ("POST", "/api/v1/registrations"): lambda o, a: (
        {},
        {**_registration(a, "api"), "community_id": o["area_id"]},
    ),
    ("POST", "/api/v1/registrations/<int:registration_id>/approve"): lambda o, a: (
        {"registration_id": o["registration_ids"]["approve"]},
        {},
    ),
    ("POST", "/api/v1/registrations/<int:registration_id>/reject"): lambda o, a: (
        {"registration_id": o["registration_ids"]["reject"]},
        {"reason": "信息不全"},
    ),
    ("POST", "/api/v1/me/password"): lambda o, a: (
        {},
        {"old_password": PASSWORD, "new_password": PASSWORD},
    ),
    # a fresh member of B (resetting member_b's password would lock the owner out)
    ("POST", "/api/v1/users/<int:user_id>/password-reset"): lambda o, a: (
        {"user_id": o["reset_user_id"]},
        {"password": "reset-by-staff-1"},
    ),
    ("POST", "/api/v1/adjustments"): lambda o, a: (
        {},
        {"user_id": o["user_id"], "amount": 5, "reason": "矩阵测试"},
    ),
    ("POST", "/api/v1/areas"): lambda o, a: (
        {},
        {"name": f"新网格{a}", "kind": "grid", "parent_id": o["area_id"]},
    ),
    # --- sessions ---------------------------------------------------------------------------
    ("POST", "/projects/<int:project_id>/sessions"): lambda o, a: (
        {},
        {
            "starts_at": (utcnow() + timedelta(days=4)).astimezone(ZONE).strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (utcnow() + timedelta(days=4, hours=2))
            .astimezone(ZONE)
            .strftime("%Y-%m-%dT%H:%M"),
            "place": "矩阵活动室",
            "slots": "5",
        },
    ),
    ("POST", "/sessions/<int:session_id>/<string:verb>"): lambda o, a: (
        {"session_id": o["sessions"]["page_open"], "verb": "signup"},
        {},
    ),
    ("POST", "/sessions/<int:session_id>/check-in"): lambda o, a: _code_body(o, "page_code"),
    ("GET", "/calendar/<string:feed>.ics"): lambda o, a: ({"feed": o["feed"]}, {}),
    ("POST", "/api/v1/projects/<int:project_id>/sessions"): lambda o, a: (
        {},
        {
            "starts_at": (utcnow() + timedelta(days=3)).isoformat(),
            "ends_at": (utcnow() + timedelta(days=3, hours=2)).isoformat(),
            "place": "矩阵活动室",
            "slots": 5,
        },
    ),
    ("POST", "/api/v1/sessions/<int:session_id>/cancel"): lambda o, a: (
        {"session_id": o["sessions"]["cancel"]},
        {},
    ),
    ("DELETE", "/api/v1/sessions/<int:session_id>/signups"): lambda o, a: (
        {"session_id": o["sessions"]["signed"]},
        {},
    ),
    ("POST", "/api/v1/sessions/<int:session_id>/check-ins"): _attendance_body,
    ("POST", "/api/v1/sessions/<int:session_id>/check-outs"): _attendance_body,
    ("POST", "/api/v1/sessions/<int:session_id>/delivery"): lambda o, a: (
        {"session_id": o["sessions"]["finished"]},
        {"beneficiaries": [o["resident_b"]]},
    ),
    ("POST", "/api/v1/deliveries"): lambda o, a: (
        {},
        {
            "project_id": o["project_id"],
            **o["when"][a == "owner"],
            "participants": [{"user_id": o["member_b2"].id, "hours": 2}],
            "beneficiaries": [o["resident_b"]],
        },
    ),
    # a delivery still awaiting ratings (B's first one is settled: its photo is final)
    ("PUT", "/api/v1/deliveries/<int:delivery_id>/photo"): lambda o, a: (
        {"delivery_id": o["photo_delivery_id"]},
        _png(),
    ),
    # a fresh delivery whose only beneficiary has not rated: a proxy rating for them
    ("POST", "/api/v1/deliveries/<int:delivery_id>/ratings"): lambda o, a: (
        {"delivery_id": o["unrated_delivery_id"]},
        {"score": 4, "comment": "代评", "on_behalf_of": o["resident_b"]},
    ),
    ("GET", "/api/v1/deliveries/<int:delivery_id>/rating-slips"): lambda o, a: (
        {"delivery_id": o["slips_delivery_id"]},
        {},
    ),
    ("POST", "/api/v1/deliveries/<int:delivery_id>/settle"): lambda o, a: (
        {"delivery_id": o["settle_delivery_id"]},
        {"confirm_unrated": True},
    ),
    ("POST", "/api/v1/needs"): lambda o, a: (
        {},
        {
            "community_id": o["area_id"],
            "title": "代买菜",
            "category": "errand",
            "on_behalf_of": o["resident_b"],
        },
    ),
    ("POST", "/api/v1/needs/<int:need_id>/cancel"): lambda o, a: (
        {"need_id": o["cancel_need_id"]},
        {},
    ),
    ("POST", "/api/v1/needs/<int:need_id>/claim"): lambda o, a: (
        {"need_id": o["claim_need_ids"][a == "owner"]},
        {},
    ),
    ("POST", "/api/v1/needs/<int:need_id>/dispatch"): lambda o, a: (
        {"need_id": o["open_need_id"]},
        {"member_id": o["member_b2"].id},
    ),
    # a need of its own for each allowed caller: two needs member_b2 claimed (its claimer
    # and the secretary may release them), one dispatched to B's project (its owner may)
    ("POST", "/api/v1/needs/<int:need_id>/release"): lambda o, a: (
        {"need_id": o["release_need_ids"].get(a, o["release_need_ids"]["non_owner"])},
        {},
    ),
    ("POST", "/api/v1/notifications/read"): lambda o, a: ({}, {"ids": None}),
    ("POST", "/api/v1/projects"): lambda o, a: (
        {},
        {
            "community_id": o["area_id"],
            "title": f"矩阵项目{a}",
            "description": "测试项目。",
            "category": "elderly",
            "mode": "event",
            "capacity": 3,
            "planned_hours": 2,
        },
    ),
    ("GET", "/api/v1/projects/similar"): lambda o, a: (
        {},
        {"community_id": o["area_id"], "title": "义务理发"},
    ),
    ("PATCH", "/api/v1/projects/<int:project_id>"): lambda o, a: (
        {"project_id": o["edit_project_id"]},
        {"title": "义务理发"},
    ),
    ("POST", "/api/v1/projects/<int:project_id>/cancel"): lambda o, a: (
        {"project_id": o["cancel_project_ids"][a == "owner"]},
        {"comment": "矩阵测试"},
    ),
    ("POST", "/api/v1/projects/<int:project_id>/complete"): lambda o, a: (
        {"project_id": o["complete_project_ids"][a == "owner"]},
        {},
    ),
    ("PUT", "/api/v1/projects/<int:project_id>/cover"): lambda o, a: (
        {"project_id": o["edit_project_id"]},
        _png(),
    ),
    ("POST", "/api/v1/projects/<int:project_id>/orders"): lambda o, a: (
        {},
        {"description": "预约"},
    ),
    ("POST", "/api/v1/projects/<int:project_id>/review"): lambda o, a: (
        {"project_id": o["submitted_project_id"]},
        {"decision": "approve"},
    ),
    ("POST", "/api/v1/projects/<int:project_id>/team"): lambda o, a: (
        {"project_id": o["join_project_id"]},
        {},
    ),
    ("POST", "/api/v1/projects/<int:project_id>/submit"): lambda o, a: (
        {"project_id": o["submit_project_id"]},
        {},
    ),
    ("POST", "/api/v1/projects/<int:project_id>/withdraw"): lambda o, a: (
        {"project_id": o["withdraw_project_id"]},
        {},
    ),
    # each answer on a pending request of its own (member_b3 asked to join three projects)
    ("POST", "/api/v1/projects/<int:project_id>/team/<int:user_id>/approve"): lambda o, a: (
        {"project_id": o["pending_project_ids"][1], "user_id": o["member_b3"]},
        {},
    ),
    ("POST", "/api/v1/projects/<int:project_id>/team/<int:user_id>/decline"): lambda o, a: (
        {"project_id": o["pending_project_ids"][2], "user_id": o["member_b3"]},
        {},
    ),
    # a fresh project in review with member_b2 on the team (see GATE_PASSED_STATE_REFUSED)
    ("POST", "/api/v1/projects/<int:project_id>/team/leave"): lambda o, a: (
        {"project_id": o["leave_project_id"]},
        {},
    ),
    ("GET", "/api/v1/rankings/communities"): lambda o, a: ({}, {"area_id": o["street_id"]}),
    ("GET", "/api/v1/reports/annual"): lambda o, a: (
        {},
        {"area_id": o["area_id"], "year": o["year"]},
    ),
    ("GET", "/api/v1/reports/communities"): lambda o, a: (
        {},
        {"area_id": o["area_id"], "year": o["year"]},
    ),
    ("GET", "/reports/annual"): lambda o, a: ({}, {"area_id": o["area_id"], "year": o["year"]}),
    ("GET", "/reports/communities"): lambda o, a: (
        {},
        {"area_id": o["area_id"], "year": o["year"]},
    ),
    # a year of B nobody closed yet; a closed one to publish; one whose notice ended
    ("POST", "/api/v1/evaluations"): lambda o, a: (
        {},
        {"community_id": o["area_id"], "year": o["year"] - 1},
    ),
    ("POST", "/api/v1/evaluations/<int:evaluation_id>/publish"): lambda o, a: (
        {"evaluation_id": o["closed_evaluation_id"]},
        {},
    ),
    ("POST", "/api/v1/evaluations/<int:evaluation_id>/finalize"): lambda o, a: (
        {"evaluation_id": o["ended_evaluation_id"]},
        {},
    ),
    ("POST", "/api/v1/evaluations/<int:evaluation_id>/objections"): lambda o, a: (
        {},
        {"text": "矩阵异议"},
    ),
    ("POST", "/api/v1/objections/<int:objection_id>/answer"): lambda o, a: (
        {},
        {"decision": "dismissed", "answer": "矩阵答复"},
    ),
    ("GET", "/api/v1/users/<int:user_id>/certificate"): lambda o, a: ({}, {"year": o["year"]}),
    ("GET", "/users/<int:user_id>/certificate"): lambda o, a: ({}, {"year": o["year"]}),
    # the pages' steps, each on evaluations of its own (see _evaluations)
    ("POST", "/evaluations/close"): lambda o, a: (
        {},
        {"community_id": str(o["area_id"]), "year": str(o["year"] - 5), "confirm": "1"},
    ),
    ("POST", "/evaluations/<int:evaluation_id>/publish"): lambda o, a: (
        {"evaluation_id": o["page_closed_evaluation_id"]},
        {"notice_days": "7", "confirm": "1"},
    ),
    ("POST", "/evaluations/<int:evaluation_id>/finalize"): lambda o, a: (
        {"evaluation_id": o["page_ended_evaluation_id"]},
        {"confirm": "1"},
    ),
    ("POST", "/evaluations/<int:evaluation_id>/objections/new"): lambda o, a: (
        {},
        {"text": "页面异议"},
    ),
    ("POST", "/objections/<int:objection_id>/answer"): lambda o, a: (
        {"objection_id": o["page_objection_id"]},
        {"decision": "dismissed", "answer": "页面答复"},
    ),
    ("PUT", "/api/v1/rankings/settings/<int:area_id>"): lambda o, a: ({}, {"exposure": "full"}),
    ("GET", "/api/v1/rankings/teams"): lambda o, a: ({}, {"area_id": o["area_id"]}),
    ("POST", "/api/v1/appeals"): lambda o, a: (
        {},
        {"rating_id": o["open_rating_id"], "reason": "矩阵申诉"},
    ),
    ("POST", "/api/v1/appeals/<int:appeal_id>/decide"): lambda o, a: (
        {},
        {"decision": "dismissed", "reason": "矩阵裁决"},
    ),
    ("GET", "/api/v1/integrity/signals"): lambda o, a: ({}, {"community_id": o["area_id"]}),
    ("POST", "/api/v1/ratings/<int:rating_id>/reports"): lambda o, a: (
        {"rating_id": o["report_rating_id"]},
        {"reason": "矩阵举报"},
    ),
    ("GET", "/api/v1/comment-reports"): lambda o, a: ({}, {"community_id": o["area_id"]}),
    ("POST", "/api/v1/comment-reports/<int:report_id>/dismiss"): lambda o, a: (
        {"report_id": o["dismiss_report_id"]},
        {},
    ),
    ("POST", "/api/v1/ratings/<int:rating_id>/hide"): lambda o, a: (
        {"rating_id": o["hide_rating_id"]},
        {"reason": "矩阵隐藏"},
    ),
    ("POST", "/api/v1/ratings/<int:rating_id>/unhide"): lambda o, a: (
        {"rating_id": o["unhide_rating_id"]},
        {},
    ),
    ("GET", "/api/v1/callbacks"): lambda o, a: ({}, {"community_id": o["area_id"]}),
    ("POST", "/api/v1/ratings/<int:rating_id>/callbacks"): lambda o, a: (
        {"rating_id": o["callback_rating_id"]},
        {"outcome": "confirmed"},
    ),
    ("GET", "/api/v1/communities/<int:community_id>/points-policy"): lambda o, a: (
        {"community_id": o["area_id"]},
        {},
    ),
    ("PUT", "/api/v1/communities/<int:community_id>/points-policy"): lambda o, a: (
        {"community_id": o["area_id"]},
        {"base_rate": 11 + ACTORS.index(a)},
    ),
    ("GET", "/api/v1/dashboards/communities/<int:community_id>"): lambda o, a: (
        {"community_id": o["area_id"]},
        {},
    ),
    ("GET", "/api/v1/communities/<int:community_id>/webhook"): lambda o, a: (
        {"community_id": o["area_id"]},
        {},
    ),
    ("PUT", "/api/v1/communities/<int:community_id>/webhook"): lambda o, a: (
        {"community_id": o["area_id"]},
        {"url": f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=matrix-{a}"},
    ),
    ("PUT", "/api/v1/me/notification-channels"): lambda o, a: ({}, {"channels": ["in_app"]}),
    ("POST", "/profile/notification-channels"): lambda o, a: ({}, {"email": ""}),
    ("POST", "/communities/<int:community_id>/settings/webhook"): lambda o, a: (
        {"community_id": o["area_id"]},
        {"url": f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=page-{a}"},
    ),
    ("GET", "/communities/<int:community_id>/dashboard"): lambda o, a: (
        {"community_id": o["area_id"]},
        {},
    ),
    ("GET", "/communities/<int:community_id>/settings"): lambda o, a: (
        {"community_id": o["area_id"]},
        {},
    ),
    ("POST", "/communities/<int:community_id>/settings/points-policy"): lambda o, a: (
        {"community_id": o["area_id"]},
        {"base_rate": str(30 + ACTORS.index(a))},
    ),
    # a rating of a delivery not yet settled (one of its two beneficiaries rated)
    ("PATCH", "/api/v1/ratings/<int:rating_id>"): lambda o, a: (
        {"rating_id": o["open_rating_id"]},
        {"score": 3},
    ),
    ("POST", "/api/v1/ratings/<int:rating_id>/reply"): lambda o, a: (
        {"rating_id": o["open_rating_id"]},
        {"text": "谢谢"},
    ),
    ("POST", "/api/v1/ratings/by-code"): lambda o, a: (
        {},
        {"code": o["codes"]["api"][a].code, "score": 5},
    ),
    ("POST", "/api/v1/redemptions/<int:redemption_id>/cancel"): lambda o, a: (
        {"redemption_id": o["cancel_redemption_ids"][a == "owner"]},
        {"reason": "不要了"},
    ),
    ("POST", "/api/v1/redemptions/<int:redemption_id>/fulfil"): lambda o, a: (
        {"redemption_id": o["fulfil_redemption"].redemption.id},
        {"pickup_code": o["fulfil_redemption"].pickup_code},
    ),
    ("POST", "/api/v1/redemptions/<int:redemption_id>/reject"): lambda o, a: (
        {"redemption_id": o["reject_redemption_id"]},
        {"reason": "库存不足"},
    ),
    ("POST", "/api/v1/rewards"): lambda o, a: (
        {},
        {"area_id": o["area_id"], "name": f"矩阵奖品{a}", "cost": 5},
    ),
    ("PATCH", "/api/v1/rewards/<int:reward_id>"): lambda o, a: ({}, {"description": "矩阵"}),
    ("PUT", "/api/v1/rewards/<int:reward_id>/image"): lambda o, a: ({}, _png()),
    ("POST", "/api/v1/rewards/<int:reward_id>/redemptions"): lambda o, a: (
        {"reward_id": o["fresh_reward_id"]},
        {"quantity": 1},
    ),
    ("POST", "/api/v1/rewards/<int:reward_id>/retire"): lambda o, a: (
        {"reward_id": o["retire_reward_id"]},
        {},
    ),
    ("POST", "/api/v1/transactions/<int:tx_id>/reverse"): lambda o, a: (
        {"tx_id": o["fresh_tx_id"]},
        {"reason": "误加"},
    ),
    ("POST", "/api/v1/users"): lambda o, a: (
        {},
        {"username": f"new_{a}", "password": PASSWORD, "display_name": f"新用户{a}"},
    ),
    # a fresh member of B (granting member_b a role would change the other routes); the
    # second allowed caller grants another role (the same grant twice is 409)
    ("POST", "/api/v1/users/<int:user_id>/roles"): lambda o, a: (
        {"user_id": o["member_b3"]},
        {"role": "grid_worker" if a == "admin" else "resident", "area_id": o["grid_b1"]},
    ),
    # a fresh user of B with two grants: each allowed caller revokes one of its own
    ("DELETE", "/api/v1/users/<int:user_id>/roles/<int:grant_id>"): lambda o, a: (
        {"user_id": o["revoke_user_id"], "grant_id": o["revoke_grant_ids"][a == "admin"]},
        {},
    ),
}


# The only requests that cannot succeed for a caller the gate lets through, with the
# status they must get. Leaving a team is open to whoever may see the project (its own
# membership is the only condition): B's staff see the project in review but are on no
# team (a secretary or an admin joins none), so theirs is a 409 "not on this team"; the
# owner is on the team for good (DESIGN: "team: owner + members"), so theirs is a 409
# "the owner cannot leave; cancel the project instead". For the same reason the owner
# asking to join their own team is a 409 "you lead this project", as for an active
# member who asks again (tests/projects/test_teams_api.py::test_who_may_ask_to_join).
GATE_PASSED_STATE_REFUSED: dict[tuple[str, str], dict[str, int]] = {
    ("POST", "/api/v1/projects/<int:project_id>/team/leave"): {
        "owner": 409,
        "sec_this": 409,
        "admin": 409,
    },
    ("POST", "/api/v1/projects/<int:project_id>/team"): {"owner": 409},
    ("POST", "/projects/<int:project_id>/team/<string:verb>"): {"owner": 409},  # join
}

_PLACEHOLDER = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")


def url_map_keys(app) -> set[tuple[str, str]]:
    keys = set()
    for rule in app.url_map.iter_rules():
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            keys.add((method, rule.rule))
    return keys - SKIP


def test_every_route_is_in_the_matrix(app):
    keys = url_map_keys(app)
    missing = sorted(keys - MATRIX.keys(), key=lambda k: (k[1], k[0]))
    stale = sorted(MATRIX.keys() - keys, key=lambda k: (k[1], k[0]))
    assert not missing, "routes missing from MATRIX (add one line each):\n" + "\n".join(
        f'    ("{m}", "{r}"): ...,' for m, r in missing
    )
    assert not stale, "MATRIX lines for routes that no longer exist:\n" + "\n".join(
        f"    {m} {r}" for m, r in stale
    )


class IsolatedClient(FlaskClient):
    """Every request in a fresh context (no ``g``/session leaking between requests)."""

    def open(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture
def app_config(app_config, tmp_path):
    return {**app_config, "RATELIMIT_ENABLED": False, "UPLOAD_FOLDER": str(tmp_path / "up")}


def _stored_png() -> str:
    from volunteer_market.http.uploads import upload_dir
    from volunteer_market.services import uploads

    return uploads.store_image(PNG, upload_dir(), "file")


def _registrations(world) -> dict:
    """Pending registrations of B for the deciding routes, and a status link."""
    from volunteer_market.services import registrations

    made = {}
    for i, route in enumerate(("approve", "reject", "page", "status")):
        with atomic():
            registration, token = registrations.register(
                phone=f"1370000{i:04d}",
                display_name=f"报到{route}",
                password=PASSWORD,
                community=world.community_b,
                role=Role.RESIDENT,
            )
        made[route] = (registration.id, token)
    return {
        "registration_ids": {route: rid for route, (rid, _t) in made.items()},
        "registration_token": made["status"][1],
        "registration_id": made["status"][0],
    }


def _import_job(world) -> int:
    """A dry run of secretary_b's (only its starter reads a job)."""
    from volunteer_market.models import ImportKind
    from volunteer_market.services import imports

    with atomic():
        return imports.start(
            world.secretary_b,
            kind=ImportKind.RESIDENTS,
            community=world.community_b,
            data=_people_csv("job"),
            filename="people.csv",
            dry_run=True,
        ).id


def _approved(world, title: str, team=()) -> int:
    return make_project(
        world.member_b, world.community_b, status="approved", team=list(team), title=title
    ).id


def _sessions(world, project, member_b2) -> dict[str, int]:
    """Sessions of B's project: an open one, one where both B members hold a place (to
    cancel), one to cancel, two running ones where member_b2 holds a place (by code, and
    marked by the owner) and a finished one with member_b2 marked present (to deliver)."""
    from volunteer_market.services import sessions as session_service

    member_b, now = world.member_b, utcnow()

    def schedule(start: timedelta, at=None) -> int:
        with atomic():
            return session_service.create_session(
                member_b,
                project.id,
                starts_at=now + start,
                ends_at=now + start + timedelta(hours=1),
                place="矩阵活动室",
                slots=5,
                now=at or now,
            ).id

    ids = {
        "open": schedule(timedelta(days=2)),
        "signed": schedule(timedelta(days=2, hours=2)),
        "cancel": schedule(timedelta(days=2, hours=4)),
        "code": schedule(-timedelta(minutes=10)),
        "mark": schedule(-timedelta(minutes=20)),
        "page_open": schedule(timedelta(days=2, hours=6)),
        "page_code": schedule(-timedelta(minutes=15)),
    }
    past = now - timedelta(days=5, hours=14)
    ids["finished"] = schedule(-timedelta(days=5, hours=12), at=past)
    with atomic():
        for user in (member_b, member_b2):
            session_service.signup(user, ids["signed"])
        for key in ("code", "mark"):
            session_service.signup(member_b2, ids[key], now=now - timedelta(hours=1))
        for user in (member_b, member_b2):
            session_service.signup(user, ids["page_code"], now=now - timedelta(hours=1))
        session_service.signup(member_b2, ids["finished"], now=past)
        session_service.check_in(
            member_b, ids["finished"], user_id=member_b2.id, now=past + timedelta(hours=2)
        )
    return ids


def _objects(world) -> dict[str, object]:
    """Objects of community B (owned by member_b) for every URL placeholder, and the
    fresh objects of B the routes in :data:`BODIES` change."""
    from volunteer_market.services import appeals as appeal_service
    from volunteer_market.services import deliveries as delivery_service
    from volunteer_market.services import needs as need_service
    from volunteer_market.services import projects as project_service
    from volunteer_market.services import ratings as rating_service
    from volunteer_market.services import rewards as reward_service
    from volunteer_market.services import users as user_service

    b, member_b, resident_b = world.community_b, world.member_b, world.resident_b
    member_b2 = make_user("member_b2", (Role.MEMBER, b))
    project = make_project(member_b, b, status="approved", team=[])
    add_team_member(project, member_b2)  # non-owner member is on the team
    need = make_need(resident_b, b)
    recorded = make_delivery(project, member_b, beneficiaries=[resident_b])
    delivery = recorded.delivery
    give_points(member_b, 200, b)
    tx = give_points(member_b, 50, b)
    reward = make_reward(b)
    # pictures, so that reading them is a real permission check, not a 404 for everyone
    with atomic():
        delivery_service.set_photo(member_b, delivery, _stored_png())
        reward_service.set_image(None, reward, _stored_png())
        project.cover_path = _stored_png()  # (set_cover takes drafts only)
    issued = redeem(member_b, reward)
    with atomic():
        rated = rating_service.rate(resident_b, delivery, 5, "很好")
    with atomic():
        appeal = appeal_service.file_appeal(member_b, rating_id=rated.rating.id, reason="申诉")
    grant_id = member_b.grants[0].id
    # Fresh objects of B for the routes whose allowed caller changes their state.
    resident_b2 = make_user("resident_b2", (Role.RESIDENT, world.areas["grid_b1"]))
    member_b3 = make_user("member_b3", (Role.MEMBER, b))
    member_b4 = make_user("member_b4", (Role.MEMBER, b))
    revoke_user = make_user("member_b5", (Role.MEMBER, b), (Role.RESIDENT, world.areas["grid_b1"]))

    def unrated(hours_ago: float, now=None):
        return make_delivery(
            project, member_b, beneficiaries=[resident_b], hours_ago=hours_ago, now=now
        ).delivery

    def half_rated(hours_ago: float):
        d = make_delivery(
            project,
            member_b,
            participants=[(member_b, 2), (member_b2, 2)],
            beneficiaries=[resident_b, resident_b2],
            hours_ago=hours_ago,
        ).delivery
        with atomic():
            return rating_service.rate(resident_b, d, 4, "不错").rating

    open_rating = half_rated(13)
    page_reply_rating = half_rated(17)
    moderation = _moderation(world, member_b2, half_rated, unrated)
    # one-time rating codes, one per caller for each of the three code routes: a resident
    # of B per caller, beneficiaries of three deliveries
    raters = [
        make_user(f"rater_b{i}", (Role.RESIDENT, world.areas["grid_b1"]))
        for i in range(len(ACTORS))
    ]
    codes = {}
    for route, hours_ago in (("api", 40), ("page", 44), ("token", 48)):
        made = make_delivery(project, member_b, beneficiaries=raters, hours_ago=hours_ago)
        by_user = {c.user_id: c for c in made.rating_codes}
        codes[route] = {a: by_user[r.id] for a, r in zip(ACTORS, raters, strict=True)}
    release_need_ids = {}
    for releaser in ("non_owner", "sec_this", "owner"):
        given = make_need(resident_b, b)
        with atomic():
            if releaser == "owner":
                need_service.dispatch(world.secretary_b, given, project_id=project.id)
            else:
                need_service.claim(member_b2, given)
        release_need_ids[releaser] = given.id
    # member_b3 asks to join three projects: one request for each answering route
    pending_project_ids = []
    for i in range(3):
        pending = make_project(member_b, b, status="approved", title=f"待批项目{i}")
        with atomic():
            project_service.request_join(member_b3, pending)
        pending_project_ids.append(pending.id)
    # sessions recorded by the allowed callers (non-owner, owner): they overlap no other
    api_started = [utcnow() - timedelta(hours=h) for h in (24, 32)]
    page_started = [(utcnow() - timedelta(hours=h)).astimezone(ZONE) for h in (28, 36)]
    with atomic():
        revoke_grant_ids = [g.id for g in user_service.get_user(revoke_user.id).grants]
    give_points(member_b2, 50, b)
    fulfil_redemption = redeem(member_b, reward)
    evaluations = _evaluations(world)
    sessions = _sessions(world, project, member_b2)
    from volunteer_market.services import sessions as session_service

    return {
        **evaluations,
        **moderation,
        "sessions": sessions,
        "session_id": sessions["open"],
        "session_owner": member_b,
        # a member's feed nobody resets (every caller resets their own through the API)
        "feed": session_service.feed_token(make_user("feed_b", (Role.MEMBER, b))),
        "user_id": member_b.id,
        "delivery_id": delivery.id,
        "need_id": need.id,
        "project_id": project.id,
        "tx_id": tx.id,
        "area_id": b.id,
        "street_id": world.street.id,
        "rating_id": rated.rating.id,
        "appeal_id": appeal.id,
        "redemption_id": issued.redemption.id,
        "reward_id": reward.id,
        "grant_id": grant_id,
        "verb": "cancel",
        "token": "x" * 43,
        "filename": "style.css",
        "member_b2": member_b2,
        "resident_b": resident_b.id,
        "grid_b1": world.areas["grid_b1"].id,
        "member_b3": member_b3.id,
        "member_b4": member_b4.id,
        "reset_user_id": make_user("member_b6", (Role.MEMBER, b)).id,
        "job_id": _import_job(world),
        **_registrations(world),
        "revoke_user_id": revoke_user.id,
        "revoke_grant_ids": revoke_grant_ids,
        "codes": codes,
        "unrated_delivery_id": unrated(8).id,
        "page_unrated_delivery_id": unrated(20).id,
        "photo_delivery_id": unrated(52).id,
        "slips_delivery_id": unrated(56).id,
        "page_slips_delivery_id": unrated(60).id,
        "settle_delivery_id": unrated(3, now=utcnow() - timedelta(days=8)).id,
        "page_settle_delivery_id": unrated(3, now=utcnow() - timedelta(days=9)).id,
        "open_rating_id": open_rating.id,
        "page_reply_rating_id": page_reply_rating.id,
        "open_need_id": make_need(resident_b, b).id,
        "cancel_need_id": make_need(resident_b, b).id,
        "page_cancel_need_id": make_need(resident_b, b).id,
        "claim_need_ids": [make_need(resident_b, b).id for _i in range(2)],
        "release_need_ids": release_need_ids,
        "submitted_project_id": make_project(member_b, b, status="submitted", title="待审").id,
        "page_submitted_project_id": make_project(
            member_b, b, status="submitted", title="待审二"
        ).id,
        # [secretary's, owner's] where both may act
        "cancel_project_ids": [_approved(world, f"取消项目{i}") for i in range(2)],
        "page_cancel_project_ids": [_approved(world, f"页面取消项目{i}") for i in range(2)],
        "complete_project_ids": [_approved(world, f"结项项目{i}") for i in range(2)],
        "edit_project_id": make_project(member_b, b, title="草稿").id,
        "submit_project_id": make_project(member_b, b, title="待提交").id,
        "withdraw_project_id": make_project(member_b, b, status="submitted", title="撤回").id,
        "join_project_id": _approved(world, "加入项目"),
        "page_join_project_id": _approved(world, "加入项目二"),
        "leave_project_id": make_project(
            member_b, b, status="submitted", team=[member_b2], title="退出项目"
        ).id,
        "pending_project_ids": pending_project_ids,
        "fulfil_redemption": fulfil_redemption,
        "page_fulfil_redemption": redeem(member_b, reward),
        "reject_redemption_id": redeem(member_b, reward).redemption.id,
        "page_reject_redemption_id": redeem(member_b, reward).redemption.id,
        "cancel_redemption_ids": [redeem(member_b, reward).redemption.id for _i in range(2)],
        "page_cancel_redemption_ids": [redeem(member_b, reward).redemption.id for _i in range(2)],
        "fresh_tx_id": give_points(member_b, 5, b).id,
        "page_tx_id": give_points(member_b, 5, b).id,
        "fresh_reward_id": make_reward(b, name="矩阵奖品").id,
        "page_redeem_reward_id": make_reward(b, name="矩阵奖品二").id,
        "page_edit_reward_id": make_reward(b, name="编辑奖品").id,
        "retire_reward_id": make_reward(b, name="下架奖品").id,
        "page_retire_reward_id": make_reward(b, name="下架奖品二").id,
        "when": [
            {
                "started_at": started.isoformat(),
                "ended_at": (started + timedelta(hours=2)).isoformat(),
            }
            for started in api_started
        ],
        "page_when": [
            (
                started.strftime("%Y-%m-%dT%H:%M"),
                (started + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
            )
            for started in page_started
        ],
    }


def _moderation(world, member_b2, half_rated, unrated) -> dict[str, int]:
    """Ratings of B with comments to report, hide and unhide (hidden by B's secretary),
    open reports to dismiss (by member_b2), proxy ratings of grid_b1 to call back."""
    from volunteer_market.services import moderation as moderation_service
    from volunteer_market.services import ratings as rating_service

    made = {}
    for i, key in enumerate(("report", "hide", "unhide", "dismiss")):
        for j, prefix in enumerate(("", "page_")):
            made[f"{prefix}{key}_rating_id"] = half_rated(64 + 8 * i + 4 * j).id
    with atomic():
        for prefix in ("", "page_"):
            rating = rating_service.get_rating(made[f"{prefix}unhide_rating_id"])
            moderation_service.hide_comment(world.secretary_b, rating, "矩阵")
            rating = rating_service.get_rating(made[f"{prefix}dismiss_rating_id"])
            report = moderation_service.report_comment(member_b2, rating, "矩阵")
            made[f"{prefix}dismiss_report_id"] = report.id
    for prefix, hours_ago in (("", 100), ("page_", 104)):
        delivery = unrated(hours_ago)
        with atomic():
            rated = rating_service.rate(
                world.grid_b1, delivery, 4, "代评", on_behalf_of=world.resident_b.id
            )
        made[f"{prefix}callback_rating_id"] = rated.rating.id
    return made


def _evaluations(world) -> dict[str, int]:
    """B's evaluations: one closed (to publish), one whose notice has ended (to
    finalize), one in notice with two open objections (to view, object to, answer),
    and a closed one and an ended one for the pages' publish and finalize."""
    from volunteer_market.services import evaluations as evaluation_service

    sec, b = world.secretary_b, world.community_b
    year = utcnow().astimezone(ZONE).year
    with atomic():
        closed = evaluation_service.close_year(sec, b.id, year - 2)
        ended = evaluation_service.close_year(sec, b.id, year - 3)
        evaluation_service.publish(sec, ended, 1, now=utcnow() - timedelta(days=3))
        notice = evaluation_service.close_year(sec, b.id, year - 4)
        evaluation_service.publish(sec, notice)
        objection = evaluation_service.file_objection(world.member_b, notice, "矩阵")
        page_objection = evaluation_service.file_objection(world.member_b, notice, "页面")
        page_closed = evaluation_service.close_year(sec, b.id, year - 6)
        page_ended = evaluation_service.close_year(sec, b.id, year - 7)
        evaluation_service.publish(sec, page_ended, 1, now=utcnow() - timedelta(days=3))
        return {
            "year": year,
            "closed_evaluation_id": closed.id,
            "ended_evaluation_id": ended.id,
            "page_closed_evaluation_id": page_closed.id,
            "page_ended_evaluation_id": page_ended.id,
            "page_objection_id": page_objection.id,
            "evaluation_id": notice.id,
            "objection_id": objection.id,
        }


def _fill(rule: str, objects: dict) -> str:
    return _PLACEHOLDER.sub(lambda m: str(objects[m.group(1)]), rule)


_CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def _token(client) -> str:
    for path in ("/profile", "/login", "/"):
        match = _CSRF_RE.search(client.get(path).get_data(as_text=True))
        if match:
            return match.group(1)
    raise AssertionError("no CSRF token found")


def _as_wanted(resp, want: str, actor: str, *, logout: bool) -> bool:
    """Whether ``resp`` is the outcome wanted for ``actor`` (see the module docstring)."""
    code = resp.status_code
    to_login = code in (301, 302, 303) and "/login" in resp.headers.get("Location", "")
    if want == "refused":  # never a 400/409/422: the permission check comes first
        return code in (401, 403, 404) or (to_login and actor == "anon")
    if to_login and not (logout and actor != "anon"):  # a logout ends on the login page
        return False
    return 200 <= code < 400


def _flashed_errors(client) -> list[str]:
    """Pop the messages flashed to ``client``'s session; return those of category error."""
    with client.session_transaction() as sess:
        flashes = sess.pop("_flashes", [])
    return [message for category, message in flashes if category == "error"]


def test_access_matrix(app, world):
    app.test_client_class = IsolatedClient
    objects = _objects(world)
    sessions: dict[str, tuple] = {}

    def session_for(actor: str):
        if actor not in sessions:
            client = app.test_client()
            headers: dict[str, str] = {}
            if actor != "anon":
                from ..conftest import login

                user = (
                    objects["member_b2"]
                    if actor == "non_owner"
                    else getattr(world, USERNAMES[actor])
                )
                login(client, USERNAMES[actor])
                headers = bearer(user)
            sessions[actor] = (client, headers, _token(client))
        return sessions[actor]

    keys = sorted(MATRIX, key=lambda k: (RUN_LAST.index(k) + 1 if k in RUN_LAST else 0, k[1], k[0]))
    problems = []
    for method, rule in keys:
        allowed = MATRIX[(method, rule)]
        is_api = rule.startswith("/api/")
        # refused callers first: an allowed caller's write never shapes a refusal
        for actor in sorted(ACTORS, key=lambda a: a in allowed):
            client, headers, token = session_for(actor)
            overrides, body = {}, {}
            if (method, rule) in BODIES:
                overrides, body = BODIES[(method, rule)](objects, actor)
            url = _fill(rule, {**objects, **overrides})
            kwargs: dict = {}
            if method == "GET":
                kwargs["query_string"] = body
            elif is_api and isinstance(body, Multipart):
                kwargs["data"] = dict(body)
                kwargs["content_type"] = "multipart/form-data"
            elif is_api:
                kwargs["json"] = body
            else:  # a page form; /logout ended the session and its CSRF token
                fresh = _token(client) if rule == "/login" else token
                kwargs["data"] = {**body, "csrf_token": fresh}
            if is_api:
                kwargs["headers"] = headers
            resp = client.open(url, method=method, **kwargs)
            resp.close()  # a file sent (a picture) is closed with the response
            want = "allowed" if actor in allowed else "refused"
            expected = GATE_PASSED_STATE_REFUSED.get((method, rule), {}).get(actor)
            if expected is not None:
                ok = resp.status_code == expected
                want = f"{expected}: past the gate, refused by state"
            else:
                ok = _as_wanted(resp, want, actor, logout=rule == "/logout")
            if ok and want == "allowed" and not is_api and resp.status_code in (302, 303):
                # some pages redirect after a refusal too, with an error message flashed
                refusals = _flashed_errors(client)
                if refusals:
                    ok, want = False, f"allowed, no error flashed; flashed {refusals}"
            if not ok:
                problems.append(f"{method} {url} as {actor}: {resp.status_code} (want {want})")
    assert not problems, f"{len(problems)} access-matrix mismatches:\n" + "\n".join(problems)


def test_project_page_shows_the_history_to_whom_the_api_serves_it(app, world):
    """The project page lists the lifecycle history (who reviewed, with their comments)
    to exactly the callers :data:`MATRIX` lets read ``/transitions`` (``project.history``:
    the owner and B's staff), not to every viewer of the public project."""
    from ..conftest import login

    app.test_client_class = IsolatedClient
    member_b2 = make_user("member_b2", (Role.MEMBER, world.community_b))
    project = make_project(world.member_b, world.community_b, status="approved", team=[member_b2])
    comment = "审核意见"  # the secretary's comment on the approval (factories.make_project)
    allowed = MATRIX[("GET", "/api/v1/projects/<int:project_id>/transitions")]
    shown = {}
    for actor in sorted(SIGNED_IN):
        client = app.test_client()
        login(client, USERNAMES[actor])
        resp = client.get(f"/projects/{project.id}")
        assert resp.status_code == 200, actor  # approved: public
        shown[actor] = comment in resp.get_data(as_text=True)
    assert {actor for actor, seen in shown.items() if seen} == allowed
