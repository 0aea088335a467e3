"""Bulk import of residents and members (issue 18, item 1): who may, the checks with row
and field, dry run writes nobody, encodings and XLSX, idempotent re-runs, the background
runner, the command line and the pages."""

from __future__ import annotations

import csv
import io
import threading
import time

import pytest
import sqlalchemy as sa
from openpyxl import Workbook, load_workbook

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.http.imports import run_job
from volunteer_market.models import ImportJob, ImportKind, Role, RoleGrant, User
from volunteer_market.services import imports

from ..conftest import csrf_token, login
from ..factories import bearer
from ..ledger.conftest import run_threads
from .conftest import counts, user_state

HEADER = ["姓名", "手机号", "网格", "家庭标签"]


@pytest.fixture
def app_config(app_config):
    return {**app_config, "IMPORT_RUNNER": "inline"}


def csv_bytes(rows, header=HEADER, encoding="utf-8") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def xlsx_bytes(rows, header=HEADER) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def people(n: int, start: int = 0, grid: str = "第一网格"):
    return [
        [f"居民{i}", f"135{i:08d}", grid if i % 2 else "", "空巢" if i % 3 else ""]
        for i in range(start, start + n)
    ]


def upload(
    client,
    headers,
    data: bytes,
    *,
    community,
    kind="residents",
    dry_run=False,
    filename="people.csv",
):
    return client.post(
        "/api/v1/imports",
        data={
            "file": (io.BytesIO(data), filename),
            "kind": kind,
            "community_id": str(community.id),
            "dry_run": "true" if dry_run else "false",
        },
        headers=headers,
        content_type="multipart/form-data",
    )


def imported(prefix: str = "135") -> int:
    db.session.rollback()
    return db.session.execute(
        sa.select(sa.func.count()).select_from(User).where(User.phone.like(prefix + "%"))
    ).scalar_one()


# --- the big file, re-runs ---------------------------------------------------------------


def test_ten_thousand_rows_then_a_re_import_creates_nothing(client, world):
    headers = bearer(world.secretary_b)
    data = csv_bytes(people(10_000))
    before = counts()
    resp = upload(client, headers, data, community=world.community_b)
    assert resp.status_code == 202, resp.get_json()
    body = resp.get_json()
    assert (body["status"], body["total"], body["done"]) == ("done", 10_000, 10_000)
    assert (body["created"], body["updated"], body["refused"]) == (10_000, 0, 0)
    after = counts()
    assert after["users"] == before["users"] + 10_000
    assert after["role_grants"] == before["role_grants"] + 10_000
    grid_residents = db.session.execute(
        sa.select(sa.func.count())
        .select_from(RoleGrant)
        .where(RoleGrant.area_id == world.grid_b1.id, RoleGrant.role == Role.RESIDENT)
    ).scalar_one()
    assert grid_residents == 5_000 + 1  # odd rows name the grid; resident_b lives there
    again = upload(client, headers, data, community=world.community_b).get_json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 10_000)
    assert counts()["users"] == after["users"]
    assert counts()["role_grants"] == after["role_grants"]


def test_an_existing_person_is_updated_not_duplicated(client, world):
    rows = [["王秀兰", "137-1234-9999", "第一网格", "独居,空巢"], ["新人", "13500000001", "", ""]]
    before = counts()
    body = upload(
        client, bearer(world.secretary_b), csv_bytes(rows), community=world.community_b
    ).get_json()
    assert (body["created"], body["updated"], body["unchanged"]) == (1, 1, 0), body
    assert counts()["users"] == before["users"] + 1
    resident = db.session.execute(
        sa.select(User.username, User.display_name, User.household_tags).where(
            User.id == world.resident_b.id
        )
    ).one()
    assert tuple(resident) == ("resident_b", "王秀兰", "独居,空巢")  # their account, updated


def test_members_get_their_work_unit_and_the_member_role(client, world):
    rows = [["李明", "13900139000", "", "区卫健局"]]
    header = ["姓名", "手机号", "网格", "工作单位"]
    body = upload(
        client,
        bearer(world.secretary_b),
        csv_bytes(rows, header),
        community=world.community_b,
        kind="members",
    ).get_json()
    assert body["created"] == 1
    member = db.session.execute(sa.select(User).where(User.phone == "13900139000")).scalar_one()
    assert member.home_unit == "区卫健局"
    assert [(g.role, g.area_id) for g in member.grants] == [(Role.MEMBER, world.community_b.id)]


