"""GET /api/v1/reports/communities and its page: the officer's comparison of the
communities of a subtree in a year, exports that parse back, permissions, bad input."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from ..conftest import login
from ..factories import bearer
from .conftest import recompute


def _get(client, user, area, year, fmt="json"):
    return client.get(
        f"/api/v1/reports/communities?area_id={area.id}&year={year}&format={fmt}",
        headers=bearer(user),
    )


def test_officer_compares_the_street(generated, client):
    g = generated
    w = g.world
    resp = _get(client, w.officer_street, w.street, g.year)
    assert resp.status_code == 200, resp.get_json()
    items = {r["community_id"]: r for r in resp.get_json()["items"]}
    assert set(items) == {w.community_a.id, w.community_b.id}
    expected = recompute([w.community_a.id], [w.community_a.id, w.community_b.id])
    a = items[w.community_a.id]
    assert a["points"] == sum(r["points_earned"] for r in expected.values())
    assert a["active_members"] == sum(1 for r in expected.values() if r["points_earned"] > 0)
    assert a["members"] == 6
    assert a["participation_rate"] == round(a["active_members"] / 6, 4)
    assert items[w.community_b.id]["active_members"] == 1
    rows = list(
        csv.reader(
            io.StringIO(
                _get(client, w.officer_street, w.street, g.year, "csv").data.decode("utf-8-sig")
            )
        )
    )
    assert rows[0][:3] == ["社区编号", "社区", "党员人数"] and len(rows) == 3
    wb = load_workbook(io.BytesIO(_get(client, w.officer_street, w.street, g.year, "xlsx").data))
    assert wb.active.freeze_panes == "A2" and wb.active.max_row == 3


@pytest.mark.parametrize(
    ("who", "where"),
    [
        ("member_a", "street"),
        ("officer_other", "street"),
        ("secretary_a", "street"),
        ("secretary_b", "community_a"),
    ],
)
def test_forbidden(world, client, who, where):
    resp = _get(client, getattr(world, who), getattr(world, where), 2026)
    assert resp.status_code == 403


@pytest.mark.parametrize(
    "query", ["area_id=1", "year=2026", "area_id=1&year=1999", "area_id=1&year=2026&format=doc"]
)
def test_bad_input(world, client, query):
    resp = client.get(
        f"/api/v1/reports/communities?{query}", headers=bearer(world.officer_district)
    )
    assert resp.status_code == 422


def test_grid_and_unknown_area(world, client):
    h = bearer(world.officer_district)
    assert (
        client.get(
            f"/api/v1/reports/communities?area_id={world.grid_a1.id}&year=2026", headers=h
        ).status_code
        == 422
    )
    assert (
        client.get("/api/v1/reports/communities?area_id=999999&year=2026", headers=h).status_code
        == 404
    )


def test_page_and_downloads(generated, client):
    g = generated
    w = g.world
    login(client, "officer_street")
    page = client.get(f"/reports/communities?area_id={w.street.id}&year={g.year}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "龙湖东岸社区" in html and "七里一村社区" in html and "下载 Excel" in html
    got = client.get(f"/reports/communities?area_id={w.street.id}&year={g.year}&format=csv")
    assert got.data.startswith(b"\xef\xbb\xbf")
    assert (
        client.get(f"/reports/communities?area_id={w.street2.id}&year={g.year}").status_code == 403
    )
    assert client.get(f"/reports/communities?area_id={w.street.id}&year=1990").status_code == 404
