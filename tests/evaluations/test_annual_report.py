"""GET /api/v1/reports/annual: figures equal an independent recomputation from the
ledger and the deliveries, the CSV and XLSX parse back to the same rows, permissions,
bad input (never a 500), no ledger or delivery reads, and the rollup rebuild."""

from __future__ import annotations

import csv
import io
import re

import pytest
from openpyxl import load_workbook
from sqlalchemy import event

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.services import rankings

from ..factories import bearer
from .conftest import recompute

FIGURES = (
    "hours",
    "deliveries",
    "projects_led",
    "projects_joined",
    "average_score",
    "points_earned",
    "points_spent",
    "points_expired",
    "rank_community",
    "rank_street",
)
ZERO = {
    "hours": 0.0,
    "deliveries": 0,
    "projects_led": 0,
    "projects_joined": 0,
    "average_score": None,
    "points_earned": 0,
    "points_spent": 0,
    "points_expired": 0,
    "rank_community": None,
    "rank_street": None,
}


def _report(client, user, area, year, fmt="json", **extra):
    query = "&".join(f"{k}={v}" for k, v in {"format": fmt, **extra}.items())
    return client.get(
        f"/api/v1/reports/annual?area_id={area.id}&year={year}&{query}", headers=bearer(user)
    )


def _check_against_recomputation(items, expected, member_ids):
    by_user = {r["user_id"]: r for r in items}
    assert set(expected) <= set(by_user)
    assert len(by_user) == len(items)
    for uid, want in expected.items():
        got = by_user[uid]
        assert {k: got[k] for k in FIGURES} == {k: want[k] for k in FIGURES}, uid
    for uid, got in by_user.items():
        if uid not in expected:
            assert uid in member_ids
            assert {k: got[k] for k in FIGURES} == ZERO


def test_report_equals_an_independent_recomputation(generated, client):
    g = generated
    w = g.world
    expected = recompute([w.community_a.id], [w.community_a.id, w.community_b.id])
    assert len(expected) >= 4
    assert any(r["points_spent"] for r in expected.values())
    assert any(r["points_expired"] for r in expected.values())
    assert any(r["projects_led"] and r["projects_joined"] for r in expected.values())
    resp = _report(client, w.secretary_a, w.community_a, g.year)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["total"] == len(body["items"]) == 6
    member_ids = {m.id for m in g.members}
    _check_against_recomputation(body["items"], expected, member_ids)
    row = next(r for r in body["items"] if r["user_id"] == w.member_a.id)
    assert row["home_unit"] == "区卫健局"
    assert row["username"] == "member_a"
    assert "phone" not in row
    # Ranked by points earned.
    points = [r["points_earned"] for r in body["items"]]
    assert points == sorted(points, reverse=True)


def test_rebuilt_rollups_give_the_same_report(generated, client):
    g = generated
    w = g.world
    before = _report(client, w.secretary_a, w.community_a, g.year).get_json()
    db.session.rollback()
    with atomic():
        counts = rankings.rebuild()
    assert counts["annual_stats"] >= 4
    assert counts["annual_projects"] >= 4
    after = _report(client, w.secretary_a, w.community_a, g.year).get_json()
    assert after == before


def test_officer_sees_the_street_and_ranks_span_it(generated, client):
    g = generated
    w = g.world
    resp = _report(client, w.officer_street, w.street, g.year, per_page=100)
    assert resp.status_code == 200
    items = resp.get_json()["items"]
    communities = {r["community_id"] for r in items}
    assert communities == {w.community_a.id, w.community_b.id}
    expected = recompute([w.community_a.id, w.community_b.id], [w.community_a.id, w.community_b.id])
    member_ids = {m.id for m in g.members} | {w.member_b.id}
    _check_against_recomputation(items, expected, member_ids)
    # Paging.
    page = _report(client, w.officer_street, w.street, g.year, page=2, per_page=3).get_json()
    assert page["total"] == len(items)
    assert page["items"] == items[3:6]


def test_csv_has_a_bom_and_parses_back(generated, client):
    g = generated
    w = g.world
    rows = _report(client, w.secretary_a, w.community_a, g.year).get_json()["items"]
    resp = _report(client, w.secretary_a, w.community_a, g.year, "csv")
    assert resp.status_code == 200
    assert resp.mimetype == "text/csv"
    assert resp.data.startswith(b"\xef\xbb\xbf")
    assert "attachment" in resp.headers["Content-Disposition"]
    text = resp.data.decode("utf-8-sig")
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0][:4] == ["用户编号", "用户名", "姓名", "工作单位"]
    assert "服务时长（小时）" in parsed[0]
    assert len(parsed) == len(rows) + 1
    for line, row in zip(parsed[1:], rows, strict=True):
        assert int(line[0]) == row["user_id"]
        assert line[3] == row["home_unit"]
        assert float(line[5]) == row["hours"]
        assert int(line[10]) == row["points_earned"]
        assert line[13] == ("" if row["rank_community"] is None else str(row["rank_community"]))


def test_xlsx_parses_back_with_a_frozen_header(generated, client):
    g = generated
    w = g.world
    rows = _report(client, w.secretary_a, w.community_a, g.year).get_json()["items"]
    resp = _report(client, w.secretary_a, w.community_a, g.year, "xlsx")
    assert resp.status_code == 200
    assert resp.mimetype.endswith("spreadsheetml.sheet")
    wb = load_workbook(io.BytesIO(resp.data))
    ws = wb.active
    assert ws.freeze_panes == "A2"
    values = list(ws.iter_rows(values_only=True))
    assert values[0][2] == "姓名"
    assert values[0][6] == "服务次数"
    assert ws.column_dimensions["D"].width >= 10
    assert len(values) == len(rows) + 1
    for line, row in zip(values[1:], rows, strict=True):
        assert line[0] == row["user_id"]
        assert line[6] == row["deliveries"]
        assert line[10] == row["points_earned"]
        assert (line[9] if line[9] != "" else None) == row["average_score"]