# --- the checks --------------------------------------------------------------------------


def test_bad_rows_are_reported_by_row_and_field_and_a_dry_run_writes_nobody(client, world):
    rows = [
        ["好人", "13500000001", "第一网格", "空巢"],  # 1: fine
        ["", "13500000002", "", ""],  # 2: no name
        ["坏号码", "12345", "", ""],  # 3: phone
        ["无网格", "13500000004", "第九网格", ""],  # 4: no such grid in B
        ["怪标签", "13500000005", "", "空巢,有钱"],  # 5: unknown tag
        ["重复", "135 0000 0001", "", ""],  # 6: the phone of row 1
        ["外社区", "13712341234", "", ""],  # 7: resident_a lives in community A
        ["书记", "13800000001", "", ""],  # 8: secretary_a: a staff account
    ]
    headers = bearer(world.secretary_b)
    before, state = counts(), user_state()
    resp = upload(client, headers, csv_bytes(rows), community=world.community_b, dry_run=True)
    assert resp.status_code == 202
    body = resp.get_json()
    assert body["dry_run"] is True and body["status"] == "done"
    assert (body["total"], body["created"], body["refused"]) == (8, 1, 7)
    found = {(e["row"], e["field"]) for e in body["errors"]}
    assert found == {
        (2, "display_name"),
        (3, "phone"),
        (4, "grid"),
        (5, "household_tags"),
        (6, "phone"),
        (7, "phone"),
        (8, "phone"),
    }
    messages = {e["row"]: e["message"] for e in body["errors"]}
    assert messages[6] == "The same phone number is on row 1."
    assert "有钱" in messages[5]
    assert "another community" in messages[7] and "staff" in messages[8]
    assert all("pattern" not in m for m in messages.values())
    after = counts()
    assert after["users"] == before["users"] and after["role_grants"] == before["role_grants"]
    assert user_state() == state


def test_a_real_run_writes_the_good_rows_and_refuses_the_bad(client, world):
    rows = [["好人", "13500000001", "", ""], ["坏号码", "1350000000x", "", ""]]
    body = upload(
        client, bearer(world.secretary_b), csv_bytes(rows), community=world.community_b
    ).get_json()
    assert (body["created"], body["refused"], body["done"]) == (1, 1, 2)
    assert body["errors"] == [{"row": 2, "field": "phone", "message": body["errors"][0]["message"]}]
    assert imported() == 1


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (b"", "empty.csv"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "x.png"),
        (b"name,phone\n", "header-only.csv"),
        ("网格,家庭标签\n第一网格,空巢\n".encode(), "no-required-columns.csv"),
        ("姓名,姓名,手机号\n甲,乙,13500000001\n".encode(), "twice.csv"),
        (b"PK\x03\x04 not really a zip", "broken.xlsx"),
        (b"\xff\xfe\x00\x00\xff" * 20, "binary.csv"),
    ],
)
def test_unreadable_files_are_422_and_change_nothing(client, world, data, filename):
    headers = bearer(world.secretary_b)
    before = counts()
    resp = upload(client, headers, data, community=world.community_b, filename=filename)
    assert resp.status_code == 422, resp.get_json()
    assert "file" in resp.get_json()["errors"]
    assert counts() == before


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"kind": "pets"}, "kind"),
        ({"kind": None}, "kind"),
        ({"community_id": "abc"}, "community_id"),
        ({"community_id": "99999999"}, "community_id"),
        ({"community_id": "0"}, "community_id"),
        ({"dry_run": "maybe"}, "dry_run"),
        ({"extra": "1"}, "extra"),
        ({"file": None}, "file"),
    ],
)
def test_bad_form_fields_are_422(client, world, form, field):
    headers = bearer(world.secretary_b)
    data = {
        "file": (io.BytesIO(csv_bytes(people(2))), "p.csv"),
        "kind": "residents",
        "community_id": str(world.community_b.id),
        **form,
    }
    data = {k: v for k, v in data.items() if v is not None}
    before = counts()
    resp = client.post(
        "/api/v1/imports", data=data, headers=headers, content_type="multipart/form-data"
    )
    assert resp.status_code == 422, resp.get_json()
    assert field in resp.get_json()["errors"]
    assert counts() == before


