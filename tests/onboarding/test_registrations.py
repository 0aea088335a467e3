"""Self-registration (在职党员到社区报到, issue 18 item 2): register -> approve -> phone
login end to end; pending accounts cannot sign in; rejection with a reason; throttled;
other communities' secretaries refused everywhere; bad input answered 4xx."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import Registration

from ..conftest import csrf_token, login
from ..factories import bearer
from .conftest import counts, user_state

APPLY = {
    "phone": "13600000001",
    "display_name": "刘建国",
    "password": "my-first-pass",
    "role": "member",
    "home_unit": "区卫健局",
}


def apply(client, world, **change):
    body = {**APPLY, "community_id": world.community_b.id, **change}
    body = {k: v for k, v in body.items() if v is not None}
    return client.post("/api/v1/registrations", json=body)


def token_for(client, name, password):
    return client.post("/api/v1/auth/token", json={"username": name, "password": password})


def test_register_approve_then_sign_in_by_phone(client, world):
    resp = apply(client, world)
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "pending" and body["user_id"] is None
    assert "password" not in body and "password_hash" not in body
    # pending: no account, the phone number signs nobody in
    assert token_for(client, "13600000001", "my-first-pass").status_code == 401
    # the secretary of B was told
    db.session.rollback()
    notes = db.session.execute(
        sa.text("SELECT kind FROM notifications WHERE user_id = :u"), {"u": world.secretary_b.id}
    ).scalars()
    assert "registration.submitted" in list(notes)
    listed = client.get("/api/v1/registrations?status=pending", headers=bearer(world.secretary_b))
    assert [r["id"] for r in listed.get_json()["items"]] == [body["id"]]
    approved = client.post(
        f"/api/v1/registrations/{body['id']}/approve", headers=bearer(world.secretary_b)
    )
    assert approved.status_code == 200, approved.get_json()
    assert approved.get_json()["status"] == "approved"
    signed_in = token_for(client, "136 0000 0001", "my-first-pass")
    assert signed_in.status_code == 201
    user = signed_in.get_json()["user"]
    assert user["display_name"] == "刘建国" and user["home_unit"] == "区卫健局"
    assert [(r["role"], r["area_id"]) for r in user["roles"]] == [("member", world.community_b.id)]
    # told the outcome: a notification to the new account, and the status link
    headers = {"Authorization": f"Bearer {signed_in.get_json()['token']}"}
    kinds = [
        n["kind"] for n in client.get("/api/v1/notifications", headers=headers).get_json()["items"]
    ]
    assert "registration.approved" in kinds
    page = client.get(f"/register/{body['status_token']}").get_data(as_text=True)
    assert "审核已通过" in page
    again = client.post(
        f"/api/v1/registrations/{body['id']}/approve", headers=bearer(world.secretary_b)
    )
    assert again.status_code == 409


def test_reject_with_a_reason_the_applicant_sees(client, world):
    body = apply(client, world, role="resident", home_unit=None).get_json()
    headers = bearer(world.secretary_b)
    before = counts()
    missing = client.post(f"/api/v1/registrations/{body['id']}/reject", json={}, headers=headers)
    assert missing.status_code == 422
    blank = client.post(
        f"/api/v1/registrations/{body['id']}/reject", json={"reason": "  "}, headers=headers
    )
    assert blank.status_code == 422
    assert counts() == before
    resp = client.post(
        f"/api/v1/registrations/{body['id']}/reject",
        json={"reason": "本社区查无此人，请到居住地社区报到"},
        headers=headers,
    )
    assert resp.status_code == 200 and resp.get_json()["status"] == "rejected"
    assert counts()["users"] == before["users"]
    assert token_for(client, "13600000001", "my-first-pass").status_code == 401
    page = client.get(f"/register/{body['status_token']}").get_data(as_text=True)
    assert "本社区查无此人" in page
    late = client.post(f"/api/v1/registrations/{body['id']}/approve", headers=headers)
    assert late.status_code == 409
    # a new request of the same number is possible once the old one is decided
    assert apply(client, world).status_code == 201


@pytest.mark.parametrize(
    "who",
    ["secretary_a", "secretary_c", "admin", "officer_street", "grid_b1", "member_b", "resident_b"],
)
def test_only_the_communitys_secretary_decides(client, world, who):
    body = apply(client, world).get_json()
    headers = bearer(world.users[who])
    before, state = counts(), user_state()
    for verb, payload in (("approve", None), ("reject", {"reason": "不认识"})):
        resp = client.post(
            f"/api/v1/registrations/{body['id']}/{verb}", json=payload, headers=headers
        )
        assert resp.status_code == 404, (who, verb, resp.status_code)
    listed = client.get("/api/v1/registrations", headers=headers).get_json()
    assert listed["items"] == []  # nobody else sees the phone numbers
    assert counts() == before and user_state() == state
    db.session.rollback()
    assert db.session.get(Registration, body["id"]).status.value == "pending"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"phone": "12345"}, "phone"),
        ({"phone": None}, "phone"),
        ({"display_name": ""}, "display_name"),
        ({"display_name": "x" * 101}, "display_name"),
        ({"password": "short"}, "password"),
        ({"role": "secretary"}, "role"),
        ({"role": "admin"}, "role"),
        ({"community_id": 99999999}, "community_id"),
        ({"community_id": 0}, "community_id"),
        ({"community_id": "abc"}, "community_id"),
        ({"status": "approved"}, "status"),
        ({"home_unit": "x" * 256}, "home_unit"),
    ],
)
def test_bad_registrations_are_422_and_store_nothing(client, world, change, field):
    before = counts()
    resp = apply(client, world, **change)
    assert resp.status_code == 422, resp.get_json()
    assert field in resp.get_json()["errors"]
    assert all("pattern" not in m for ms in resp.get_json()["errors"].values() for m in ms)
    assert counts() == before


def test_a_grid_is_not_a_community(client, world):
    before = counts()
    resp = apply(client, world, community_id=world.grid_b1.id)
    assert resp.status_code == 422
    assert counts() == before


def test_conflicts(client, world):
    assert apply(client, world).status_code == 201
    before = counts()
    twice = apply(client, world, phone="+86 136-0000-0001")
    assert twice.status_code == 409
    taken = apply(client, world, phone="13712349999")  # resident_b has an account
    assert taken.status_code == 409
    assert "sign in" in taken.get_json()["detail"]
    assert counts() == before


def test_an_imported_person_without_a_password_completes_their_account(client, world, app):
    from io import BytesIO

    app.config["IMPORT_RUNNER"] = "inline"
    csv_file = "姓名,手机号\n老周,13600000009\n".encode()
    resp = client.post(
        "/api/v1/imports",
        data={
            "file": (BytesIO(csv_file), "p.csv"),
            "kind": "residents",
            "community_id": str(world.community_b.id),
        },
        headers=bearer(world.secretary_b),
        content_type="multipart/form-data",
    )
    assert resp.get_json()["created"] == 1
    body = apply(client, world, phone="13600000009", role="resident", home_unit=None).get_json()
    before = counts()
    approved = client.post(
        f"/api/v1/registrations/{body['id']}/approve", headers=bearer(world.secretary_b)
    )
    assert approved.status_code == 200
    assert counts()["users"] == before["users"]  # the same account, now with a password
    assert token_for(client, "13600000009", "my-first-pass").status_code == 201


def test_registration_is_throttled_per_ip(client, world, app):
    app.config["REGISTRATIONS_PER_HOUR"] = 3
    statuses = [apply(client, world, phone=f"1360000010{i}").status_code for i in range(5)]
    assert statuses[:3] == [201, 201, 201]
    assert statuses[3:] == [429, 429]
    assert (
        db.session.execute(sa.select(sa.func.count()).select_from(Registration)).scalar_one() == 3
    )


def test_anonymous_cannot_list_or_decide(client, world):
    body = apply(client, world).get_json()
    assert client.get("/api/v1/registrations").status_code == 401
    assert client.post(f"/api/v1/registrations/{body['id']}/approve").status_code == 401
    assert client.get("/register/not-a-token").status_code == 404


# --- pages -------------------------------------------------------------------------------


def test_pages_register_approve_and_sign_in(client, world):
    form = client.get("/register")
    assert form.status_code == 200
    text = form.get_data(as_text=True)
    assert "七里一村社区" in text and 'name="csrf_token"' in text
    assert "到社区报到" in client.get("/login").get_data(as_text=True)
    resp = client.post(
        "/register",
        data={
            **APPLY,
            "community_id": str(world.community_b.id),
            "csrf_token": csrf_token(client, "/register"),
        },
    )
    assert resp.status_code == 302 and "/register/" in resp.headers["Location"]
    assert "等待社区书记审核" in client.get(resp.headers["Location"]).get_data(as_text=True)
    secretary = type(client)(client.application)
    login(secretary, "secretary_b")
    queue = secretary.get("/registrations").get_data(as_text=True)
    assert "刘建国" in queue and "13600000001" in queue
    registration = db.session.execute(sa.select(Registration)).scalar_one()
    done = secretary.post(
        f"/registrations/{registration.id}/approve",
        data={"csrf_token": csrf_token(secretary, "/registrations")},
    )
    assert done.status_code == 302
    member = type(client)(client.application)
    login(member, "13600000001", "my-first-pass")
    assert member.get("/").status_code == 200


def test_page_errors_in_chinese_and_nothing_stored(client, world):
    before = counts()
    resp = client.post(
        "/register",
        data={
            **APPLY,
            "phone": "abc",
            "password": "short",
            "community_id": str(world.community_b.id),
            "csrf_token": csrf_token(client, "/register"),
        },
    )
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert "请输入有效的手机号" in page and "至少 8 个字符" in page
    assert "my-first-pass" not in page and "short" not in page.split("<main")[1]
    no_csrf = client.post("/register", data={**APPLY, "community_id": str(world.community_b.id)})
    assert no_csrf.status_code == 400
    assert counts() == before


def test_pages_refuse_other_communities(client, world):
    body = apply(client, world).get_json()
    other = type(client)(client.application)
    login(other, "secretary_a")
    assert "刘建国" not in other.get("/registrations").get_data(as_text=True)
    resp = other.post(
        f"/registrations/{body['id']}/approve",
        data={"csrf_token": csrf_token(other, "/registrations")},
    )
    assert resp.status_code == 404
    member = type(client)(client.application)
    login(member, "member_b")
    assert member.get("/registrations").status_code == 403
    db.session.rollback()
    assert db.session.get(Registration, body["id"]).status.value == "pending"


def test_page_reject_needs_a_reason(client, world):
    body = apply(client, world).get_json()
    login(client, "secretary_b")
    resp = client.post(
        f"/registrations/{body['id']}/reject",
        data={"reason": "", "csrf_token": csrf_token(client, "/registrations")},
    )
    assert resp.status_code == 303
    db.session.rollback()
    assert db.session.get(Registration, body["id"]).status.value == "pending"
    ok = client.post(
        f"/registrations/{body['id']}/reject",
        data={"reason": "信息不全", "csrf_token": csrf_token(client, "/registrations")},
    )
    assert ok.status_code == 302
    db.session.rollback()
    assert db.session.get(Registration, body["id"]).reason == "信息不全"
