"""Points pages: my points (balances, history with reason and source, monthly chart as
inline SVG), the members' points for staff, a member's ledger with the secretary's
adjustment form (reason required, double submit posts once) and reversal form."""

from __future__ import annotations

import re

import pytest

from volunteer_market.database import atomic
from volunteer_market.services import ledger

from ..conftest import csrf_token, login
from ..factories import give_points, points_of, post_earn
from .conftest import counts


def _page(client, path, status=200):
    resp = client.get(path)
    assert resp.status_code == status, resp.get_data(as_text=True)[:500]
    return resp.get_data(as_text=True)


def test_my_points_page(client, world, delivery):
    d = delivery()
    give_points(world.member_a, 30, reason="社区防汛值守补录")
    post_earn(world.member_a, world.community_a, delivery_id=d, points=24, minutes=120)
    with atomic():
        hold = ledger.account_for_member(world.member_a.id, "member_held")
        wallet = ledger.account_for_member(world.member_a.id)
        ledger.post_transaction(
            kind="hold",
            legs=[(wallet, -10), (hold, 10)],
            idempotency_key="h",
            actor=None,
            redemption_id=3,
        )
    login(client, "member_a")
    html = _page(client, "/points")
    assert "我的积分" in html
    assert re.search(r'<span class="num">44</span><span class="lbl">可用积分', html)
    assert re.search(r'<span class="num">10</span><span class="lbl">冻结积分', html)
    assert re.search(r'<span class="num">24</span><span class="lbl">累计获得', html)
    assert "社区防汛值守补录" in html  # the reason
    assert f"服务记录 #{d}" in html and "2.0 小时" in html  # the source of an earn
    assert "兑换单 #3" in html and "兑换冻结" in html
    assert "<svg" in html and "<rect" in html  # the monthly chart, drawn server-side
    assert "<script" not in html and "style=" not in html  # CSP: nothing inline
    assert "冲正此交易" not in html  # members do not reverse their own entries
    home = _page(client, "/")
    assert 'href="/points"' in home


def test_my_points_empty_and_anonymous(client, world):
    assert client.get("/points").status_code == 302  # to the login page
    login(client, "member_a2")
    html = _page(client, "/points")
    assert "暂无积分记录" in html and "<svg" in html


def test_members_list_for_staff(client, world):
    give_points(world.member_a, 30)
    login(client, "secretary_a")
    html = _page(client, "/ledger/members")
    assert "member_a" in html and "member_a2" in html and "member_b" not in html
    assert "可用 30" in html


@pytest.mark.parametrize("who", ["member_a", "resident_a", "admin"])
def test_members_list_refused(client, world, who):
    login(client, who)
    assert client.get("/ledger/members").status_code == 403


def test_officer_sees_a_member_ledger_without_forms(client, world):
    tx = give_points(world.member_a, 30)
    login(client, "officer_street")
    html = _page(client, f"/ledger/members/{world.member_a.id}")
    assert "member_a 的积分" in html
    assert "调整积分" not in html and "冲正此交易" not in html
    assert (
        client.post(
            f"/ledger/transactions/{tx.id}/reverse",
            data={"reason": "x", "csrf_token": csrf_token(client, "/points")},
        ).status_code
        == 403
    )


@pytest.mark.parametrize("who", ["secretary_b", "member_a2", "officer_other", "resident_a"])
def test_member_ledger_hidden_from_others(client, world, who):
    login(client, who)
    assert client.get(f"/ledger/members/{world.member_a.id}").status_code == 404
    assert client.get("/ledger/members/99999").status_code == 404


def _adjust_form(client, user_id):
    html = _page(client, f"/ledger/members/{user_id}")
    form_key = re.search(r'name="form_key" value="([0-9a-f]{32})"', html).group(1)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    return form_key, token


def test_secretary_adjusts_through_the_form(client, world):
    login(client, "secretary_a")
    form_key, token = _adjust_form(client, world.member_a.id)
    data = {"amount": "15", "reason": "敬老活动组织", "form_key": form_key, "csrf_token": token}
    resp = client.post(f"/ledger/members/{world.member_a.id}/adjust", data=data)
    assert resp.status_code == 302
    # a double submit of the same form posts nothing more
    assert client.post(f"/ledger/members/{world.member_a.id}/adjust", data=data).status_code == 302
    assert points_of(world.member_a)["available"] == 15
    assert counts()["ledger_transactions"] == 1
    html = _page(client, f"/ledger/members/{world.member_a.id}")
    assert "已调整积分：+15" in html and "敬老活动组织" in html and "冲正此交易" in html


