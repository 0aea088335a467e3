"""The annual report page: pickers, rows, downloads, permissions, bad input."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from ..conftest import login


def test_secretary_sees_the_report_and_downloads_it(generated, client):
    g = generated
    w = g.world
    login(client, "secretary_a")
    page = client.get(f"/reports/annual?area_id={w.community_a.id}&year={g.year}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "年度考核表" in html and "区卫健局" in html and "下载 Excel" in html
    assert "13900000001" not in html  # no phones
    assert "style=" not in html and "<script>" not in html
    home = client.get("/").get_data(as_text=True)
    assert "/reports/annual" in home  # in the navigation
    got = client.get(f"/reports/annual?area_id={w.community_a.id}&year={g.year}&format=csv")
    assert got.status_code == 200 and got.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(got.data.decode("utf-8-sig"))))
    assert rows[0][2] == "姓名" and len(rows) == 7
    xlsx = client.get(f"/reports/annual?area_id={w.community_a.id}&year={g.year}&format=xlsx")
    assert xlsx.status_code == 200
    assert load_workbook(io.BytesIO(xlsx.data)).active.max_row == 7
    assert "不要重复点击" not in html  # six rows: no warning that a download takes a while


def test_a_large_report_warns_that_its_download_takes_a_while(generated, client, monkeypatch):
    from volunteer_market.web import evaluations as page_module

    g = generated
    w = g.world
    login(client, "secretary_a")
    monkeypatch.setattr(page_module, "LARGE_EXPORT", 5)
    html = client.get(f"/reports/annual?area_id={w.community_a.id}&year={g.year}").get_data(
        as_text=True
    )
    assert "共 6 行" in html and "不要重复点击" in html
    monkeypatch.setattr(page_module, "LARGE_EXPORT", 6)
    html = client.get(f"/reports/annual?area_id={w.community_a.id}&year={g.year}").get_data(
        as_text=True
    )
    assert "不要重复点击" not in html


def test_default_area_and_year(world, client):
    login(client, "officer_street")
    page = client.get("/reports/annual")
    assert page.status_code == 200
    assert "龙阳街" in page.get_data(as_text=True)


def test_wrong_role_is_forbidden(world, client):
    login(client, "member_a")
    assert client.get("/reports/annual").status_code == 403
    assert client.get(f"/reports/annual?area_id={world.community_a.id}").status_code == 403
    assert "/reports/annual" not in client.get("/").get_data(as_text=True)


def test_wrong_community_is_forbidden(world, client):
    login(client, "secretary_b")
    assert client.get(f"/reports/annual?area_id={world.community_a.id}").status_code == 403
    assert client.get(f"/reports/annual?area_id={world.street.id}").status_code == 403


def test_bad_input_is_a_clear_4xx(world, client):
    login(client, "secretary_a")
    a = world.community_a.id
    assert client.get(f"/reports/annual?area_id={a}&year=1990").status_code == 404
    assert client.get(f"/reports/annual?area_id={a}&format=pdf").status_code == 404
    assert client.get("/reports/annual?area_id=99999999").status_code == 404
    assert client.get(f"/reports/annual?area_id={world.grid_a1.id}").status_code == 404
    assert client.get("/reports/annual?area_id=abc&year=x").status_code == 200  # ignored


def test_the_printable_notice(last_year, client):
    from ..factories import bearer

    g = last_year
    w = g.world
    headers = bearer(w.secretary_a)
    eid = client.post(
        "/api/v1/evaluations",
        json={"community_id": w.community_a.id, "year": g.year},
        headers=headers,
    ).get_json()["id"]
    login(client, "member_a")
    assert client.get(f"/evaluations/{eid}/notice").status_code == 404  # not public yet
    assert (
        client.post(f"/api/v1/evaluations/{eid}/publish", json={}, headers=headers).status_code
        == 200
    )
    page = client.get(f"/evaluations/{eid}/notice")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"{g.year} 年度下沉党员服务考核公示" in html and "公示期" in html
    assert "member_x0" in html  # display names (the generated members' names)
    assert "区卫健局" not in html and "13900000001" not in html  # no home units, no phones
    assert "style=" not in html and "<script>" not in html
    from pathlib import Path

    import volunteer_market

    css = (Path(volunteer_market.__file__).parent / "static" / "style.css").read_text("utf-8")
    assert "size: A4" in css and "@media print" in css
    assert "style.css" in html


def test_the_notice_of_another_community_is_404(last_year, client):
    from ..factories import bearer

    g = last_year
    w = g.world
    headers = bearer(w.secretary_a)
    eid = client.post(
        "/api/v1/evaluations",
        json={"community_id": w.community_a.id, "year": g.year},
        headers=headers,
    ).get_json()["id"]
    client.post(f"/api/v1/evaluations/{eid}/publish", json={}, headers=headers)
    login(client, "resident_b")
    assert client.get(f"/evaluations/{eid}/notice").status_code == 404
    assert client.get("/evaluations/99999999/notice").status_code == 404
