"""A Hypothesis state machine over ratings, settlement and the ledger.

Steps: record a delivery (random participants, minutes, beneficiaries), rate (by the
beneficiary or by proxy, inside or outside the window), change a rating, settle (before
or after the window, with or without confirmation), reverse an earn, adjust a wallet.
A model predicts every outcome (allowed or refused) and every balance from an
independent implementation of the points arithmetic; after every step all ledger
invariants (``services.verify``, including the ``settlements`` check) hold and
the database agrees with the model.

Time is virtual: every delivery gets its own slot on a clock that only moves forward,
and the services are called with ``now=``, so windows open and close on demand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import Delivery, Rating, Settlement, User, utcnow
from volunteer_market.services import deliveries as delivery_service
from volunteer_market.services import ledger, ratings, settlement
from volunteer_market.services.errors import Conflict, InsufficientPoints
from volunteer_market.services.verify import verify

from ..factories import make_project, points_of
from .conftest import more_residents

MEMBERS = ("member_a", "member_a2", "member_a3")
SLOT = timedelta(hours=10)


def reference_points(minutes: int, scores: list[int]) -> int:
    """The default policy, written independently: round_half_up(h x 10 x m), h <= 8."""
    hours = Decimal(min(minutes, 480)) / Decimal(60)
    if scores:
        avg = Decimal(sum(scores)) / Decimal(len(scores))
        m = (
            Decimal("1.2")
            if avg >= Decimal("4.5")
            else Decimal("1.0")
            if avg >= Decimal("3.5")
            else Decimal("0.5")
            if avg >= Decimal("2.5")
            else Decimal(0)
        )
    else:
        m = Decimal("1.0")
    return int((hours * 10 * m).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass
class ModelDelivery:
    id: int
    start: object
    deadline: object
    minutes: dict[int, int]
    beneficiaries: list[int]
    scores: dict[int, int] = field(default_factory=dict)  # beneficiary -> score
    rating_ids: dict[int, int] = field(default_factory=dict)
    settled: bool = False
    earns: dict[int, int] = field(default_factory=dict)  # member -> tx id


def test_ratings_settlement_and_ledger_state_machine(app, world):
    residents = [world.resident_a, world.resident_a2, *more_residents(world, 2)]
    project = make_project(
        world.member_a,
        world.community_a,
        status="approved",
        team=[world.member_a2, world.member_a3],
    )
    clock = {"t": utcnow() + timedelta(days=1)}
    members = [world.users[m] for m in MEMBERS]

    class Machine(RuleBasedStateMachine):
        @initialize()
        def start(self):
            db.session.rollback()
            self.deliveries: list[ModelDelivery] = []
            self.base = {m.id: points_of(m) for m in members}
            self.delta = {m.id: {"available": 0, "earned_total": 0} for m in members}
            self.reversed: set[int] = set()
            self.earned_by_tx: dict[int, int] = {}

        # --- steps ----------------------------------------------------------------

        @rule(
            length=st.integers(min_value=30, max_value=600),
            shares=st.lists(st.integers(min_value=1, max_value=600), min_size=1, max_size=3),
            n_beneficiaries=st.sampled_from([0, 1, 2, 2, 3, 4]),
        )
        def record(self, length, shares, n_beneficiaries):
            length = min(length, 24 * 60)
            start = clock["t"]
            clock["t"] = start + SLOT + timedelta(minutes=length)
            end = start + timedelta(minutes=length)
            parts = [(members[i].id, min(share, length, 480)) for i, share in enumerate(shares)]
            benef = [r.id for r in residents[:n_beneficiaries]]
            with atomic():
                recorded = delivery_service.record_delivery(
                    world.member_a,
                    project_id=project.id,
                    started_at=start,
                    ended_at=end,
                    participants=parts,
                    beneficiaries=benef,
                    now=end + timedelta(minutes=1),
                )
            d = recorded.delivery
            self.deliveries.append(ModelDelivery(d.id, end, d.rating_deadline, dict(parts), benef))

        def _pick(self, data_index):
            if not self.deliveries:
                return None
            return self.deliveries[data_index % len(self.deliveries)]

        @precondition(lambda self: any(md.beneficiaries for md in self.deliveries))
        @rule(
            index=st.integers(min_value=0, max_value=50),
            who=st.integers(min_value=0, max_value=10),
            score=st.integers(min_value=1, max_value=5),
            proxy=st.booleans(),
            late=st.booleans(),
        )
        def rate(self, index, who, score, proxy, late):
            candidates = [md for md in self.deliveries if md.beneficiaries]
            md = candidates[index % len(candidates)]
            beneficiary = md.beneficiaries[who % len(md.beneficiaries)]
            now = md.deadline + timedelta(minutes=1) if late else md.start + timedelta(hours=1)
            delivery = db.session.get(Delivery, md.id)
            actor = world.grid_a1 if proxy else db.session.get(User, beneficiary)
            expect_ok = not late and not md.settled and beneficiary not in md.scores
            try:
                with atomic():
                    rated = ratings.rate(
                        actor,
                        delivery,
                        score,
                        on_behalf_of=beneficiary if proxy else None,
                        now=now,
                    )
                    rating_id, settled_now = rated.rating.id, rated.settlement is not None
            except Conflict:
                assert not expect_ok
                return
            assert expect_ok
            md.scores[beneficiary] = score
            md.rating_ids[beneficiary] = rating_id
            all_rated = len(md.scores) == len(md.beneficiaries)
            assert settled_now == all_rated
            if all_rated:
                self._settled(md)

        @precondition(lambda self: any(md.scores for md in self.deliveries))
        @rule(
            index=st.integers(min_value=0, max_value=50),
            who=st.integers(min_value=0, max_value=10),
            score=st.integers(min_value=1, max_value=5),
            late=st.booleans(),
        )
        def change(self, index, who, score, late):
            candidates = [md for md in self.deliveries if md.scores]
            md = candidates[index % len(candidates)]
            beneficiary = sorted(md.scores)[who % len(md.scores)]
            rating = db.session.get(Rating, md.rating_ids[beneficiary])
            now = md.deadline + timedelta(minutes=1) if late else md.start + timedelta(hours=2)
            actor = db.session.get(User, beneficiary)
            try:
                with atomic():
                    ratings.change_rating(actor, rating, score, now=now)
            except Conflict:
                assert late or md.settled
                return
            assert not late and not md.settled
            md.scores[beneficiary] = score

        @precondition(lambda self: bool(self.deliveries))
        @rule(
            index=st.integers(min_value=0, max_value=50),
            after_window=st.booleans(),
            confirm=st.booleans(),
        )
        def settle(self, index, after_window, confirm):
            md = self._pick(index)
            if md is None:
                return
            now = md.deadline + timedelta(minutes=5) if after_window else md.start
            delivery = db.session.get(Delivery, md.id)
            expect_ok = not md.settled and after_window and (bool(md.scores) or confirm)
            try:
                with atomic():
                    settlement.settle(world.secretary_a, delivery, confirm_unrated=confirm, now=now)
            except Conflict:
                assert not expect_ok
                return
            assert expect_ok
            self._settled(md)

        @precondition(lambda self: bool(self.earned_by_tx))
        @rule(index=st.integers(min_value=0, max_value=50), member=st.integers(0, 2))
        def reverse_earn(self, index, member):
            candidates = [
                (md, uid, tx) for md in self.deliveries for uid, tx in sorted(md.earns.items())
            ]
            md, user_id, tx_id = candidates[(index + member) % len(candidates)]
            user = db.session.get(User, user_id)
            tx = ledger.get_transaction(tx_id)
            amount = self.earned_by_tx[tx_id]
            try:
                with atomic():
                    ledger.reverse(world.secretary_a, tx, "申诉成立，冲正")
            except InsufficientPoints:
                assert self._available(user.id) < amount
                return
            except Conflict:
                assert tx_id in self.reversed
                return
            assert tx_id not in self.reversed
            self.reversed.add(tx_id)
            self.delta[user.id]["available"] -= amount
            self.delta[user.id]["earned_total"] -= amount

        @rule(member=st.integers(0, 2), amount=st.integers(-40, 40).filter(bool))
        def adjust(self, member, amount):
            user = members[member]
            try:
                with atomic():
                    ledger.adjust(world.secretary_a, user, amount, "调整")
            except InsufficientPoints:
                assert self._available(user.id) + amount < 0
                return
            self.delta[user.id]["available"] += amount

        # --- model helpers -----------------------------------------------------------

        def _available(self, user_id: int) -> int:
            return self.base[user_id]["available"] + self.delta[user_id]["available"]

        def _settled(self, md: ModelDelivery) -> None:
            md.settled = True
            scores = list(md.scores.values())
            db.session.rollback()
            s = db.session.execute(
                sa.select(Settlement).where(Settlement.delivery_id == md.id)
            ).scalar_one()
            assert s.ratings_count == len(scores) and s.score_sum == sum(scores)
            assert s.confirmed_unrated == (not scores)
            rows = db.session.execute(
                sa.text(
                    "SELECT user_id, points, minutes, transaction_id FROM settlement_postings"
                    " WHERE settlement_id = :s"
                ),
                {"s": s.id},
            ).all()
            assert {r.user_id for r in rows} == set(md.minutes)
            for r in rows:
                expected = reference_points(md.minutes[r.user_id], scores)
                assert r.points == expected, (r, md, scores)
                assert r.minutes == md.minutes[r.user_id]
                assert (r.transaction_id is None) == (expected == 0)
                if r.transaction_id is not None:
                    md.earns[r.user_id] = r.transaction_id
                    self.earned_by_tx[r.transaction_id] = expected
                    self.delta[r.user_id]["available"] += expected
                    self.delta[r.user_id]["earned_total"] += expected

        # --- invariants ----------------------------------------------------------------

        @invariant()
        def ledger_verifies(self):
            db.session.rollback()
            found = verify()
            assert found is None, str(found)

        @invariant()
        def balances_match_the_model(self):
            if not hasattr(self, "base"):
                return
            for m in members:
                now = points_of(m)
                assert now["available"] == self._available(m.id)
                assert (
                    now["earned_total"]
                    == self.base[m.id]["earned_total"] + self.delta[m.id]["earned_total"]
                )

        @invariant()
        def one_earn_per_participant_of_a_settled_delivery(self):
            if not getattr(self, "deliveries", None):
                return
            counts = dict(
                db.session.execute(
                    sa.text(
                        "SELECT delivery_id, count(*) FROM ledger_transactions"
                        " WHERE kind = 'earn' GROUP BY delivery_id"
                    )
                ).all()
            )
            for md in self.deliveries:
                status = db.session.get(Delivery, md.id).status.value
                assert (status == "settled") == md.settled
                assert counts.get(md.id, 0) == len(md.earns)

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=15,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            database=None,
        ),
    )


def test_reference_points_agree_with_the_contract():
    assert reference_points(120, [5, 4]) == 24
    assert reference_points(120, []) == 20
    assert reference_points(600, [5]) == 96
    assert reference_points(90, [3]) == 8  # 1.5 x 10 x 0.5 = 7.5 -> 8 (half up)
    assert reference_points(120, [1, 2]) == 0
