"""Privacy (issue 8, item 9; DESIGN.md "Privacy").

Residents' phone numbers, addresses and household tags are visible to the
secretary and grid workers of their community only; everybody else sees masked
values. For every role DESIGN.md does not allow -- a member (even the one who
served the resident), another community's secretary, an officer, another
resident -- the raw values never appear in the user, need, delivery and project
endpoints and pages that show people. Nor do they appear in log output of a run
of requests (including the resident's own login).
"""

from __future__ import annotations

import logging

from volunteer_market.models import Role

from ..conftest import login
from ..factories import bearer, make_delivery, make_need, make_project, make_user
from .test_access_matrix import IsolatedClient

# A resident of grid A1 with values that appear nowhere else (the world's resident_a
# has tags 空巢,独居, which the user form also shows as an example).
PHONE = "13755550123"
ADDRESS = "龙湖东岸 9 栋 909"
TAGS = ("失独", "低保")
SECRETS = (PHONE, ADDRESS, *TAGS)

NOT_ALLOWED = (
    "member_a",
    "member_a2",
    "secretary_b",
    "officer_street",
    "officer_other",
    "resident_a2",
)


def _resident(world):
    return make_user(
        "resident_p",
        (Role.RESIDENT, world.areas["grid_a1"]),
        phone=PHONE,
        address=ADDRESS,
        household_tags=",".join(TAGS),
    )


def _people_urls(world) -> tuple[list[str], list[str]]:
    resident = _resident(world)
    project = make_project(world.member_a, world.community_a, status="approved")
    need = make_need(resident, world.community_a)
    delivery = make_delivery(project, world.member_a, beneficiaries=[resident]).delivery
    api = [
        f"/api/v1/users/{resident.id}",
        f"/api/v1/needs/{need.id}",
        "/api/v1/needs",
        f"/api/v1/deliveries/{delivery.id}",
        "/api/v1/deliveries",
        f"/api/v1/projects/{project.id}",
        f"/api/v1/projects/{project.id}/team",
        f"/api/v1/projects/{project.id}/deliveries",
        f"/api/v1/deliveries/{delivery.id}/ratings",
    ]
    pages = [
        f"/admin/users/{resident.id}",
        "/admin/users",
        "/needs",
        f"/deliveries/{delivery.id}",
        f"/deliveries/{delivery.id}/ratings",
        f"/projects/{project.id}",
        "/ledger/members",
        "/settlement",
    ]
    return api, pages


def test_personal_data_is_masked_for_roles_not_allowed(app, world, caplog):
    app.test_client_class = IsolatedClient  # no g / session leaking between requests
    api, pages = _people_urls(world)
    leaks = []
    caplog.set_level(logging.DEBUG)
    with caplog.at_level(logging.DEBUG):
        for username in NOT_ALLOWED:
            user = getattr(world, username)
            headers = bearer(user)
            for url in api:
                resp = app.test_client().get(url, headers=headers)
                assert resp.status_code < 500, (username, url, resp.status_code)
                body = resp.get_data(as_text=True)
                leaks += [f"{username} GET {url}: {s}" for s in SECRETS if s in body]
            client = app.test_client()
            login(client, username)
            for url in pages:
                resp = client.get(url)
                assert resp.status_code < 500, (username, url, resp.status_code)
                body = resp.get_data(as_text=True)
                leaks += [f"{username} page {url}: {s}" for s in SECRETS if s in body]
        # the resident and their secretary also act, so their data passes through the app
        for username in ("resident_p", "secretary_a", "grid_a1"):
            client = app.test_client()
            login(client, username)
            for url in pages:
                client.get(url)
    assert not leaks, "personal data shown unmasked:\n" + "\n".join(leaks)
    logged = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    assert PHONE not in logged, "a resident's phone number was logged"
    assert ADDRESS not in logged, "a resident's address was logged"


def test_the_secretary_of_the_community_sees_the_phone(app, world):
    """Positive control: the masking tests above would pass on an app showing nothing."""
    app.test_client_class = IsolatedClient
    resident = _resident(world)
    resp = app.test_client().get(f"/api/v1/users/{resident.id}", headers=bearer(world.secretary_a))
    assert resp.status_code == 200
    assert PHONE in resp.get_data(as_text=True)
