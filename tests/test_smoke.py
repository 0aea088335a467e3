"""Smoke test of the fixtures: the world builds and an API call works on it."""

from .factories import bearer


def test_world_and_me(client, world):
    resp = client.get("/api/v1/me", headers=bearer(world.member_a))
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["user"]["username"] == "member_a"
    assert body["roles"] == [
        {"id": body["roles"][0]["id"], "role": "member", "area_id": world.community_a.id}
    ]
