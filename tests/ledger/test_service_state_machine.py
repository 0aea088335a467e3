"""A Hypothesis state machine over the SERVICE layer of points: rate, settle, adjust,
reverse, redeem (request), fulfil, cancel, reject, expire (holds and wallets), with
``ledger verify`` -- every registered invariant, ``verify()`` -- and a model of every
balance, stock, redemption and delivery checked after every step.

The fixed world (areas, users, an approved project with a team, a pool of recorded
deliveries awaiting ratings, three rewards, an expiring points policy) is built once
per test; each example starts from it again by a cheap restore (SQLite: copy of a
template file; PostgreSQL: DELETE of the rows the steps create, with triggers off for
the reset connection, and a re-insert of the few world rows the steps update). Steps
call the services directly inside ``database.atomic()`` (a real commit per step, as in
production), with a virtual clock (``now=``) that only moves forward, so rating
windows close and holds run out on demand.

``test_service_state_machine`` runs ``SERVICE_STM_EXAMPLES`` examples (default **300**,
the size issue 8 asks for, in CI on both engines) of ``SERVICE_STM_STEPS`` steps (default
50), split into ``SERVICE_STM_SHARDS`` (default 6) tests of equal size so that
``pytest -n`` spreads them over its workers. Each shard has its own Hypothesis seed
(``hypothesis.seed(SEED_BASE + shard)``), so the shards run different examples, and
asserts that it ran its share of examples of the full ``STEPS`` steps (Hypothesis draws
the length; with these settings it is the full length in practice). That is 15,000
steps, each followed by ``verify()``; it fits in CI because ``verify()`` costs about
1.5 ms of CPU (``python -m bench.profile_verify``): its statements are built once and
its violation queries answered by one probe (``services.verify.frozen``). Set
``SERVICE_STM_SHRINK=1`` to shrink a failing example (minutes with a database per step).

``test_removed_guard_is_caught`` removes one guard from a service and asserts the
machine finds a failing example within ``SERVICE_STM_MUTANT_EXAMPLES`` (default 20)
examples. Mutants: the rating window and state check of ``services.ratings``; the
per-member limit of ``services.redemptions.request`` (its usage count always 0).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy.orm import selectinload

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import (
    Delivery,
    LimitPeriod,
    Redemption,
    Reward,
    Settlement,
    TransactionKind,
    User,
    utcnow,
)
from volunteer_market.services import (
    ledger,
    points_policy,
    ratings,
    redemptions,
    settlement,
    wallet_expiry,
)
from volunteer_market.services.errors import (
    AlreadyReversed,
    Conflict,
    Forbidden,
    InsufficientPoints,
    NotFound,
    ValidationFailed,
)
from volunteer_market.services.verify import verify

from ..conftest import ON_POSTGRES
from ..factories import build_world, make_delivery, make_project, make_reward
from ..ratings.test_stateful import reference_points

STEPS = int(os.environ.get("SERVICE_STM_STEPS", "50"))
EXAMPLES = int(os.environ.get("SERVICE_STM_EXAMPLES", "300"))
SHARDS = max(1, min(EXAMPLES, int(os.environ.get("SERVICE_STM_SHARDS", "6"))))
#: Examples per shard (the shards together run at least EXAMPLES).
PER_SHARD = -(-EXAMPLES // SHARDS)
SEED_BASE = 8_000
MUTANT_EXAMPLES = int(os.environ.get("SERVICE_STM_MUTANT_EXAMPLES", "20"))
#: Shrink a failing example (can take minutes with a database per step): off by default.
SHRINK = os.environ.get("SERVICE_STM_SHRINK", "") == "1"

ZONE = ZoneInfo("Asia/Shanghai")
MEMBERS = ("member_a", "member_a2", "member_a3")
RESIDENTS = ("resident_a", "resident_a2")
#: Pool: (participant minutes by member index, beneficiary indexes, days before "now" it ended).
POOL: tuple[tuple[tuple[int, ...], tuple[int, ...], float], ...] = (
    ((120, 120, 0), (0, 1), 0.5),
    ((90, 0, 60), (0,), 1),
    ((470, 30, 0), (0, 1), 1.5),
    ((45, 45, 45), (1,), 2),
    ((0, 240, 0), (0, 1), 3),
    ((60, 0, 0), (), 3.5),
    ((30, 90, 150), (0, 1), 4),
    ((480, 0, 15), (0,), 5),
    ((0, 0, 75), (0, 1), 5.5),
    ((200, 100, 0), (), 6),
    ((20, 0, 20), (0, 1), 6.5),
    ((0, 130, 0), (1,), 6.9),
)
#: Rewards: (cost, stock, per-member limit per month).
REWARDS: tuple[tuple[int, int | None, int | None], ...] = (
    # Cheap and limited to 1 a month: two redemptions in a month reach the limit
    # soon, so removing the limit guard is caught (test_removed_guard_is_caught).
    (1, None, 1),
    (10, 6, 2),
    (25, None, None),
    (4, 3, None),
)
HOLD_DAYS = 14
#: Adjustment amounts: more credit than debit, so wallets fill and redemptions succeed
#: (Hypothesis's integers lean to small values, leaving most wallets empty). Hypothesis
#: draws early elements of ``sampled_from`` more often, so the order matters here and
#: in REWARDS and EXPIRY_YEARS.
ADJUSTMENTS = (60, 20, -10, 5, 100, -60, -1, 1)
#: Points each member starts every example with.
STARTING_POINTS = 80
TICKS = (timedelta(hours=1), timedelta(days=1), timedelta(days=3), timedelta(days=8))
#: Wallet expiry runs on local dates this many years after today (2+: all credits old).
EXPIRY_YEARS = (0, 1, 2)


@dataclass
class WorldIds:
    """Ids of the fixed world (valid in every example: the restore keeps them)."""

    secretary: int
    outsider: int  # member_b: another community, may not see or touch A's redemptions
    members: list[int]
    residents: list[int]
    #: delivery id -> (deadline, {member index: minutes}, [resident index])
    deliveries: list[tuple[int, datetime, dict[int, int], list[int]]]
    rewards: list[int]
    now: datetime


def build_fixed_world() -> WorldIds:
    """Build the world every example starts from (through the services)."""
    w = build_world()
    community = w.community_a
    with atomic():
        points_policy.new_policy_version(
            None, community, expiry_rule="end_of_next_year", redemption_hold_days=HOLD_DAYS
        )
    members = [w.users[m] for m in MEMBERS]
    residents = [w.users[r] for r in RESIDENTS]
    project = make_project(w.member_a, community, status="approved", team=members[1:])
    now = utcnow()
    pool = []
    for minutes, benef, days_ago in POOL:
        ended = now - timedelta(days=days_ago)
        parts = [(members[i], m / 60) for i, m in enumerate(minutes) if m]
        recorded = make_delivery(
            project,
            w.member_a,
            participants=parts,
            beneficiaries=[residents[i] for i in benef],
            hours_ago=max(minutes) / 60,
            length_hours=max(minutes) / 60,
            now=ended,
        )
        d = recorded.delivery
        pool.append(
            (d.id, d.rating_deadline, {i: m for i, m in enumerate(minutes) if m}, list(benef))
        )
    rewards = [
        make_reward(
            community,
            name=f"奖品{i}",
            cost=cost,
            stock=stock,
            per_member_limit=limit,
            limit_period=LimitPeriod.MONTH if limit else LimitPeriod.ALL,
        ).id
        for i, (cost, stock, limit) in enumerate(REWARDS)
    ]
    return WorldIds(
        secretary=w.secretary_a.id,
        outsider=w.member_b.id,
        members=[m.id for m in members],
        residents=[r.id for r in residents],
        deliveries=pool,
        rewards=rewards,
        now=now,
    )


# --- restoring the world per example --------------------------------------------------

#: World rows the steps update (not only insert): restored from the snapshot. The
#: world has no chain head yet (role grants take every *existing* head:
#: ``rankings.refresh_eligibility``); the heads the steps create and move are rows of a
#: keyless table that is empty in the world, so the restore deletes them all.
UPDATED_TABLES = ("deliveries", "delivery_beneficiaries", "rewards")


class Restorer:
    """Put the database back to the fixed world, cheaply (see the module docstring)."""

    def __init__(self, database_url: str, workdir: Path) -> None:
        self.url = database_url
        db.session.remove()
        if ON_POSTGRES:
            self._snapshot_postgres()
        else:
            db.engine.dispose()  # the last connection checkpoints the WAL into the file
            self.path = Path(sa.make_url(database_url).database or "")
            self.template = workdir / "service_stm_world.db"
            shutil.copyfile(self.path, self.template)

    def _snapshot_postgres(self) -> None:
        tables = db.metadata.sorted_tables
        with db.engine.connect() as conn:
            self.max_ids = {
                t.name: conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.c.id), 0))).scalar()
                for t in tables
                if "id" in t.c
            }
            self.counts = self._counts(conn)
            self.rows = {
                name: [dict(r._mapping) for r in conn.execute(sa.select(db.metadata.tables[name]))]
                for name in UPDATED_TABLES
            }
        self.empty_keyless = [
            t.name for t in tables if "id" not in t.c and self.counts[t.name] == 0
        ]
        assert all(self.counts[t.name] == 0 for t in tables if "id" not in t.c), (
            "the world must not hold rows in tables without an id"
        )

    @staticmethod
    def _counts(conn: sa.Connection) -> dict[str, int]:
        probe = " UNION ALL ".join(
            f"SELECT '{t.name}', count(*) FROM \"{t.name}\""  # noqa: S608
            for t in db.metadata.sorted_tables
        )
        return {row[0]: row[1] for row in conn.exec_driver_sql(probe)}

    def restore(self) -> None:
        db.session.remove()
        if not ON_POSTGRES:
            db.engine.dispose()
            for suffix in ("-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
            shutil.copyfile(self.template, self.path)
            return
        with db.engine.begin() as conn:
            # Reset connection only: no user triggers (append-only ledger), no FK checks.
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            for t in reversed(db.metadata.sorted_tables):
                if t.name in self.rows:
                    conn.execute(t.delete())
                elif "id" in t.c:
                    conn.execute(t.delete().where(t.c.id > self.max_ids[t.name]))
                elif t.name in self.empty_keyless:
                    conn.execute(t.delete())
            for name, rows in self.rows.items():
                if rows:
                    conn.execute(db.metadata.tables[name].insert(), rows)
            counts = self._counts(conn)
        assert counts == self.counts, "the restore left rows behind"


# --- the model ---------------------------------------------------------------------------


@dataclass
class MTx:
    """A ledger transaction the model knows: member index, kind, wallet/held/earned deltas."""

    member: int
    kind: TransactionKind
    wallet: int
    held: int = 0
    earned: int = 0


@dataclass
class MRedemption:
    member: int
    reward: int
    quantity: int
    total: int
    code: str
    created: datetime
    key: str | None
    status: str = "held"


@dataclass
class MDelivery:
    id: int
    deadline: datetime
    minutes: dict[int, int]
    beneficiaries: list[int]
    scores: dict[int, int] = field(default_factory=dict)
    settled: bool = False


def make_machine(ids: WorldIds, restorer: Restorer) -> type[RuleBasedStateMachine]:
    """Return the state machine class over the fixed world ``ids``."""
    n_members = len(ids.members)
    member_i = st.integers(min_value=0, max_value=n_members - 1)
    pick = st.integers(min_value=0, max_value=10_000)

    class ServiceMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            restorer.restore()
            self.steps = -1  # the invariants run once before the first step
            STEPS_PER_EXAMPLE.append(0)
            self.clock = ids.now
            self.wallet = [0] * n_members
            self.held = [0] * n_members
            self.earned = [0] * n_members
            self.stock = [stock for _cost, stock, _limit in REWARDS]
            self.txs: dict[int, MTx] = {}
            self.reversed: set[int] = set()
            self.redemptions: dict[int, MRedemption] = {}
            self.keys: dict[str, int] = {}
            self.expiry_rounds: set[tuple[int, int]] = set()
            self.deliveries = [MDelivery(d, dl, dict(m), list(b)) for d, dl, m, b in ids.deliveries]
            # Every member starts with STARTING_POINTS (an adjustment through the service,
            # booked in the model like any other): otherwise most redemptions of an
            # example find an empty wallet and the redemption rules are barely exercised.
            for i in range(n_members):
                with atomic():
                    tx_id = ledger.adjust(
                        self.user(ids.secretary), self.user(ids.members[i]), STARTING_POINTS, "起始"
                    ).id
                self._post(tx_id, MTx(i, TransactionKind.ADJUST, STARTING_POINTS))

        # --- helpers ---------------------------------------------------------------------

        def user(self, user_id: int) -> User:
            return db.session.get(User, user_id)

        def _post(self, tx_id: int | None, mtx: MTx) -> None:
            assert tx_id is not None and tx_id not in self.txs
            self.txs[tx_id] = mtx
            self.wallet[mtx.member] += mtx.wallet
            self.held[mtx.member] += mtx.held
            self.earned[mtx.member] += mtx.earned

        def _settled(self, md: MDelivery) -> None:
            """Book the settlement of ``md`` in the model: an earn per participant with
            points (computed independently), checked against the database."""
            md.settled = True
            scores = list(md.scores.values())
            s = db.session.execute(
                sa.select(Settlement)
                .where(Settlement.delivery_id == md.id)
                .options(selectinload(Settlement.postings))
            ).scalar_one()
            assert s.ratings_count == len(scores) and s.score_sum == sum(scores)
            lines = {p.user_id: p for p in s.postings}
            assert set(lines) == {ids.members[i] for i in md.minutes}
            for i, minutes in md.minutes.items():
                line = lines[ids.members[i]]
                points = reference_points(minutes, scores)
                assert line.points == points and line.minutes == minutes
                assert (line.transaction_id is None) == (points == 0)
                if points:
                    self._post(line.transaction_id, MTx(i, TransactionKind.EARN, points, 0, points))

        # --- time ----------------------------------------------------------------------

        @rule(tick=st.sampled_from(TICKS))
        def advance_clock(self, tick: timedelta) -> None:
            self.clock += tick

        # --- ratings and settlement ------------------------------------------------------

        @rule(d=pick, who=st.integers(0, 1), score=st.integers(1, 5), proxy=st.booleans())
        def rate(self, d: int, who: int, score: int, proxy: bool) -> None:
            md = self.deliveries[d % len(self.deliveries)]
            if not md.beneficiaries:
                return
            b = md.beneficiaries[who % len(md.beneficiaries)]
            resident = ids.residents[b]
            actor = self.user(ids.secretary if proxy else resident)
            delivery = db.session.get(Delivery, md.id)
            expect_ok = not md.settled and self.clock < md.deadline and b not in md.scores
            try:
                with atomic():
                    rated = ratings.rate(
                        actor,
                        delivery,
                        score,
                        on_behalf_of=resident if proxy else None,
                        now=self.clock,
                    )
                    settled_now = rated.settlement is not None
            except Conflict:
                assert not expect_ok
                return
            assert expect_ok
            md.scores[b] = score
            assert settled_now == (len(md.scores) == len(md.beneficiaries))
            if settled_now:
                self._settled(md)

        @rule(d=pick, confirm=st.booleans())
        def settle(self, d: int, confirm: bool) -> None:
            md = self.deliveries[d % len(self.deliveries)]
            delivery = db.session.get(Delivery, md.id)
            expect_ok = (
                not md.settled and self.clock >= md.deadline and (bool(md.scores) or confirm)
            )
            try:
                with atomic():
                    settlement.settle(
                        self.user(ids.secretary), delivery, confirm_unrated=confirm, now=self.clock
                    )
            except Conflict:
                assert not expect_ok
                return
            assert expect_ok
            self._settled(md)

        # --- adjustments and reversals -----------------------------------------------------

        @rule(i=member_i, amount=st.sampled_from(ADJUSTMENTS))
        def adjust(self, i: int, amount: int) -> None:
            try:
                with atomic():
                    tx = ledger.adjust(
                        self.user(ids.secretary), self.user(ids.members[i]), amount, "调整"
                    )
                    tx_id = tx.id
            except InsufficientPoints:
                assert self.wallet[i] + amount < 0
                return
            assert self.wallet[i] + amount >= 0
            self._post(tx_id, MTx(i, TransactionKind.ADJUST, amount))

        @precondition(lambda self: bool(self.txs))
        @rule(p=pick)
        def reverse(self, p: int) -> None:
            tx_id = sorted(self.txs)[p % len(self.txs)]
            m = self.txs[tx_id]
            tx = ledger.get_transaction(tx_id)
            try:
                with atomic():
                    rev = ledger.reverse(self.user(ids.secretary), tx, "冲正")
                    rev_id = rev.id
            except AlreadyReversed:
                assert tx_id in self.reversed
                return
            except InsufficientPoints:
                assert m.kind in ledger.REVERSIBLE_KINDS and tx_id not in self.reversed
                assert self.wallet[m.member] - m.wallet < 0
                return
            except Conflict:
                assert m.kind not in ledger.REVERSIBLE_KINDS
                return
            assert m.kind in ledger.REVERSIBLE_KINDS and tx_id not in self.reversed
            assert self.wallet[m.member] - m.wallet >= 0
            self.reversed.add(tx_id)
            self._post(
                rev_id, MTx(m.member, TransactionKind.REVERSE, -m.wallet, -m.held, -m.earned)
            )

        # --- redemptions -------------------------------------------------------------------

        def _used(self, i: int, r: int) -> int:
            key = redemptions.period_key(LimitPeriod.MONTH, self.clock, ZONE)
            return sum(
                mr.quantity
                for mr in self.redemptions.values()
                if mr.member == i
                and mr.reward == r
                and mr.status in ("held", "fulfilled")
                and redemptions.period_key(LimitPeriod.MONTH, mr.created, ZONE) == key
            )

        @rule(
            i=member_i,
            r=st.sampled_from(range(len(REWARDS))),
            q=st.sampled_from((1, 1, 2, 3)),  # mostly 1: the limit of 1 is reached by repeats
            keyed=st.booleans(),
        )
        def redeem(self, i: int, r: int, q: int, keyed: bool) -> None:
            cost, _stock, limit = REWARDS[r]
            key = f"k{len(self.keys)}" if keyed else None
            reward = db.session.get(Reward, ids.rewards[r])
            expected: type[Exception] | None = None
            if self.wallet[i] < cost * q:
                expected = InsufficientPoints
            elif self.stock[r] is not None and self.stock[r] < q:
                expected = redemptions.OutOfStock
            elif limit is not None and self._used(i, r) + q > limit:
                expected = redemptions.LimitReached
            try:
                with atomic():
                    issued = redemptions.request(
                        self.user(ids.members[i]), reward, q, idempotency_key=key, now=self.clock
                    )
                    red = issued.redemption
                    rid, hold_id, code = red.id, red.hold_transaction_id, issued.pickup_code
                    assert not issued.replayed
            except Conflict as exc:
                assert expected is not None and type(exc) is expected, (exc, expected)
                return
            assert expected is None, expected
            total = cost * q
            self.redemptions[rid] = MRedemption(i, r, q, total, code, self.clock, key)
            if key is not None:
                self.keys[key] = rid
            if self.stock[r] is not None:
                self.stock[r] -= q
            self._post(hold_id, MTx(i, TransactionKind.HOLD, -total, total))

        @precondition(lambda self: bool(self.keys))
        @rule(p=pick, same=st.booleans())
        def replay_redeem(self, p: int, same: bool) -> None:
            key = sorted(self.keys)[p % len(self.keys)]
            rid = self.keys[key]
            mr = self.redemptions[rid]
            reward = db.session.get(Reward, ids.rewards[mr.reward])
            quantity = mr.quantity if same else mr.quantity + 1
            try:
                with atomic():
                    issued = redemptions.request(
                        self.user(ids.members[mr.member]),
                        reward,
                        quantity,
                        idempotency_key=key,
                        now=self.clock,
                    )
                    got = (issued.redemption.id, issued.replayed, issued.pickup_code)
            except Conflict:
                assert not same
                return
            assert same and got == (rid, True, mr.code)

        def _held_pick(self, p: int) -> tuple[int, MRedemption] | None:
            if not self.redemptions:
                return None
            rid = sorted(self.redemptions)[p % len(self.redemptions)]
            return rid, self.redemptions[rid]

        def _close(self, rid: int, mr: MRedemption, status: str, tx_id: int) -> None:
            mr.status = status
            if status == "fulfilled":
                self._post(tx_id, MTx(mr.member, TransactionKind.REDEEM, 0, -mr.total))
            else:
                self._post(tx_id, MTx(mr.member, TransactionKind.RELEASE, mr.total, -mr.total))
                if self.stock[mr.reward] is not None:
                    self.stock[mr.reward] += mr.quantity

        @precondition(lambda self: bool(self.redemptions))
        @rule(p=pick, right_code=st.booleans())
        def fulfil(self, p: int, right_code: bool) -> None:
            rid, mr = self._held_pick(p)
            code = mr.code if right_code else f"{(int(mr.code) + 1) % 10**8:08d}"
            red = db.session.get(Redemption, rid)
            try:
                with atomic():
                    done = redemptions.fulfil(self.user(ids.secretary), red, code, now=self.clock)
                    tx_id = done.final_transaction_id
            except ValidationFailed:
                assert mr.status == "held" and not right_code
                return
            except Conflict:
                assert mr.status != "held"
                return
            assert mr.status == "held" and right_code
            self._close(rid, mr, "fulfilled", tx_id)

        @precondition(lambda self: bool(self.redemptions))
        @rule(p=pick, by=st.sampled_from(["member", "secretary", "outsider"]))
        def cancel(self, p: int, by: str) -> None:
            rid, mr = self._held_pick(p)
            actor_id = {
                "member": ids.members[mr.member],
                "secretary": ids.secretary,
                "outsider": ids.outsider,
            }[by]
            red = db.session.get(Redemption, rid)
            try:
                with atomic():
                    done = redemptions.cancel(self.user(actor_id), red, now=self.clock)
                    tx_id = done.final_transaction_id
            except (NotFound, Forbidden):
                assert by == "outsider"
                return
            except Conflict:
                assert mr.status != "held" and by != "outsider"
                return
            assert mr.status == "held" and by != "outsider"
            self._close(rid, mr, "cancelled", tx_id)

        @precondition(lambda self: bool(self.redemptions))
        @rule(p=pick)
        def reject(self, p: int) -> None:
            rid, mr = self._held_pick(p)
            red = db.session.get(Redemption, rid)
            try:
                with atomic():
                    done = redemptions.reject(
                        self.user(ids.secretary), red, "库存不足", now=self.clock
                    )
                    tx_id = done.final_transaction_id
            except Conflict:
                assert mr.status != "held"
                return
            assert mr.status == "held"
            self._close(rid, mr, "rejected", tx_id)

        @rule()
        def expire_holds(self) -> None:
            with atomic():
                expired = redemptions.expire_holds(now=self.clock)
                finals = {
                    rid: db.session.get(Redemption, rid).final_transaction_id for rid in expired
                }
            due = sorted(
                rid
                for rid, mr in self.redemptions.items()
                if mr.status == "held" and mr.created + timedelta(days=HOLD_DAYS) <= self.clock
            )
            assert sorted(expired) == due
            for rid in due:
                self._close(rid, self.redemptions[rid], "expired", finals[rid])

        # --- wallet expiry -------------------------------------------------------------------

        @rule(i=member_i, years=st.sampled_from(EXPIRY_YEARS))
        def expire_wallet(self, i: int, years: int) -> None:
            today = ids.now.astimezone(ZONE).date()
            as_of = date(today.year + years, today.month, min(today.day, 28))
            round_key = (i, as_of.year - 2)
            with atomic():
                tx = wallet_expiry.expire_member(ids.members[i], as_of)
                tx_id = tx.id if tx is not None else None
            # Every credit is from this year: at +2 years and later all of it is overdue.
            expect = self.wallet[i] if years >= 2 and round_key not in self.expiry_rounds else 0
            if expect == 0:
                assert tx_id is None
                return
            self.expiry_rounds.add(round_key)
            self._post(tx_id, MTx(i, TransactionKind.EXPIRE, -expect))

        # --- invariants ----------------------------------------------------------------------

        @invariant()
        def ledger_verifies(self) -> None:
            self.steps += 1
            STEPS_PER_EXAMPLE[-1] = self.steps
            db.session.rollback()
            found = verify()
            assert found is None, str(found)

        @invariant()
        def database_matches_the_model(self) -> None:
            rows = db.session.execute(
                sa.text(
                    "SELECT user_id, kind, balance, earned FROM ledger_accounts"
                    " WHERE user_id IS NOT NULL"
                )
            ).all()
            got = {(r.user_id, r.kind): (r.balance, r.earned) for r in rows}
            for i, uid in enumerate(ids.members):
                assert got.get((uid, "member_available"), (0, 0)) == (
                    self.wallet[i],
                    self.earned[i],
                )
                assert got.get((uid, "member_held"), (0, 0))[0] == self.held[i]
            assert len(got) <= 2 * n_members  # nobody else has an account
            stock = dict(
                db.session.execute(
                    sa.select(Reward.id, Reward.stock).where(Reward.id.in_(ids.rewards))
                ).all()
            )
            assert [stock[r] for r in ids.rewards] == self.stock
            statuses = dict(db.session.execute(sa.select(Redemption.id, Redemption.status)).all())
            assert {k: v.value for k, v in statuses.items()} == {
                rid: mr.status for rid, mr in self.redemptions.items()
            }
            settled = set(db.session.scalars(sa.select(Settlement.delivery_id)))
            assert settled == {md.id for md in self.deliveries if md.settled}
            n_tx = db.session.scalar(sa.text("SELECT count(*) FROM ledger_transactions"))
            assert n_tx == len(self.txs)

    return ServiceMachine


def machine_settings(examples: int, *, shrink: bool = SHRINK) -> settings:
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else [])
    return settings(
        max_examples=examples,
        stateful_step_count=STEPS,
        deadline=None,
        derandomize=True,
        database=None,
        phases=phases,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
        ],
    )


@pytest.fixture
def world_ids(app, database_url, tmp_path) -> Iterator[tuple[WorldIds, Restorer]]:
    ids = build_fixed_world()
    yield ids, Restorer(database_url, tmp_path)


#: Steps run by each example of the last run (Hypothesis draws a length up to STEPS).
STEPS_PER_EXAMPLE: list[int] = []


@pytest.mark.parametrize("shard", range(SHARDS))
def test_service_state_machine(world_ids, shard: int) -> None:
    ids, restorer = world_ids
    STEPS_PER_EXAMPLE.clear()
    machine = seed(SEED_BASE + shard)(make_machine(ids, restorer))
    # _min_steps: no example ends before STEPS steps (Hypothesis otherwise stops some
    # early, e.g. near its buffer limit; those examples are discarded and redrawn).
    run_state_machine_as_test(machine, settings=machine_settings(PER_SHARD), _min_steps=STEPS)
    done = STEPS_PER_EXAMPLE
    full = sum(n == STEPS for n in done)
    print(  # shown with -s: the size of the run actually made
        f"\nservice state machine shard {shard}/{SHARDS}: {len(done)} examples, "
        f"{sum(done)} steps (each followed by verify()), {full} examples of the full "
        f"{STEPS} steps, mean {sum(done) / len(done):.1f}"
    )
    # The size is part of what this test proves: PER_SHARD examples of STEPS steps.
    assert full >= PER_SHARD, (full, PER_SHARD)


def _window_always_open(*_args: Any, **_kw: Any) -> None:
    return None


def _nothing_used(*_args: Any, **_kw: Any) -> int:
    return 0


MUTANTS = {
    # Ratings no longer check the window and the delivery's state.
    "rating_window": (
        "volunteer_market.services.ratings.rating._require_open",
        _window_always_open,
    ),
    # Redemptions no longer count what the member already took in the period.
    "per_member_limit": (
        "volunteer_market.services.redemptions.requesting.used_in_period",
        _nothing_used,
    ),
}


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_removed_guard_is_caught(world_ids, monkeypatch, mutant: str) -> None:
    ids, restorer = world_ids
    target, replacement = MUTANTS[mutant]
    monkeypatch.setattr(target, replacement)
    with pytest.raises((AssertionError, Flaky)):
        run_state_machine_as_test(
            make_machine(ids, restorer), settings=machine_settings(MUTANT_EXAMPLES)
        )
