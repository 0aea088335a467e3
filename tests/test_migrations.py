"""Migrations: one head, upgrade from an empty database, and no difference between
the migrated schema and the models (what ``flask db check`` checks), on the engine
under test."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade

from volunteer_market import create_app
from volunteer_market.extensions import db, migrate

from .conftest import ON_POSTGRES, TEST_CONFIG, drop_postgres_database, postgres_url_for


@pytest.fixture
def empty_app(tmp_path):
    if ON_POSTGRES:
        url = postgres_url_for("mig_" + uuid.uuid4().hex[:8])
    else:
        url = f"sqlite:///{tmp_path / 'migrate.db'}"
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()
    if ON_POSTGRES:
        drop_postgres_database(url)


def _script(app) -> ScriptDirectory:
    config = migrate.get_config(app.extensions["migrate"].directory)
    return ScriptDirectory.from_config(config)


def test_single_head(empty_app):
    assert len(_script(empty_app).get_heads()) == 1


def test_upgrade_from_empty_matches_models(empty_app):
    upgrade()
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True})
        diff = compare_metadata(ctx, db.metadata)
        assert diff == [], diff
        rev = conn.execute(sa.text("select version_num from alembic_version")).scalar()
    assert rev == _script(empty_app).get_current_head()


def test_downgrade_to_base_and_up_again(empty_app):
    upgrade()
    downgrade(revision="base")
    with db.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
    assert tables == set()
    upgrade()


def test_upgrade_installs_the_append_only_ledger_triggers(empty_app):
    upgrade()
    with db.engine.connect() as conn:
        if ON_POSTGRES:
            rows = conn.execute(
                sa.text(
                    "select tgrelid::regclass::text from pg_trigger "
                    "where not tgisinternal and tgname like 'trg_ledger_%'"
                )
            ).scalars()
        else:
            rows = conn.execute(
                sa.text(
                    "select tbl_name from sqlite_master where type = 'trigger' and name like 'trg_ledger_%'"
                )
            ).scalars()
        tables = set(rows)
    assert tables == {"ledger_transactions", "ledger_entries", "ledger_anchors"}


def test_0004_flags_excluded_rows_as_the_services_do(empty_app):
    """Migration 0004 computes ``ranking_members.eligible`` and the buckets from the
    data as the services maintain them: services build rollups with a suspended member
    and an ended grant, 0004 is undone and redone, and every rollup row is the same."""
    from volunteer_market.database import atomic
    from volunteer_market.models import Role, RoleGrant, User
    from volunteer_market.services import users as user_service

    from .factories import build_world
    from .rankings.conftest import earn, rollups

    upgrade()
    w = build_world()
    earn(w.member_a, w.community_a, 30)
    earn(w.member_a2, w.community_a, 20)
    earn(w.member_c, w.community_c, 10)
    with atomic():
        db.session.get(User, w.member_a2.id).is_active = False
        grant = db.session.scalars(
            sa.select(RoleGrant).where(
                RoleGrant.user_id == w.member_c.id, RoleGrant.role == Role.MEMBER
            )
        ).one()
        user_service.revoke_role(None, grant)
    before = rollups()
    excluded = {(r[0], r[2]) for r in before["ranking_members"] if not r[-1]}
    assert {u for _a, u in excluded} == {w.member_a2.id, w.member_c.id}
    downgrade(revision="0003")
    with db.engine.connect() as conn:  # 0003 counts every member in the buckets
        counted = conn.execute(
            sa.text("select members from ranking_score_counts where area_id = :a and points = 20"),
            {"a": w.community_a.id},
        ).all()
    assert counted and all(n == 1 for (n,) in counted)
    upgrade()
    assert rollups() == before


def test_0005_rating_slips_voids_the_codes_a_participant_has_seen(empty_app):
    """Issue 15: every unused code of a delivery that still awaits ratings was shown to
    its recorder, so the migration voids it; used codes and codes of settled deliveries
    stay as they were; the secretary can issue slips again afterwards."""
    from datetime import timedelta

    from volunteer_market.database import atomic
    from volunteer_market.models import Delivery, utcnow
    from volunteer_market.services import deliveries as delivery_service
    from volunteer_market.services import ratings as rating_service
    from volunteer_market.services import settlement as settlement_service

    from .factories import build_world, make_delivery, make_project

    upgrade()
    w = build_world()
    project = make_project(w.member_a, w.community_a, status="approved", team=[w.member_a2])
    open_one = make_delivery(
        project, w.member_a, beneficiaries=[w.resident_a, w.resident_a2], hours_ago=3
    )
    with atomic():
        rating_service.rate_by_code(code=open_one.rating_codes[0].code, score=5)
    closed = make_delivery(
        project,
        w.member_a,
        beneficiaries=[w.resident_a],
        hours_ago=3,
        now=utcnow() - timedelta(days=9),
    )
    with atomic():
        d = db.session.get(Delivery, closed.delivery.id)
        settlement_service.settle(w.secretary_a, d, confirm_unrated=True)

    def codes():
        with db.engine.connect() as conn:
            return {
                (r[0], r[1]): r[2:]
                for r in conn.execute(
                    sa.text(
                        "select delivery_id, user_id, rating_code_hash is null, "
                        "rating_token_hash is null, code_used_at is null "
                        "from delivery_beneficiaries"
                    )
                )
            }

    downgrade(revision="0004")
    before = codes()
    assert all(v[:2] == (False, False) for v in before.values())  # 0004: every row had one
    upgrade()
    after = codes()
    oid, cid = open_one.delivery.id, closed.delivery.id
    assert after[(oid, w.resident_a.id)] == (False, False, False)  # used: kept
    assert after[(oid, w.resident_a2.id)] == (True, True, True)  # seen, unused: voided
    assert after[(cid, w.resident_a.id)] == (False, False, True)  # settled: untouched
    db.session.remove()
    with atomic():
        d = db.session.get(Delivery, oid)
        slips = delivery_service.issue_slips(w.secretary_a, d)
    assert [s.user_id for s in slips] == [w.resident_a2.id]
    with atomic():
        rated = rating_service.rate_by_code(code=slips[0].code, score=4)
    assert rated.settlement is not None


def test_0400_keeps_the_legacy_chain_and_starts_the_chains_from_it(empty_app):
    """From the revision before the per-community chains, with transactions in the
    single chain: the migration rewrites nothing, the ledger verifies clean, and new
    postings start their community's chain from the legacy chain's last hash."""
    from volunteer_market.database import atomic
    from volunteer_market.models import Area, AreaKind, User, chain_genesis, utcnow
    from volunteer_market.services import ledger
    from volunteer_market.services import verify as lv

    from .ledger.legacy import insert_legacy_chain

    upgrade(revision="0300_session_reminders_1")
    areas, users = db.metadata.tables["areas"], db.metadata.tables["users"]
    with db.engine.begin() as conn:
        cid = conn.execute(
            areas.insert()
            .values(name="旧社区", kind=AreaKind.COMMUNITY, created_at=utcnow())
            .returning(areas.c.id)
        ).scalar_one()
        uid = conn.execute(
            users.insert()
            .values(username="old", password_hash="x", display_name="old", created_at=utcnow())
            .returning(users.c.id)
        ).scalar_one()
        legacy = insert_legacy_chain(conn, user_id=uid, community_id=cid, amounts=[3, 5, 7])
    upgrade()
    with db.engine.connect() as conn:
        assert (
            conn.execute(
                sa.text("SELECT count(*) FROM ledger_transactions WHERE chain_key IS NULL")
            ).scalar_one()
            == 3
        )
    assert lv.verify() is None
    with atomic():
        new = ledger.adjust(None, db.session.get(User, uid), 2, "新账", db.session.get(Area, cid))
        new_id, new_prev, new_chain = new.id, new.prev_hash, new.chain_key
    assert new_chain == cid and new_prev == chain_genesis(cid, legacy[-1][1])
    assert new_id > legacy[-1][0]
    db.session.rollback()
    assert lv.verify_all() == []
