"""A generated year of one community (and a neighbour on the same street) for the
annual report and evaluation tests, and an independent recomputation of the report
from the ledger, the deliveries and the ratings (not from any rollup)."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import (
    AccountKind,
    DeliveryParticipant,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Project,
    Rating,
    Redemption,
    RedemptionStatus,
    Role,
    TransactionKind,
    User,
    utcnow,
)
from volunteer_market.services import ledger, redemptions
from volunteer_market.zones import zone

from ..factories import (
    make_delivery,
    make_project,
    make_reward,
    make_user,
    rate_delivery,
    redeem,
)


@dataclass
class Generated:
    world: object
    year: int
    members: list[User] = field(default_factory=list)


def _year() -> int:
    return utcnow().astimezone(zone("Asia/Shanghai")).year


@pytest.fixture
def generated(world) -> Generated:
    """The generated year (see :func:`build`)."""
    return build(world)


def build(world) -> Generated:
    """Community A: six members, two projects with teams, a dozen deliveries rated by one
    or two residents with random scores (settled automatically), one earn reversed, a
    redemption fulfilled, an expiry; community B: one member with a delivery."""
    w = world
    rng = random.Random(16)
    extra = [
        make_user(f"member_x{i}", (Role.MEMBER, w.community_a), home_unit=f"区单位{i}")
        for i in range(3)
    ]
    members = [w.member_a, w.member_a2, w.member_a3, *extra]
    p1 = make_project(
        w.member_a, w.community_a, status="approved", team=[w.member_a2, extra[0]], title="理发"
    )
    p2 = make_project(
        w.member_a3, w.community_a, status="approved", team=[w.member_a, extra[1]], title="陪诊"
    )
    teams = {p1.id: [w.member_a, w.member_a2, extra[0]], p2.id: [w.member_a3, w.member_a, extra[1]]}
    projects = {p1.id: p1, p2.id: p2}
    earns = []
    for i in range(12):
        pid = rng.choice(sorted(teams))
        team = teams[pid]
        parts = rng.sample(team, rng.randint(1, len(team)))
        recorder = team[0]
        if recorder not in parts:
            parts.append(recorder)
        bens = rng.sample([w.resident_a, w.resident_a2], rng.randint(1, 2))
        recorded = make_delivery(
            projects[pid],
            recorder,
            participants=[(p, rng.choice([1, 1.5, 2])) for p in parts],
            beneficiaries=bens,
            hours_ago=3 + 3 * i,
            length_hours=2,
        )
        for b in bens:
            rate_delivery(b, recorded.delivery, rng.randint(3, 5))
        earns.append(recorded.delivery.id)
    # One earn reversed (an upheld appeal, say).
    with atomic():
        tx = db.session.scalars(
            sa.select(LedgerTransaction)
            .where(LedgerTransaction.kind == TransactionKind.EARN)
            .order_by(LedgerTransaction.id)
            .limit(1)
        ).one()
        ledger.reverse(None, tx, "申诉成立")
    # A redemption fulfilled and an expiry.
    reward = make_reward(w.community_a, cost=5)
    issued = redeem(w.member_a, reward, 2)
    with atomic():
        redemptions.fulfil(w.secretary_a, issued.redemption, issued.pickup_code)
    with atomic():
        wallet = ledger.account_for_member(w.member_a2.id, AccountKind.MEMBER_AVAILABLE)
        sink = ledger.sink_account(AccountKind.EXPIRY_SINK, w.community_a.id)
        ledger.post_transaction(
            kind=TransactionKind.EXPIRE,
            legs=[(wallet, -3), (sink, 3)],
            idempotency_key="test-expiry-a2",
            actor=None,
            member_id=w.member_a2.id,
            community_id=w.community_a.id,
            reason="到期",
        )
    pb = make_project(w.member_b, w.community_b, status="approved", title="送餐")
    recorded = make_delivery(pb, w.member_b, beneficiaries=[w.resident_b], length_hours=3)
    rate_delivery(w.resident_b, recorded.delivery, 5)
    db.session.rollback()
    return Generated(world=w, year=_year(), members=members)


def _competition(points: dict[int, int]) -> dict[int, int]:
    ranked = {}
    for uid, p in points.items():
        if p > 0:
            ranked[uid] = 1 + sum(1 for q in points.values() if q > p)
    return ranked


def recompute(community_ids: list[int], street_ids: list[int]) -> dict[int, dict]:
    """Return the report rows of ``community_ids`` computed from the ledger entries,
    deliveries, ratings and redemptions (this year only: the generated data is)."""
    db.session.rollback()
    reversed_ids = set(
        db.session.scalars(
            sa.select(LedgerTransaction.reverses_id).where(
                LedgerTransaction.kind == TransactionKind.REVERSE
            )
        )
    )
    earns = db.session.execute(
        sa.select(
            LedgerTransaction.id,
            LedgerTransaction.member_id,
            LedgerTransaction.community_id,
            LedgerTransaction.delivery_id,
            LedgerEntry.amount,
        )
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(
            LedgerTransaction.kind == TransactionKind.EARN,
            LedgerAccount.kind == AccountKind.MEMBER_AVAILABLE,
        )
    ).all()
    live = [e for e in earns if e.id not in reversed_ids]
    points: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    rows: dict[int, dict] = {}
    minutes = {
        (r.delivery_id, r.user_id): r.minutes
        for r in db.session.execute(sa.select(DeliveryParticipant)).scalars().all()
    }
    owner = {p.id: p.owner_id for p in db.session.scalars(sa.select(Project))}
    from volunteer_market.models import Delivery

    project_of = {d.id: d.project_id for d in db.session.scalars(sa.select(Delivery))}
    scores: dict[int, list[int]] = defaultdict(list)
    for r in db.session.scalars(sa.select(Rating)):
        scores[r.delivery_id].append(r.score)

    def row(uid: int, cid: int) -> dict:
        if uid not in rows:
            rows[uid] = {
                "community_id": cid,
                "minutes": 0,
                "deliveries": 0,
                "led": set(),
                "joined": set(),
                "scores": [],
                "points_earned": 0,
                "points_spent": 0,
                "points_expired": 0,
            }
        return rows[uid]

    for e in live:
        points[e.community_id][e.member_id] += e.amount
        if e.community_id not in community_ids:
            continue
        r = row(e.member_id, e.community_id)
        r["points_earned"] += e.amount
        r["minutes"] += minutes[(e.delivery_id, e.member_id)]
        r["deliveries"] += 1
        pid = project_of[e.delivery_id]
        (r["led"] if owner[pid] == e.member_id else r["joined"]).add(pid)
        r["scores"] += scores[e.delivery_id]
    for red in db.session.scalars(
        sa.select(Redemption).where(Redemption.status == RedemptionStatus.FULFILLED)
    ):
        if red.community_id in community_ids:
            row(red.member_id, red.community_id)["points_spent"] += red.quantity * red.cost_each
    for e in db.session.execute(
        sa.select(LedgerTransaction.member_id, LedgerTransaction.community_id, LedgerEntry.amount)
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(
            LedgerTransaction.kind == TransactionKind.EXPIRE,
            LedgerAccount.kind == AccountKind.MEMBER_AVAILABLE,
        )
    ):
        if e.community_id in community_ids:
            row(e.member_id, e.community_id)["points_expired"] -= e.amount
    street_points: dict[int, int] = defaultdict(int)
    for cid in street_ids:
        for uid, p in points[cid].items():
            street_points[uid] += p
    out = {}
    for uid, r in rows.items():
        cranks = _competition(dict(points[r["community_id"]]))
        sranks = _competition(dict(street_points))
        avg = round(sum(r["scores"]) / len(r["scores"]), 2) if r["scores"] else None
        out[uid] = {
            "user_id": uid,
            "community_id": r["community_id"],
            "hours": round(r["minutes"] / 60, 1),
            "deliveries": r["deliveries"],
            "projects_led": len(r["led"]),
            "projects_joined": len(r["joined"]),
            "average_score": avg,
            "points_earned": r["points_earned"],
            "points_spent": r["points_spent"],
            "points_expired": r["points_expired"],
            "rank_community": cranks.get(uid),
            "rank_street": sranks.get(uid),
        }
    return out


class Clock:
    """A settable clock for the modules that stamp postings and evaluation steps."""

    def __init__(self) -> None:
        self.now = None

    def __call__(self):
        from datetime import UTC, datetime

        return (self.now or datetime.now(UTC)).astimezone(UTC)


@pytest.fixture
def clock(monkeypatch):
    """Patch ``utcnow`` of the ledger posting and of the evaluation services."""
    from volunteer_market.services.evaluations import lifecycle, objections
    from volunteer_market.services.ledger import posting

    c = Clock()
    for module in (posting, lifecycle, objections):
        monkeypatch.setattr(module, "utcnow", c)
    return c


@pytest.fixture
def last_year(world, clock, monkeypatch):
    """The generated community with every posting dated in the middle of last year."""
    from datetime import UTC, datetime

    year = _year() - 1
    clock.now = datetime(year, 6, 15, 2, 0, tzinfo=UTC)
    g = build(world)
    clock.now = None
    g.year = year
    return g


def rows_of_report(client, user, area, year) -> list[dict]:
    from ..factories import bearer

    resp = client.get(f"/api/v1/reports/annual?area_id={area.id}&year={year}", headers=bearer(user))
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["items"]