def test_a_grid_is_not_a_community(client, world):
    headers = bearer(world.admin)
    before = counts()
    resp = upload(client, headers, csv_bytes(people(1)), community=world.grid_b1)
    assert resp.status_code == 422
    assert counts() == before


# --- encodings and formats ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("encode", "name"),
    [
        (lambda b: b.decode().encode("gb18030"), "gb18030.csv"),
        (lambda b: b"\xef\xbb\xbf" + b, "bom.csv"),
        (lambda b: b, "plain.csv"),
    ],
)
def test_gb18030_and_bom_files(client, world, encode, name):
    rows = [["张桂英", "13500000001", "第一网格", "空巢,独居"], ["李　明", "13500000002", "", ""]]
    body = upload(
        client,
        bearer(world.secretary_b),
        encode(csv_bytes(rows)),
        community=world.community_b,
        filename=name,
    ).get_json()
    assert (body["created"], body["refused"]) == (2, 0), body
    first = db.session.execute(sa.select(User).where(User.phone == "13500000001")).scalar_one()
    assert first.display_name == "张桂英" and first.household_tags == "空巢,独居"


def test_xlsx_with_phone_numbers_in_number_cells(client, world):
    rows = [["张桂英", 13500000001, "第一网格", "空巢"], ["王伟", "13500000002", None, None]]
    body = upload(
        client,
        bearer(world.secretary_b),
        xlsx_bytes(rows),
        community=world.community_b,
        filename="people.xlsx",
    ).get_json()
    assert (body["created"], body["refused"]) == (2, 0), body
    assert imported() == 2


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_the_template_has_chinese_headers_and_reimports(client, world, fmt):
    headers = bearer(world.secretary_b)
    resp = client.get(f"/api/v1/imports/template?kind=residents&format={fmt}", headers=headers)
    assert resp.status_code == 200
    if fmt == "xlsx":
        sheet = load_workbook(io.BytesIO(resp.data)).active
        header = [c.value for c in next(sheet.iter_rows())]
    else:
        assert resp.data.startswith(b"\xef\xbb\xbf")
        header = next(csv.reader(io.StringIO(resp.data.decode("utf-8-sig"))))
    assert header[:2] == ["姓名", "手机号"] and "网格" in header and "家庭标签" in header
    # the template itself (its example row) imports
    body = upload(
        client,
        headers,
        resp.data,
        community=world.community_b,
        dry_run=True,
        filename=f"t.{fmt}",
    ).get_json()
    assert (body["created"], body["refused"]) == (1, 0), body


# --- who may -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("secretary_a", 403),  # another community's secretary
        ("secretary_c", 403),
        ("officer_street", 403),
        ("grid_b1", 403),
        ("member_b", 403),
        ("resident_b", 403),
        ("admin", 202),
        ("secretary_b", 202),
    ],
)
def test_who_may_import_into_community_b(client, world, who, status):
    headers = bearer(world.users[who])
    before = counts()
    resp = upload(client, headers, csv_bytes(people(3)), community=world.community_b)
    assert resp.status_code == status
    if status == 403:
        assert counts() == before
        dry = upload(
            client, headers, csv_bytes(people(3)), community=world.community_b, dry_run=True
        )
        assert dry.status_code == 403
        assert counts() == before
    else:
        assert imported() == 3


def test_anonymous_is_401(client, world):
    resp = upload(client, {}, csv_bytes(people(1)), community=world.community_b)
    assert resp.status_code == 401
    assert client.get("/api/v1/imports/template?kind=residents").status_code == 401


