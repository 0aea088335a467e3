"""The lifecycle pages: the secretary closes, publishes, answers and finalizes through
CSRF forms (Post/Redirect/Get, confirmation on the destructive steps, flashed
messages); members and residents file objections during the notice; officers read the
subtree's evaluations. Wrong role, wrong community, bad input and wrong state are a
clear 4xx with the reason on the page and nothing changed."""

from __future__ import annotations

import contextvars
import csv
import io
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from volunteer_market.extensions import db
from volunteer_market.models import (
    Evaluation,
    EvaluationRow,
    LedgerTransaction,
    Notification,
    Objection,
    TransactionKind,
)

from ..conftest import login, post_form
from ..factories import points_of


def _available(user) -> int:
    db.session.rollback()  # a fresh read transaction
    return points_of(user)["available"]


class IsolatedClient(FlaskClient):
    """Every request in a fresh context (no signed-in user cached in ``g`` between the
    several clients of one test)."""

    def open(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture
def client(app):
    app.test_client_class = IsolatedClient
    return app.test_client()


def _counts() -> dict[str, object]:
    db.session.rollback()
    out = {
        m.__tablename__: db.session.scalar(sa.select(sa.func.count()).select_from(m)) or 0
        for m in (Evaluation, EvaluationRow, Objection, LedgerTransaction)
    }
    out["statuses"] = tuple(
        db.session.scalars(sa.select(Evaluation.status).order_by(Evaluation.id))
    )
    out["objections"] = tuple(
        db.session.scalars(sa.select(Objection.status).order_by(Objection.id))
    )
    return out


def _evaluation(eid: int) -> Evaluation:
    db.session.rollback()
    found = db.session.get(Evaluation, eid)
    assert found is not None
    return found


def _close(client, g) -> int:
    resp = post_form(
        client,
        "/evaluations/close",
        {"community_id": g.world.community_a.id, "year": g.year, "confirm": "1"},
        token_from="/evaluations",
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)[:800]
    return int(resp.headers["Location"].rstrip("/").rsplit("/", 1)[1])


def _publish(client, eid: int, days: int = 7) -> None:
    resp = post_form(
        client,
        f"/evaluations/{eid}/publish",
        {"notice_days": str(days), "confirm": "1"},
        token_from=f"/evaluations/{eid}",
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)[:800]


def test_the_whole_way_through_the_pages(last_year, client, clock, monkeypatch):
    g = last_year
    w = g.world
    login(client, "secretary_a")
    page = client.get("/evaluations")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f"{g.year} 年" in html and "关账" in html and 'name="confirm"' in html
    assert "style=" not in html and "<script>" not in html
    assert "/evaluations" in client.get("/").get_data(as_text=True)  # in the navigation

    # close: unconfirmed is a 422 with the reason, nothing changed
    before = _counts()
    resp = post_form(
        client,
        "/evaluations/close",
        {"community_id": w.community_a.id, "year": g.year},
        token_from="/evaluations",
    )
    assert resp.status_code == 422
    assert "请勾选确认后再提交。" in resp.get_data(as_text=True)
    assert _counts() == before
    eid = _close(client, g)
    shown = client.get(f"/evaluations/{eid}").get_data(as_text=True)
    assert "已关账，名单已冻结" in shown  # the flashed message, once
    assert "已关账（未公示）" in shown and "区卫健局" in shown  # the secretary sees home units
    assert "notice_days" in shown

    # publish: out of range is a 422, nothing changed; then 3 days
    before = _counts()
    resp = post_form(
        client,
        f"/evaluations/{eid}/publish",
        {"notice_days": "61", "confirm": "1"},
        token_from=f"/evaluations/{eid}",
    )
    assert resp.status_code == 422 and "field-errors" in resp.get_data(as_text=True)
    assert _counts() == before
    _publish(client, eid, 3)
    evaluation = _evaluation(eid)
    assert evaluation.status == "in_notice" and evaluation.notice_days == 3
    assert db.session.scalar(
        sa.select(sa.func.count(Notification.id)).where(
            Notification.user_id == w.member_a.id, Notification.kind == "evaluation.published"
        )
    )

    # finalize during the notice: 409 with the reason, nothing changed
    before = _counts()
    resp = post_form(
        client, f"/evaluations/{eid}/finalize", {"confirm": "1"}, token_from=f"/evaluations/{eid}"
    )
    assert resp.status_code == 409
    assert "公示期尚未结束。" in resp.get_data(as_text=True)
    assert _counts() == before

    # a member reads the list (names and figures only) and objects about member_a2's row
    member = client.application.test_client()
    login(member, "member_a")
    listed = member.get("/evaluations").get_data(as_text=True)
    assert f"/evaluations/{eid}" in listed
    notes = member.get("/notifications").get_data(as_text=True)
    assert f'href="/evaluations/{eid}"' in notes  # the notification links to the list
    detail = member.get(f"/evaluations/{eid}").get_data(as_text=True)
    assert "member_x0" in detail and "区卫健局" not in detail and "13900000001" not in detail
    assert "提出异议" in detail and 'name="notice_days"' not in detail
    exported = member.get(f"/evaluations/{eid}?format=csv")
    header = next(csv.reader(io.StringIO(exported.data.decode("utf-8-sig"))))
    assert "工作单位" not in header and "用户名" not in header and "姓名" in header
    before = _counts()
    resp = post_form(
        member, f"/evaluations/{eid}/objections/new", {"text": "  "}, token_from="/evaluations"
    )
    assert resp.status_code == 422 and "field-errors" in resp.get_data(as_text=True)
    assert _counts() == before
    resp = post_form(
        member,
        f"/evaluations/{eid}/objections/new",
        {"text": "少算了一次服务", "user_id": str(w.member_a2.id)},
        token_from="/evaluations",
    )
    assert resp.status_code == 302
    assert "异议已提交" in member.get(resp.headers["Location"]).get_data(as_text=True)
    db.session.rollback()
    objection = db.session.scalars(sa.select(Objection)).one()
    assert objection.user_id == w.member_a2.id and objection.status == "open"

    # the secretary sees it open; finalize is still refused (notice, open objection)
    shown = client.get(f"/evaluations/{eid}").get_data(as_text=True)
    assert "少算了一次服务" in shown and "待答复" in shown

    # answer: a correction unconfirmed is a 422; a correction on a dismissal a 422
    wallet = _available(w.member_a2)
    before = _counts()
    for form in (
        {"decision": "upheld", "answer": "核实属实", "amount": "5"},
        {"decision": "dismissed", "answer": "不成立", "amount": "5", "confirm": "1"},
        {"decision": "maybe", "answer": "?"},
        {"decision": "upheld", "answer": "核实属实", "amount": "abc", "confirm": "1"},
    ):
        resp = post_form(
            client, f"/objections/{objection.id}/answer", form, token_from=f"/evaluations/{eid}"
        )
        assert resp.status_code == 422, form
        assert "field-errors" in resp.get_data(as_text=True)
    assert _counts() == before and _available(w.member_a2) == wallet
    resp = post_form(
        client,
        f"/objections/{objection.id}/answer",
        {"decision": "upheld", "answer": "核实属实", "amount": "5", "confirm": "1"},
        token_from=f"/evaluations/{eid}",
    )
    assert resp.status_code == 302
    assert "异议已答复" in client.get(resp.headers["Location"]).get_data(as_text=True)
    assert _available(w.member_a2) == wallet + 5
    db.session.rollback()
    objection = db.session.get(Objection, objection.id)
    assert objection.status == "upheld" and objection.transaction_id is not None
    tx = db.session.get(LedgerTransaction, objection.transaction_id)
    assert tx.kind == TransactionKind.ADJUST and tx.member_id == w.member_a2.id
    row = db.session.scalars(
        sa.select(EvaluationRow).where(
            EvaluationRow.evaluation_id == eid, EvaluationRow.user_id == w.member_a2.id
        )
    ).one()
    assert row.correction == 5
    # a second answer: 409, nothing changed
    before = _counts()
    resp = post_form(
        client,
        f"/objections/{objection.id}/answer",
        {"decision": "dismissed", "answer": "再答"},
        token_from=f"/evaluations/{eid}",
    )
    assert resp.status_code == 409 and "该异议已答复。" in resp.get_data(as_text=True)
    assert _counts() == before

    # after the notice: no new objection (409), finalize goes through
    from volunteer_market.web import evaluations as web_evaluations

    clock.now = _evaluation(eid).notice_ends_at + timedelta(minutes=1)
    monkeypatch.setattr(web_evaluations, "utcnow", clock)
    assert "提出异议" not in member.get(f"/evaluations/{eid}").get_data(as_text=True)
    before = _counts()
    resp = post_form(
        member,
        f"/evaluations/{eid}/objections/new",
        {"text": "晚了"},
        token_from="/evaluations",
    )
    assert resp.status_code == 409 and "只能在公示期内提出异议。" in resp.get_data(as_text=True)
    assert _counts() == before
    resp = post_form(client, f"/evaluations/{eid}/finalize", {}, token_from=f"/evaluations/{eid}")
    assert resp.status_code == 422  # unconfirmed
    assert _evaluation(eid).status == "in_notice"
    resp = post_form(
        client, f"/evaluations/{eid}/finalize", {"confirm": "1"}, token_from=f"/evaluations/{eid}"
    )
    assert resp.status_code == 302
    assert "名单已定稿" in client.get(resp.headers["Location"]).get_data(as_text=True)
    assert _evaluation(eid).status == "final"
    before = _counts()
    resp = post_form(
        client, f"/evaluations/{eid}/finalize", {"confirm": "1"}, token_from=f"/evaluations/{eid}"
    )
    assert resp.status_code == 409 and "考核当前状态下不能进行这一步。" in resp.get_data(
        as_text=True
    )
    assert _counts() == before


def test_an_open_objection_blocks_finalizing(last_year, client, clock, monkeypatch):
    g = last_year
    login(client, "secretary_a")
    eid = _close(client, g)
    _publish(client, eid, 1)
    member = client.application.test_client()
    login(member, "resident_a")  # a resident of the community objects to the whole list
    resp = post_form(
        member, f"/evaluations/{eid}/objections/new", {"text": "名单不全"}, token_from="/"
    )
    assert resp.status_code == 302
    clock.now = _evaluation(eid).notice_ends_at + timedelta(minutes=1)
    before = _counts()
    resp = post_form(
        client, f"/evaluations/{eid}/finalize", {"confirm": "1"}, token_from=f"/evaluations/{eid}"
    )
    assert resp.status_code == 409 and "请先答复所有异议。" in resp.get_data(as_text=True)
    assert _counts() == before
    db.session.rollback()
    objection = db.session.scalars(sa.select(Objection)).one()
    resp = post_form(
        client,
        f"/objections/{objection.id}/answer",
        {"decision": "dismissed", "answer": "名单完整"},
        token_from=f"/evaluations/{eid}",
    )
    assert resp.status_code == 302
    assert _counts()["objections"] == ("dismissed",)


def test_wrong_role_is_refused(last_year, client):
    g = last_year
    w = g.world
    login(client, "secretary_a")
    eid = _close(client, g)
    objection_eid = eid
    member = client.application.test_client()
    login(member, "member_a")
    before = _counts()
    # a member: the closed list is not public yet; no step is theirs
    assert member.get(f"/evaluations/{eid}").status_code == 404
    assert member.get(f"/evaluations?area_id={w.community_a.id}").status_code == 403
    for path, form in (
        ("/evaluations/close", {"community_id": w.community_a.id, "year": g.year - 1}),
        (f"/evaluations/{eid}/publish", {"confirm": "1"}),
        (f"/evaluations/{eid}/finalize", {"confirm": "1"}),
    ):
        resp = post_form(member, path, {**form, "confirm": "1"}, token_from="/")
        assert resp.status_code in (403, 404), path
    _publish(client, objection_eid, 7)
    resp = post_form(member, f"/evaluations/{eid}/objections/new", {"text": "异议"}, token_from="/")
    assert resp.status_code == 302
    db.session.rollback()
    objection = db.session.scalars(sa.select(Objection)).one()
    before = _counts()
    # the member answers nor publishes; the officer over the street reads only
    officer = client.application.test_client()
    login(officer, "officer_street")
    listed = officer.get(f"/evaluations?area_id={w.street.id}&year={g.year}")
    assert listed.status_code == 200
    text = listed.get_data(as_text=True)
    assert w.community_a.name in text and "公示中" in text and 'name="confirm"' not in text
    detail = officer.get(f"/evaluations/{eid}").get_data(as_text=True)
    assert "异议" in detail and 'name="decision"' not in detail and "/finalize" not in detail
    for client_, path, form in (
        (member, f"/objections/{objection.id}/answer", {"decision": "dismissed", "answer": "x"}),
        (officer, f"/objections/{objection.id}/answer", {"decision": "dismissed", "answer": "x"}),
        (officer, f"/evaluations/{eid}/finalize", {"confirm": "1"}),
        (officer, "/evaluations/close", {"community_id": w.community_a.id, "year": g.year - 1}),
    ):
        resp = post_form(client_, path, {**form, "confirm": "1"}, token_from="/")
        assert resp.status_code in (403, 404), path
    assert _counts() == before
    # someone outside any community (an officer of another street) files no objection
    other = client.application.test_client()
    login(other, "officer_other")
    assert other.get(f"/evaluations/{eid}/objections/new").status_code == 404
    assert other.get(f"/evaluations?area_id={w.street.id}").status_code == 403


def test_wrong_community_is_refused(last_year, client):
    g = last_year
    w = g.world
    login(client, "secretary_a")
    eid = _close(client, g)
    _publish(client, eid, 7)
    before = _counts()
    other = client.application.test_client()
    login(other, "secretary_b")
    assert other.get(f"/evaluations?area_id={w.community_a.id}").status_code == 403
    assert other.get(f"/evaluations/{eid}").status_code == 404
    resp = post_form(
        other,
        "/evaluations/close",
        {"community_id": w.community_a.id, "year": g.year - 1, "confirm": "1"},
        token_from="/",
    )
    assert resp.status_code == 403
    assert post_form(other, f"/evaluations/{eid}/finalize", {"confirm": "1"}).status_code == 404
    resident = client.application.test_client()
    login(resident, "resident_b")
    assert resident.get(f"/evaluations/{eid}/objections/new").status_code == 404
    resp = post_form(resident, f"/evaluations/{eid}/objections/new", {"text": "别的社区"})
    assert resp.status_code == 404
    assert f"/evaluations/{eid}" not in resident.get("/evaluations").get_data(as_text=True)
    assert _counts() == before


def test_bad_input_and_wrong_state(last_year, client):
    g = last_year
    w = g.world
    login(client, "secretary_a")
    a = w.community_a.id
    before = _counts()
    for form, status, text in (
        ({"community_id": a, "year": g.year + 1}, 409, "年度结束后才能关账。"),
        ({"community_id": a, "year": "abc"}, 422, "field-errors"),
        ({"community_id": a}, 422, "field-errors"),
        ({"community_id": a, "year": "1990"}, 422, "field-errors"),
    ):
        resp = post_form(client, "/evaluations/close", {**form, "confirm": "1"}, token_from="/")
        assert resp.status_code == status, form
        assert text in resp.get_data(as_text=True), form
    assert (
        post_form(client, "/evaluations/close", {"community_id": "x", "year": g.year}).status_code
        == 404
    )
    assert (
        post_form(client, "/evaluations/close", {"community_id": w.grid_a1.id}).status_code == 403
    )
    assert _counts() == before
    eid = _close(client, g)
    before = _counts()
    resp = post_form(
        client,
        "/evaluations/close",
        {"community_id": a, "year": g.year, "confirm": "1"},
        token_from="/",
    )
    assert resp.status_code == 409 and "本社区该年度已关账。" in resp.get_data(as_text=True)
    # finalizing a list not yet published
    resp = post_form(client, f"/evaluations/{eid}/finalize", {"confirm": "1"})
    assert resp.status_code == 409 and "考核当前状态下不能进行这一步。" in resp.get_data(
        as_text=True
    )
    for days in ("0", "abc", "1.5"):
        resp = post_form(
            client, f"/evaluations/{eid}/publish", {"notice_days": days, "confirm": "1"}
        )
        assert resp.status_code == 422, days
    assert post_form(client, "/evaluations/99999999/publish", {"confirm": "1"}).status_code == 404
    assert (
        post_form(client, "/objections/99999999/answer", {"decision": "upheld"}).status_code == 404
    )
    assert client.get(f"/evaluations/{eid}?format=pdf").status_code == 404
    assert client.get("/evaluations?area_id=99999999").status_code == 404
    assert client.get(f"/evaluations?area_id={w.grid_a1.id}").status_code == 403
    assert _counts() == before
    # nobody objects to a list not in notice
    member = client.application.test_client()
    login(member, "member_a")
    assert member.get(f"/evaluations/{eid}/objections/new").status_code == 404
    _publish(client, eid, 7)
    resp = post_form(
        member,
        f"/evaluations/{eid}/objections/new",
        {"text": "x" * 1001},
    )
    assert resp.status_code == 422
    resp = post_form(
        member,
        f"/evaluations/{eid}/objections/new",
        {"text": "不在名单的人", "user_id": str(w.member_b.id)},
    )
    assert resp.status_code == 422 and "不在名单中。" in resp.get_data(as_text=True)
    assert _counts()["objections"] == ()


def test_the_pages_in_english(last_year, client):
    g = last_year
    login(client, "secretary_a")
    html = client.get("/evaluations?lang=en").get_data(as_text=True)
    assert "Annual evaluation notices" in html and "Close the year" in html
    assert "关账" not in html and "年度考核公示" not in html
    eid = _close(client, g)
    html = client.get(f"/evaluations/{eid}?lang=en").get_data(as_text=True)
    assert "Closed (not yet published)" in html and "I confirm: publish this list" in html
    resp = post_form(client, f"/evaluations/{eid}/finalize", {"confirm": "1"})
    assert resp.status_code == 409
    assert "公示" not in resp.get_data(as_text=True).split("<main")[1]