@pytest.mark.parametrize(
    ("amount", "reason", "status", "message"),
    [
        ("10", "", 422, None),
        ("10", "   ", 422, None),
        ("", "x", 422, None),
        ("abc", "x", 422, None),
        ("1.5", "x", 422, None),
        ("0", "x", 422, None),
        ("-5", "扣减", 409, "可用积分不足。"),
    ],
)
def test_adjust_form_refusals_change_nothing(client, world, amount, reason, status, message):
    login(client, "secretary_a")
    form_key, token = _adjust_form(client, world.member_a.id)
    before = counts()
    resp = client.post(
        f"/ledger/members/{world.member_a.id}/adjust",
        data={"amount": amount, "reason": reason, "form_key": form_key, "csrf_token": token},
    )
    assert resp.status_code == status
    html = resp.get_data(as_text=True)
    assert 'class="field-errors"' in html
    if message:
        assert message in html
    assert counts() == before


@pytest.mark.parametrize(
    ("lang", "amount", "reason", "shown", "not_shown"),
    [
        # marshmallow's Range message, its "Not a valid integer.", its "Missing data ..."
        ("zh_CN", "999999", "x", "取值范围：-100000 ~ 100000。", "Must be greater"),
        ("en", "999999", "x", "Must be between -100000 and 100000.", "取值范围"),
        ("zh_CN", "abc", "x", "请输入整数。", "Not a valid integer."),
        ("zh_CN", "10", "", "长度为 1 ~ 500 个字。", "Length must"),
        ("zh_CN", "0", "x", "不能为 0。", "Must not be 0."),
    ],
)
def test_adjust_form_errors_are_in_the_page_language(
    client, world, lang, amount, reason, shown, not_shown
):
    login(client, "secretary_a")
    form_key, token = _adjust_form(client, world.member_a.id)
    before = counts()
    resp = client.post(
        f"/ledger/members/{world.member_a.id}/adjust?lang={lang}",
        data={"amount": amount, "reason": reason, "form_key": form_key, "csrf_token": token},
    )
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert re.search(rf'<ul class="field-errors"><li>{re.escape(shown)}</li>', html), html[-3000:]
    assert not_shown not in html
    assert counts() == before


def test_adjust_form_needs_csrf_and_the_right_secretary(client, world):
    login(client, "secretary_a")
    resp = client.post(
        f"/ledger/members/{world.member_a.id}/adjust", data={"amount": "5", "reason": "x"}
    )
    assert resp.status_code == 400
    client2 = client.application.test_client()
    login(client2, "secretary_b")
    token = csrf_token(client2, "/ledger/members")
    resp = client2.post(
        f"/ledger/members/{world.member_a.id}/adjust",
        data={"amount": "5", "reason": "x", "csrf_token": token},
    )
    assert resp.status_code == 404
    assert counts()["ledger_transactions"] == 0


def test_secretary_reverses_through_the_form(client, world):
    tx = give_points(world.member_a, 30)
    login(client, "secretary_a")
    html = _page(client, f"/ledger/members/{world.member_a.id}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    url = f"/ledger/transactions/{tx.id}/reverse"
    assert client.post(url, data={"reason": "", "csrf_token": token}).status_code == 422
    assert client.post(url, data={"reason": "录入错误", "csrf_token": token}).status_code == 302
    assert points_of(world.member_a)["available"] == 0
    assert client.post(url, data={"reason": "again", "csrf_token": token}).status_code == 409
    html = _page(client, f"/ledger/members/{world.member_a.id}")
    assert "已被冲正" in html and "录入错误" in html


def test_nav_links(client, world):
    login(client, "member_a")
    assert 'href="/points"' in _page(client, "/")
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    login(client, "secretary_a")
    html = _page(client, "/")
    assert 'href="/ledger/members"' in html and 'href="/points"' not in html


def test_english_page(client, world):
    login(client, "member_a")
    html = _page(client, "/points?lang=en")
    assert "<svg" in html
