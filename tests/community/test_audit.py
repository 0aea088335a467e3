"""Audit log viewer: a secretary reads his community's entries, an officer his
subtree's, the admin all; filters; personal data and free text only to whom may see
them; bad filters are 4xx; reading changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import AuditEntry, utcnow
from volunteer_market.services import audit
from volunteer_market.zones import DEFAULT_ZONE

from ..conftest import login

PATH = "/api/v1/audit"
CLAIM, DISPATCH = "<strong>认领需求</strong>", "<strong>派单</strong>"
REJECT = "<strong>驳回项目</strong>"


def add(actor, action, object_type, object_id, area, detail=None, days_ago=0):
    with atomic():
        entry = audit.record(
            actor, action, object_type, object_id, area_id=area.id if area else None, detail=detail
        )
        db.session.flush()
        if days_ago:
            entry.created_at = utcnow() - timedelta(days=days_ago)
        return entry.id


@pytest.fixture
def entries(world):
    w = world
    return {
        "a": add(w.secretary_a, "need.dispatch", "need", 11, w.community_a, {"from": "open"}),
        "a_grid": add(w.member_a, "need.claim", "need", 12, w.areas["grid_a1"], days_ago=10),
        "b": add(w.secretary_b, "need.dispatch", "need", 21, w.community_b),
        "c": add(
            w.secretary_c,
            "project.reject",
            "project",
            31,
            w.community_c,
            {"comment": "居民独居，改期"},
        ),
        "global": add(w.admin, "user.create", "user", w.member_a.id, None),
    }


def ids(resp):
    assert resp.status_code == 200, resp.get_json()
    return [e["id"] for e in resp.get_json()["items"]]


def seen(api, who, entries):
    """Which of ``entries`` ``who`` reads (the world's own set-up is audited too)."""
    return set(ids(api.get(who, PATH, per_page=100))) & set(entries.values())


def test_each_reader_sees_his_scope(api, world, entries):
    e = entries
    assert seen(api, "secretary_a", e) == {e["a"], e["a_grid"]}
    assert seen(api, "secretary_b", e) == {e["b"]}
    # officer of 龙阳街: communities A and B; officer of 琴断口街: C
    assert seen(api, "officer_street", e) == {e["a"], e["a_grid"], e["b"]}
    assert seen(api, "officer_other", e) == {e["c"]}
    assert seen(api, "officer_district", e) == {e["a"], e["a_grid"], e["b"], e["c"]}
    assert seen(api, "admin", e) == set(e.values())
    # every entry a secretary reads lies in his community
    a_ids = {world.community_a.id, *(world.areas[g].id for g in ("grid_a1", "grid_a2"))}
    items = api.get("secretary_a", PATH, per_page=100).get_json()["items"]
    assert items and {i["area_id"] for i in items} <= a_ids
    first = api.get("secretary_a", PATH, object_type="need").get_json()["items"][1]
    assert first["id"] == e["a"] and first["actor_name"] == world.secretary_a.display_name
    assert first["area_name"] == world.community_a.name and first["detail"] == {"from": "open"}


@pytest.mark.parametrize("who", ["member_a", "resident_a", "grid_a1"])
def test_other_roles_are_refused(api, entries, who):
    assert api.get(who, PATH).status_code == 403


def test_another_communitys_area_is_not_found(api, world, entries):
    assert api.get("secretary_a", PATH, area_id=world.community_b.id).status_code == 404
    assert api.get("officer_other", PATH, area_id=world.community_a.id).status_code == 404
    assert api.get("secretary_a", PATH, area_id=world.street.id).status_code == 404
    assert api.get("secretary_a", PATH, area_id=999999).status_code == 404


def test_filters(api, world, entries):
    e, w = entries, world
    sec = "secretary_a"
    grid = ids(api.get(sec, PATH, area_id=w.areas["grid_a1"].id, object_type="need"))
    assert grid == [e["a_grid"]]
    whole = ids(api.get(sec, PATH, area_id=w.community_a.id, object_type="need"))
    assert whole == [e["a_grid"], e["a"]]  # the community and its grids, newest first
    assert ids(api.get(sec, PATH, object_type="need", object_id=12)) == [e["a_grid"]]
    assert ids(api.get(sec, PATH, actor_id=w.member_a.id, object_type="need")) == [e["a_grid"]]
    assert ids(api.get(sec, PATH, object_type="project")) == []
    today = utcnow().date()
    assert ids(api.get(sec, PATH, object_type="need", since=str(today - timedelta(days=3)))) == [
        e["a"]
    ]
    assert ids(api.get(sec, PATH, until=str(today - timedelta(days=8)))) == [e["a_grid"]]
    day = str(today - timedelta(days=10))
    assert e["a_grid"] in ids(api.get(sec, PATH, since=day, until=day)) or (
        (utcnow() - timedelta(days=10)).astimezone(DEFAULT_ZONE).date()
        != today - timedelta(days=10)
    )
    assert e["a"] not in ids(api.get(sec, PATH, until=str(today - timedelta(days=2))))


def test_paging(api, world, entries):
    for i in range(3):
        add(world.secretary_a, "need.cancel", "need", 100 + i, world.community_a)
    body = api.get("secretary_a", PATH, object_type="need", per_page=2, page=2).get_json()
    assert body["total"] == 5 and body["page"] == 2 and len(body["items"]) == 2
    assert [i["object_id"] for i in body["items"]] == [100, 12]  # newest (by id) first
    assert api.get("secretary_a", PATH, per_page=2, page=9).get_json()["items"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"area_id": "abc"},
        {"area_id": "0"},
        {"area_id": str(2**31)},
        {"object_id": "99999999999999999999999999"},
        {"actor_id": "-1"},
        {"actor_id": "1.5"},
        {"object_type": "Need; DROP"},
        {"object_type": "x" * 33},
        {"since": "2026-13-01"},
        {"since": "yesterday"},
        {"until": "9999-12-31"},
        {"since": "2026-05-02", "until": "2026-05-01"},
        {"per_page": "1000"},
        {"page": "0"},
    ],
)
def test_bad_filters(api, world, entries, params):
    api.headers(world.secretary_a)  # issuing the token is audited: before counting
    before = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))
    resp = api.get("secretary_a", PATH, **params)
    assert resp.status_code == 422, (params, resp.status_code)
    assert resp.get_json()["errors"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == before


def test_free_text_and_personal_data_only_to_whom_may_see_them(api, world, entries):
    w = world

    # a free-text comment: the community's secretary and officers see it; the admin not
    def detail_of(who, entry_id):
        items = api.get(who, PATH, object_type="project").get_json()["items"]
        return next(i["detail"] for i in items if i["id"] == entry_id)

    assert detail_of("secretary_c", entries["c"])["comment"] == "居民独居，改期"
    assert detail_of("officer_other", entries["c"])["comment"] == "居民独居，改期"
    assert detail_of("admin", entries["c"]) == {"comment": "***"}
    # personal data in a detail (no writer stores it; the viewer hides it all the same)
    pid = add(
        w.secretary_a,
        "user.update",
        "user",
        w.resident_a.id,
        w.community_a,
        {"phone": "13812345678", "role": "resident"},
    )

    def user_detail(who):
        items = api.get(who, PATH, object_type="user").get_json()["items"]
        return next(i["detail"] for i in items if i["id"] == pid)

    assert user_detail("secretary_a")["phone"] == "13812345678"  # user.view_personal
    for who in ("officer_street", "admin"):
        assert user_detail(who) == {"phone": "***", "role": "resident"}
    # personal data on an entry about anything but a user is shown to nobody
    nid = add(w.secretary_a, "need.post", "need", 5, w.community_a, {"address": "3 栋 2 单元"})
    items = api.get("secretary_a", PATH, object_type="need").get_json()["items"]
    assert next(i["detail"] for i in items if i["id"] == nid) == {"address": "***"}


def test_anonymous_is_refused(client, entries):
    assert client.get(PATH).status_code == 401
    assert client.get("/audit").status_code in (302, 401)


# --- the page ---------------------------------------------------------------------------


def test_page_lists_filters_and_pages(client, world, entries):
    login(client, "secretary_a")
    resp = client.get("/audit")
    html = resp.get_data(as_text=True)
    # actions are shown by their labels, never as stored codes
    assert resp.status_code == 200 and CLAIM in html and DISPATCH in html
    assert "need.claim" not in html and "need.dispatch" not in html
    assert REJECT not in html  # community C
    html = client.get(f"/audit?actor_id={world.member_a.id}").get_data(as_text=True)
    assert CLAIM in html and DISPATCH not in html
    html = client.get("/audit?object_type=&object_id=").get_data(as_text=True)  # empty: none
    assert DISPATCH in html
    assert client.get("/audit?lang=en").status_code == 200  # the language switch


def test_page_hides_free_text_from_the_admin(client, world, entries):
    login(client, "admin")
    html = client.get("/audit?object_type=project").get_data(as_text=True)
    assert REJECT in html and "居民独居" not in html and "意见：***" in html


@pytest.mark.parametrize("who", ["member_a", "resident_a", "grid_a1"])
def test_page_refuses_other_roles(client, entries, who):
    login(client, who)
    assert client.get("/audit").status_code == 403


def test_page_other_community_area_is_not_found(client, world, entries):
    login(client, "secretary_a")
    assert client.get(f"/audit?area_id={world.community_b.id}").status_code == 404


@pytest.mark.parametrize(
    "query,field",
    [
        ("actor_id=abc", "请输入整数"),
        ("object_id=99999999999", "取值范围"),
        ("since=2026-02-30", "请输入有效的日期"),
        ("since=2026-05-02&until=2026-05-01", "开始日期不能晚于结束日期"),
    ],
)
def test_page_bad_filters_are_400_with_a_message(client, entries, query, field):
    login(client, "secretary_a")
    resp = client.get(f"/audit?{query}")
    assert resp.status_code == 400
    assert field in resp.get_data(as_text=True)
