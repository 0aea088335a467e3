"""Masks show nothing of the value; officers see no tags; the admin sees masks (issue 20, 6).

Before: masked household tags kept their first character (``残***``, ``空***``), which is
the tag; officers saw it; the admin saw every resident's full phone, address and tags,
against DESIGN.md "Privacy" (the secretary and grid workers of their community only).
"""

from __future__ import annotations

import pytest

from volunteer_market.services.users import MASK, mask_text

from ..conftest import login
from ..factories import bearer

PHONE, ADDRESS, TAGS = "13712341234", "龙湖东岸 3 栋 401", "空巢,独居"


def _leaks(text: str) -> list[str]:
    pieces = [PHONE, ADDRESS, TAGS, "空巢", "独居", "空*", "龙*", "龙湖东岸 3"]
    return [p for p in pieces if p in text]


@pytest.mark.parametrize("value", ["残疾", "空巢,独居", "x"])
def test_a_mask_shows_nothing_of_the_value(value):
    assert mask_text(value) == MASK
    assert not set(value) & set(mask_text(value) or "")
    assert mask_text(None) is None and mask_text("") == ""


@pytest.mark.parametrize("viewer", ["admin", "officer_street", "officer_district"])
def test_admin_and_officers_get_no_personal_data_on_the_api(client, world, viewer):
    user = world.users[viewer]
    resp = client.get(f"/api/v1/users/{world.resident_a.id}", headers=bearer(user))
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["phone"] == "137****1234"
    assert body["address"] == MASK
    assert body["household_tags"] == (MASK if viewer == "admin" else None)
    assert not _leaks(resp.get_data(as_text=True))


def test_the_admin_user_list_is_masked(client, world):
    login(client, "admin")
    page = client.get("/admin/users?page=1")
    assert page.status_code == 200
    assert "resident_a" in page.get_data(as_text=True)
    # the create form's label gives "空巢,独居" as an example of tags
    listing = page.get_data(as_text=True).replace("户情标签（如 空巢,独居）", "")
    assert not _leaks(listing)
    detail = client.get(f"/admin/users/{world.resident_a.id}")
    assert detail.status_code == 200
    assert not _leaks(detail.get_data(as_text=True))


def test_an_officer_page_shows_no_tag(client, world):
    login(client, "officer_street")
    detail = client.get(f"/admin/users/{world.resident_a.id}")
    assert detail.status_code == 200
    assert not _leaks(detail.get_data(as_text=True))
    assert MASK in detail.get_data(as_text=True)  # the address's mask


@pytest.mark.parametrize("viewer", ["secretary_a", "grid_a1", "resident_a"])
def test_the_community_and_the_resident_still_see_everything(client, world, viewer):
    resp = client.get(f"/api/v1/users/{world.resident_a.id}", headers=bearer(world.users[viewer]))
    body = resp.get_json()
    assert (body["phone"], body["address"], body["household_tags"]) == (PHONE, ADDRESS, TAGS)


def test_the_creator_of_a_user_without_roles_sees_what_they_typed(client, world):
    created = client.post(
        "/api/v1/users",
        json={
            "username": "newcomer",
            "password": "password123",
            "display_name": "新人",
            "phone": "13700001111",
            "household_tags": "独居",
        },
        headers=bearer(world.admin),
    )
    assert created.status_code == 201
    assert created.get_json()["household_tags"] == "独居"