def test_only_the_starter_reads_a_job(client, world):
    body = upload(
        client,
        bearer(world.secretary_b),
        csv_bytes(people(1)),
        community=world.community_b,
        dry_run=True,
    ).get_json()
    for who in ("secretary_a", "admin", "member_b"):
        resp = client.get(f"/api/v1/imports/{body['id']}", headers=bearer(world.users[who]))
        assert resp.status_code == 404
    mine = client.get(f"/api/v1/imports/{body['id']}", headers=bearer(world.secretary_b))
    assert mine.status_code == 200 and mine.get_json()["total"] == 1
    assert (
        client.get("/api/v1/imports/2147483647", headers=bearer(world.secretary_b)).status_code
        == 404
    )


def test_template_refused_to_residents_and_members(client, world):
    for who in ("member_b", "resident_b", "grid_b1"):
        resp = client.get(
            "/api/v1/imports/template?kind=residents", headers=bearer(world.users[who])
        )
        assert resp.status_code == 403
    bad = client.get("/api/v1/imports/template?kind=x", headers=bearer(world.secretary_b))
    assert bad.status_code == 422


# --- imported people, runners ------------------------------------------------------------


def test_an_imported_resident_signs_in_only_after_a_password_is_set(client, world):
    upload(
        client,
        bearer(world.secretary_b),
        csv_bytes([["赵大妈", "13500000001", "", ""]]),
        community=world.community_b,
    )
    for password in ("", "password123", "!"):
        resp = client.post(
            "/api/v1/auth/token", json={"username": "13500000001", "password": password or "x"}
        )
        assert resp.status_code in (401, 422)
    person = db.session.execute(sa.select(User).where(User.phone == "13500000001")).scalar_one()
    reset = client.post(
        f"/api/v1/users/{person.id}/password-reset",
        json={"password": "first-pass-1"},
        headers=bearer(world.secretary_b),
    )
    assert reset.status_code == 204
    token = client.post(
        "/api/v1/auth/token", json={"username": "13500000001", "password": "first-pass-1"}
    )
    assert token.status_code == 201 and token.get_json()["user"]["must_change_password"]


def _pending_job(world, n: int, start: int = 0) -> int:
    with atomic():
        job = imports.start(
            world.secretary_b,
            kind=ImportKind.RESIDENTS,
            community=world.community_b,
            data=csv_bytes(people(n, start)),
            filename="p.csv",
            dry_run=False,
        )
    return job.id


def test_two_runners_never_write_one_job_twice(app, world):
    job_id = _pending_job(world, 1200)
    results = run_threads(2, lambda _i: _in_context(app, job_id))
    assert sorted(results) == [False, True]  # one claimed it, the other stood back
    assert imported() == 1200
    job = db.session.get(ImportJob, job_id)
    assert (job.status.value, job.created, job.done, job.rows) == ("done", 1200, 1200, None)


def _in_context(app, job_id):
    with app.app_context():
        return run_job(job_id)


def test_two_jobs_with_the_same_people_at_once_create_each_person_once(app, world):
    ids = [_pending_job(world, 1200), _pending_job(world, 1200, start=600)]
    results = run_threads(2, lambda i: _in_context(app, ids[i]))
    assert results == [True, True]
    assert imported() == 1800
    jobs = [db.session.get(ImportJob, i) for i in ids]
    assert sum(j.created for j in jobs) == 1800
    assert all(j.status.value == "done" and j.refused == 0 for j in jobs)
    phones = db.session.execute(
        sa.select(User.phone, sa.func.count())
        .where(User.phone.is_not(None))
        .group_by(User.phone)
        .having(sa.func.count() > 1)
    ).all()
    assert phones == []


@pytest.mark.parametrize("runner_mode", ["thread"])
def test_the_thread_runner_answers_at_once_and_the_job_finishes(app, client, world, runner_mode):
    app.config["IMPORT_RUNNER"] = runner_mode
    headers = bearer(world.secretary_b)
    resp = upload(client, headers, csv_bytes(people(3000)), community=world.community_b)
    assert resp.status_code == 202
    assert resp.get_json()["status"] in ("pending", "running", "done")
    deadline = time.monotonic() + 120
    seen = []
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/imports/{resp.get_json()['id']}", headers=headers).get_json()
        seen.append(body["done"])
        if body["status"] == "done":
            break
        time.sleep(0.2)
    assert body["status"] == "done" and body["created"] == 3000
    assert seen == sorted(seen)  # progress only moves forward
    # let the runner end its app context (and return its connection) before the reset
    for thread in threading.enumerate():
        if thread.name == f"import-{resp.get_json()['id']}":
            thread.join(30)
    assert imported() == 3000


