"""Reward pages: the shop, redeeming, my redemptions with codes and QR, the phone
fulfilment page, management, stock report and history -- allowed users, wrong
roles (403) and other communities (404)."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import Redemption, RedemptionStatus, Reward

from ..conftest import login, post_form
from ..factories import give_points, image_bytes, make_reward, points_of, redeem
from .conftest import verified

PNG = image_bytes("png")


def _text(resp) -> str:
    return resp.get_data(as_text=True)


def _form_key(html: str) -> str:
    match = re.search(r'name="form_key" value="([0-9a-f]{32})"', html)
    assert match
    return match.group(1)


def logout(client) -> None:
    assert post_form(client, "/logout", {}).status_code == 302


def fresh(model, ident):
    """Return the committed row (requests run in their own sessions)."""
    db.session.rollback()
    db.session.expire_all()
    return db.session.get(model, ident)


def _status(redemption_id: int) -> RedemptionStatus:
    return fresh(Redemption, redemption_id).status


@pytest.fixture
def shop(world):
    """member_a with 100 points; three rewards in community A; one held redemption."""
    give_points(world.member_a, 100)
    give_points(world.member_b, 100)
    cheap = make_reward(world.community_a, by=world.secretary_a, name="理发券", cost=10, stock=5)
    dear = make_reward(world.community_a, name="体检券", cost=500, sponsor="社区医院")
    other = make_reward(world.community_b, name="七里一村券", cost=10)
    held = redeem(world.member_a, cheap)
    return {"cheap": cheap, "dear": dear, "other": other, "held": held}


def test_anonymous_is_sent_to_login(client, world):
    for path in ("/rewards", "/rewards/manage", "/rewards/fulfil", "/redemptions/mine"):
        resp = client.get(path)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_shop_shows_what_i_can_afford_and_my_codes(client, world, shop):
    login(client, "member_a")
    resp = client.get("/rewards")
    assert resp.status_code == 200
    html = _text(resp)
    assert "理发券" in html and "体检券" in html and "七里一村券" not in html
    assert "积分足够" in html and "还差 410 积分" in html
    assert "剩余 4" in html
    code = shop["held"].pickup_code
    assert f"{code[:4]} {code[4:]}" in html
    assert 'src="data:image/svg+xml' in html
    assert "<script" not in html and 'style="' not in html
    assert 'href="/rewards"' in _text(client.get("/"))  # nav link


@pytest.mark.parametrize("who", ["resident_a", "secretary_a", "officer_street", "grid_a1", "admin"])
def test_shop_is_for_members(client, world, shop, who):
    login(client, who)
    assert client.get("/rewards").status_code == 403
    assert client.get("/redemptions/mine").status_code == 200  # (empty for non-members)


def test_reward_page_visibility(client, world, shop):
    login(client, "member_a")
    assert client.get(f"/rewards/{shop['cheap'].id}").status_code == 200
    assert 'name="quantity"' in _text(client.get(f"/rewards/{shop['cheap'].id}"))
    assert client.get(f"/rewards/{shop['other'].id}").status_code == 404
    assert client.get("/rewards/99999").status_code == 404
    assert client.get("/rewards/99999999999999999999").status_code == 404
    logout(client)
    login(client, "secretary_a")
    html = _text(client.get(f"/rewards/{shop['cheap'].id}"))
    assert 'name="quantity"' not in html and "/edit" in html


def test_redeem_from_the_page(client, world, shop):
    login(client, "member_a")
    page = _text(client.get(f"/rewards/{shop['cheap'].id}"))
    key = _form_key(page)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    data = {"quantity": "2", "form_key": key, "csrf_token": token}
    resp = client.post(f"/rewards/{shop['cheap'].id}/redeem", data=data)
    assert resp.status_code == 302
    location = resp.headers["Location"]
    again = client.post(f"/rewards/{shop['cheap'].id}/redeem", data=data)  # double submit
    assert again.status_code == 302 and again.headers["Location"] == location
    assert points_of(world.member_a) == {"available": 70, "held": 30, "earned_total": 0}
    detail = client.get(location)
    assert detail.status_code == 200 and detail.headers["Cache-Control"] == "no-store"
    assert "取消兑换" in _text(detail) and 'class="qr"' in _text(detail)
    verified()


@pytest.mark.parametrize(
    "quantity, status, text",
    [("abc", 422, "请输入 1 到 100 之间的整数"), ("0", 422, "请输入"), ("9", 409, "库存不足")],
)
def test_redeem_refusals_on_the_page(client, world, shop, unchanged, quantity, status, text):
    login(client, "member_a")
    with unchanged():
        resp = post_form(
            client,
            f"/rewards/{shop['cheap'].id}/redeem",
            {"quantity": quantity},
            token_from=f"/rewards/{shop['cheap'].id}",
        )
    assert resp.status_code == status
    assert text in _text(resp)


def test_redeem_page_refusals_by_role(client, world, shop, unchanged):
    login(client, "member_a")
    with unchanged():
        resp = post_form(client, f"/rewards/{shop['dear'].id}/redeem", {"quantity": "1"})
        assert resp.status_code == 409 and "可用积分不足" in _text(resp)
        assert (
            post_form(client, f"/rewards/{shop['other'].id}/redeem", {"quantity": "1"}).status_code
            == 404
        )
        assert (
            client.post(f"/rewards/{shop['cheap'].id}/redeem", data={"quantity": "1"}).status_code
            == 400
        )
    logout(client)
    login(client, "resident_a")
    with unchanged():
        assert (
            post_form(client, f"/rewards/{shop['cheap'].id}/redeem", {"quantity": "1"}).status_code
            == 403
        )


def test_redemption_pages_by_viewer(client, world, shop):
    rid = shop["held"].redemption.id
    code = shop["held"].pickup_code
    login(client, "member_a")
    assert code[:4] in _text(client.get(f"/redemptions/{rid}"))
    assert code[:4] in _text(client.get("/redemptions/mine"))
    logout(client)
    login(client, "secretary_a")
    html = _text(client.get(f"/redemptions/{rid}"))
    assert f"{code[:4]} {code[4:]}" not in html and "拒绝兑换" in html
    assert "理发券" in _text(client.get("/redemptions"))
    logout(client)
    for who in ("member_a2", "secretary_b", "officer_other", "resident_a"):
        login(client, who)
        assert client.get(f"/redemptions/{rid}").status_code == 404
        assert "理发券" not in _text(client.get("/redemptions"))
        logout(client)


def test_cancel_and_reject_pages(client, world, shop, unchanged):
    rid = shop["held"].redemption.id
    second = redeem(world.member_a, shop["cheap"]).redemption.id
    login(client, "member_a2")
    with unchanged():
        assert post_form(client, f"/redemptions/{rid}/cancel", {}).status_code == 404
    logout(client)
    login(client, "member_a")
    with unchanged():
        assert post_form(client, f"/redemptions/{rid}/reject", {"reason": "x"}).status_code == 403
    assert post_form(client, f"/redemptions/{rid}/cancel", {}).status_code == 302
    assert _status(rid) == RedemptionStatus.CANCELLED
    with unchanged():
        resp = post_form(client, f"/redemptions/{rid}/cancel", {})
        assert resp.status_code == 409 and "已取消" in _text(resp)
    logout(client)
    login(client, "secretary_a")
    with unchanged():
        resp = post_form(client, f"/redemptions/{second}/reject", {"reason": "  "})
        assert resp.status_code == 422 and "拒绝原因" in _text(resp)
    assert (
        post_form(client, f"/redemptions/{second}/reject", {"reason": "奖品已发完"}).status_code
        == 302
    )
    assert _status(second) == RedemptionStatus.REJECTED
    assert points_of(world.member_a) == {"available": 100, "held": 0, "earned_total": 0}
    verified()


def test_fulfilment_page_on_a_phone(client, world, shop, unchanged):
    rid = shop["held"].redemption.id
    code = shop["held"].pickup_code
    login(client, "secretary_a")
    page = client.get("/rewards/fulfil")
    assert page.status_code == 200 and 'inputmode="numeric"' in _text(page)
    # Scanning the member's QR opens this URL with the code filled in.
    scanned = client.get(f"/rewards/fulfil?code={code}")
    html = _text(scanned)
    assert scanned.status_code == 200 and "member_a" in html and "确认已发放" in html
    assert f'name="redemption_id" value="{rid}"' in html
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    assert client.get(f"/rewards/fulfil?code={wrong}").status_code == 404
    assert client.get("/rewards/fulfil?code=12ab").status_code == 422
    # refused, and counted towards the lock-out (tests/security/test_pickup_lockout.py)
    resp = post_form(
        client,
        "/rewards/fulfil",
        {"code": wrong, "redemption_id": str(rid)},
        token_from="/rewards/fulfil",
    )
    assert resp.status_code == 422 and "取货码不正确" in _text(resp)
    assert _status(rid) == RedemptionStatus.HELD
    resp = post_form(
        client,
        "/rewards/fulfil",
        {"code": code, "redemption_id": str(rid)},
        token_from="/rewards/fulfil",
    )
    assert resp.status_code == 302
    assert _status(rid) == RedemptionStatus.FULFILLED
    with unchanged():  # fulfilling twice
        resp = post_form(
            client,
            "/rewards/fulfil",
            {"code": code, "redemption_id": str(rid)},
            token_from="/rewards/fulfil",
        )
        assert resp.status_code == 409 and "已核销" in _text(resp)
    verified()


@pytest.mark.parametrize(
    "who, status", [("member_a", 403), ("resident_a", 403), ("officer_street", 403)]
)
def test_fulfilment_page_is_for_secretaries(client, world, shop, who, status):
    login(client, who)
    assert client.get("/rewards/fulfil").status_code == status


def test_other_secretary_cannot_fulfil(client, world, shop, unchanged):
    rid = shop["held"].redemption.id
    code = shop["held"].pickup_code
    login(client, "secretary_b")
    assert client.get(f"/rewards/fulfil?code={code}").status_code == 404
    with unchanged():
        resp = post_form(
            client,
            "/rewards/fulfil",
            {"code": code, "redemption_id": str(rid)},
            token_from="/rewards/fulfil",
        )
        assert resp.status_code == 404


@pytest.mark.parametrize("rid", ["", "x", "²", str(10**20)])
def test_fulfilment_of_an_impossible_redemption_id_is_404(client, world, shop, unchanged, rid):
    login(client, "secretary_a")
    with unchanged():
        resp = post_form(
            client,
            "/rewards/fulfil",
            {"code": shop["held"].pickup_code, "redemption_id": rid},
            token_from="/rewards/fulfil",
        )
        assert resp.status_code == 404


def test_management_pages(client, world, shop):
    login(client, "secretary_a")
    html = _text(client.get("/rewards/manage"))
    assert "理发券" in html and "体检券" in html and "七里一村券" not in html
    stock = client.get("/rewards/stock")
    assert stock.status_code == 200 and "理发券" in _text(stock)
    changes = client.get(f"/rewards/{shop['cheap'].id}/stock")
    assert changes.status_code == 200 and "兑换预留" in _text(changes)
    assert client.get(f"/rewards/{shop['other'].id}/stock").status_code == 404
    assert client.get(f"/rewards/{shop['cheap'].id}/edit").status_code == 200
    logout(client)
    login(client, "officer_street")
    html = _text(client.get("/rewards/manage"))
    assert "理发券" in html and "七里一村券" in html
    logout(client)
    login(client, "member_a")
    for path in (
        "/rewards/manage",
        "/rewards/stock",
        "/rewards/new",
        f"/rewards/{shop['cheap'].id}/stock",
        f"/rewards/{shop['cheap'].id}/edit",
    ):
        assert client.get(path).status_code == 403, path


def test_create_reward_with_the_form(client, world, app):
    login(client, "secretary_a")
    page = _text(client.get("/rewards/new"))
    assert (
        f'value="{world.community_a.id}"' in page and f'value="{world.community_b.id}"' not in page
    )
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    from io import BytesIO

    data = {
        "csrf_token": token,
        "area_id": str(world.community_a.id),
        "name": "中百超市购物券",
        "description": "面值 20 元",
        "sponsor": "中百超市",
        "cost": "50",
        "stock": "20",
        "per_member_limit": "2",
        "limit_period": "month",
        "active_from": "2026-01-01",
        "active_to": "2026-12-31",
        "is_active": "1",
        "image": (BytesIO(PNG), "q.png"),
    }
    resp = client.post("/rewards/new", data=data, content_type="multipart/form-data")
    assert resp.status_code == 302, _text(resp)[:2000]
    db.session.rollback()
    reward = db.session.execute(
        sa.select(Reward).where(Reward.name == "中百超市购物券")
    ).scalar_one()
    assert (reward.cost, reward.stock, reward.per_member_limit) == (50, 20, 2)
    assert reward.image_path and reward.active_to.isoformat().startswith("2026-12-31T16:00")
    img = client.get(f"/rewards/{reward.id}/image")
    assert img.status_code == 200
    img.close()
    bad = dict(data, cost="0", image=(BytesIO(PNG), "q.png"))
    resp = client.post("/rewards/new", data=bad, content_type="multipart/form-data")
    assert resp.status_code == 422
    bad = dict(data, area_id=str(world.community_b.id), image=(BytesIO(PNG), "q.png"))
    assert (
        client.post("/rewards/new", data=bad, content_type="multipart/form-data").status_code == 403
    )


def test_edit_form_applies_only_a_changed_stock(client, world, shop):
    reward = shop["cheap"]  # stock 5, one reserved -> 4
    login(client, "secretary_a")
    page = _text(client.get(f"/rewards/{reward.id}/edit"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    base = {
        "csrf_token": token,
        "name": "理发券（新）",
        "cost": "10",
        "stock": "4",
        "stock_loaded": "4",
        "limit_period": "all",
        "is_active": "1",
    }
    redeem(world.member_a, reward)  # a reservation after the page was loaded: 3 left
    assert client.post(f"/rewards/{reward.id}/edit", data=base).status_code == 302
    reward = fresh(Reward, reward.id)
    assert reward.name == "理发券（新）" and reward.stock == 3  # the stale 4 was not applied
    assert client.post(f"/rewards/{reward.id}/edit", data=dict(base, stock="10")).status_code == 302
    assert fresh(Reward, reward.id).stock == 10
    assert (
        client.post(f"/rewards/{reward.id}/retire", data={"csrf_token": token}).status_code == 302
    )
    assert client.get(f"/rewards/{reward.id}/edit").status_code == 200
    resp = client.post(f"/rewards/{reward.id}/edit", data=base)
    assert resp.status_code == 409
    logout(client)
    login(client, "secretary_b")
    assert client.get(f"/rewards/{reward.id}/edit").status_code == 404
    verified()


def test_history_filters(client, world, shop):
    login(client, "secretary_a")
    assert "理发券" in _text(client.get("/redemptions?status=held"))
    assert "理发券" not in _text(client.get("/redemptions?status=fulfilled"))
    assert client.get("/redemptions?status=bogus").status_code == 200


@pytest.mark.parametrize("who", ["secretary_b", "member_b", "officer_other"])
def test_other_communities_get_404_on_every_page(client, world, shop, unchanged, who):
    rid = shop["held"].redemption.id
    reward_id = shop["cheap"].id
    login(client, who)
    for path in (
        f"/rewards/{reward_id}",
        f"/rewards/{reward_id}/image",
        f"/redemptions/{rid}",
    ):
        assert client.get(path).status_code == 404, path
    with unchanged():
        for path, data in (
            (f"/rewards/{reward_id}/redeem", {"quantity": "1"}),
            (f"/rewards/{reward_id}/retire", {}),
            (f"/rewards/{reward_id}/edit", {"name": "x", "cost": "1"}),
            (f"/redemptions/{rid}/cancel", {}),
            (f"/redemptions/{rid}/reject", {"reason": "x"}),
        ):
            assert post_form(client, path, data).status_code == 404, path