@pytest.mark.parametrize(
    ("who", "where"),
    [
        ("member_a", "community_a"),  # wrong role
        ("resident_a", "community_a"),
        ("grid_a1", "community_a"),
        ("secretary_b", "community_a"),  # wrong community
        ("officer_other", "community_a"),  # wrong street
        ("secretary_a", "street"),  # a secretary sees their community only
    ],
)
def test_forbidden(generated, client, who, where):
    g = generated
    w = g.world
    resp = _report(client, getattr(w, who), getattr(w, where), g.year)
    assert resp.status_code == 403
    assert resp.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    "query",
    [
        "year=2026",  # no area
        "area_id=1",  # no year
        "area_id=abc&year=2026",
        "area_id=1&year=twenty",
        "area_id=1&year=1999",
        "area_id=1&year=10000",
        "area_id=1&year=2026&format=pdf",
        "area_id=1&year=2026&per_page=101",
        "area_id=1&year=2026&page=0",
        "area_id=0&year=2026",
    ],
)
def test_bad_input_is_422(world, client, query):
    resp = client.get(f"/api/v1/reports/annual?{query}", headers=bearer(world.officer_district))
    assert resp.status_code == 422, resp.get_json()


def test_unknown_area_404_grid_422_anonymous_401(world, client):
    h = bearer(world.officer_district)
    assert (
        client.get("/api/v1/reports/annual?area_id=999999&year=2026", headers=h).status_code == 404
    )
    grid = client.get(f"/api/v1/reports/annual?area_id={world.grid_a1.id}&year=2026", headers=h)
    assert grid.status_code == 422
    assert client.get("/api/v1/reports/annual?area_id=1&year=2026").status_code == 401


def test_a_report_request_never_reads_the_ledger_or_deliveries(generated, client):
    g = generated
    w = g.world
    headers = bearer(w.officer_district)
    seen: list[str] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        resp = client.get(
            f"/api/v1/reports/annual?area_id={w.district.id}&year={g.year}", headers=headers
        )
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    assert resp.status_code == 200
    assert [s for s in seen if "annual_stats" in s]
    for table in (
        "ledger_entries",
        "ledger_transactions",
        "deliveries",
        "delivery_participants",
        "ratings",
    ):
        # a table read is ``FROM/JOIN table``; ``annual_stats.deliveries`` is a column
        assert not [s for s in seen if re.search(rf"\b(FROM|JOIN)\s+{table}\b", s)], table


@pytest.mark.parametrize("per_page", [1, 2, 3, 5, 100])
def test_pages_cut_the_full_report_and_build_only_their_communities(
    generated, client, monkeypatch, per_page
):
    """Every page of the district equals the same cut of the full report (all rows,
    in order, none twice), ``total`` is the full count, and a page builds only the
    communities it overlaps."""
    from volunteer_market.services.evaluations import report

    g = generated
    w = g.world
    everything = list(report.iter_rows(w.district, g.year))
    assert len({r["community_id"] for r in everything}) >= 2
    built: list[list[int]] = []
    rows_for = report.rows_for

    def recording(communities, year):
        built.append([c.id for c in communities])
        return rows_for(communities, year)

    monkeypatch.setattr(report, "rows_for", recording)
    pages: list[dict] = []
    page = 1
    while True:
        resp = _report(client, w.officer_district, w.district, g.year, page=page, per_page=per_page)
        assert resp.status_code == 200
        body = resp.get_json()
        assert body["total"] == len(everything)
        if not body["items"]:
            break
        pages += body["items"]
        cut = everything[(page - 1) * per_page : page * per_page]
        assert body["items"] == cut
        assert sorted(built[-1]) == sorted({r["community_id"] for r in cut})
        page += 1
    assert pages == everything
    assert page - 1 == -(-len(everything) // per_page)


def test_a_reversed_expiry_counts_back_the_same_incrementally_and_rebuilt(generated, client):
    """Reversing an expiry gives the points back: ``points_expired`` drops by its amount,
    and the rebuild (which reads a reversal's amounts under its original's kind) agrees
    with the incremental rollups."""
    import sqlalchemy as sa

    from volunteer_market.models import LedgerTransaction, TransactionKind
    from volunteer_market.services import ledger

    g = generated
    w = g.world

    def expired_of(user_id):
        body = _report(client, w.secretary_a, w.community_a, g.year).get_json()
        return next(r for r in body["items"] if r["user_id"] == user_id)["points_expired"]

    assert expired_of(w.member_a2.id) == 3
    db.session.rollback()
    with atomic():
        expiry = db.session.scalars(
            sa.select(LedgerTransaction).where(LedgerTransaction.kind == TransactionKind.EXPIRE)
        ).one()
        ledger.reverse(None, expiry, "误过期")
    assert expired_of(w.member_a2.id) == 0
    incremental = _report(client, w.secretary_a, w.community_a, g.year).get_json()
    db.session.rollback()
    with atomic():
        rankings.rebuild()
    assert _report(client, w.secretary_a, w.community_a, g.year).get_json() == incremental