def test_run_pending_takes_over_a_job_whose_runner_stopped(app, runner, world):
    job_id = _pending_job(world, 1200)
    with atomic():
        assert imports.claim(job_id)
        imports.write_chunk(job_id)  # one chunk, then the runner "dies"
        job = db.session.get(ImportJob, job_id)
        job.heartbeat_at = job.heartbeat_at - imports.STALE_AFTER * 2
    assert imported() == imports.CHUNK
    result = runner.invoke(args=["import", "run-pending"])
    assert result.exit_code == 0, result.output
    assert "Ran 1 import job(s)." in result.output
    assert imported() == 1200
    assert db.session.get(ImportJob, job_id).created == 1200


def test_cli_import_with_progress(runner, world, tmp_path):
    path = tmp_path / "居民.csv"
    path.write_bytes(csv_bytes(people(700)).decode().encode("gb18030"))
    dry = runner.invoke(
        args=[
            "import",
            "residents",
            str(path),
            "--community",
            str(world.community_b.id),
            "--dry-run",
        ]
    )
    assert dry.exit_code == 0, dry.output
    assert "would create 700" in dry.output and imported() == 0
    result = runner.invoke(
        args=["import", "residents", str(path), "--community", str(world.community_b.id)]
    )
    assert result.exit_code == 0, result.output
    assert "created 700" in result.output
    assert imported() == 700
    bad = runner.invoke(args=["import", "residents", str(path), "--community", "99999"])
    assert bad.exit_code != 0


# --- pages -------------------------------------------------------------------------------


def _post_upload(client, data: bytes, community, dry_run: bool, filename="p.csv"):
    form = {
        "csrf_token": csrf_token(client, "/imports"),
        "kind": "residents",
        "community_id": str(community.id),
        "file": (io.BytesIO(data), filename),
    }
    if dry_run:
        form["dry_run"] = "1"
    return client.post("/imports", data=form, content_type="multipart/form-data")


def test_pages_dry_run_shows_row_errors_then_the_real_run(client, world):
    login(client, "secretary_b")
    page = client.get("/imports")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "七里一村社区" in text and "龙湖东岸社区" not in text
    assert 'enctype="multipart/form-data"' in text
    rows = [["好人", "13500000001", "", ""], ["坏号码", "123", "", ""]]
    before = counts()
    resp = _post_upload(client, csv_bytes(rows), world.community_b, dry_run=True)
    assert resp.status_code == 302
    job_page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "请输入有效的手机号" in job_page and "<td>2</td>" in job_page
    assert counts()["users"] == before["users"]
    resp = _post_upload(client, csv_bytes(rows), world.community_b, dry_run=False)
    done = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "导入进度" in done and 'http-equiv="refresh"' not in done
    assert imported() == 1


def test_page_errors_and_refusals(client, world):
    login(client, "secretary_b")
    before = counts()
    resp = _post_upload(client, b"", world.community_b, dry_run=True)
    assert resp.status_code == 422
    assert "field-errors" in resp.get_data(as_text=True)
    other = _post_upload(client, csv_bytes(people(1)), world.community_a, dry_run=False)
    assert other.status_code == 403
    assert counts() == before
    assert client.get("/imports/template?kind=members&format=csv").status_code == 200
    assert client.get("/imports/template?kind=nope").status_code == 404
    member = type(client)(client.application)
    login(member, "member_b")
    assert member.get("/imports").status_code == 403
    assert member.get("/imports/template?kind=residents").status_code == 403


def test_a_job_page_is_the_starters_only(client, world):
    with atomic():
        job = imports.start(
            world.secretary_b,
            kind=ImportKind.RESIDENTS,
            community=world.community_b,
            data=csv_bytes(people(1)),
            filename="p.csv",
            dry_run=True,
        )
    login(client, "admin")
    assert client.get(f"/imports/{job.id}").status_code == 404
