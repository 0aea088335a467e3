"""A Hypothesis state machine over the ledger services: adjustments (+/-), direct earn
postings (settlement's), reversals and idempotent replays, with
``verify()`` and a model of every balance checked after every step.

Default run: 12 examples x 30 steps (it was 30 x 30, the longest test of the suite;
the service-level machine of tests/ledger/test_service_state_machine.py now covers the
same operations and more) (verify() runs every feature's checks, so a step
costs tens of milliseconds). Longer: ``LEDGER_STATEFUL_EXAMPLES=1000
LEDGER_STATEFUL_STEPS=100 pytest tests/ledger/test_stateful.py``.
"""

from __future__ import annotations

import os
import uuid

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from volunteer_market.database import atomic
from volunteer_market.models import AreaKind, Role, TransactionKind
from volunteer_market.services import ledger
from volunteer_market.services import points_policy as pp
from volunteer_market.services.errors import AlreadyReversed, Conflict, InsufficientPoints
from volunteer_market.services.verify import verify

from ..factories import make_area, make_user
from .conftest import make_delivery_ids, reset_database

EXAMPLES = int(os.environ.get("LEDGER_STATEFUL_EXAMPLES", "12"))
STEPS = int(os.environ.get("LEDGER_STATEFUL_STEPS", "30"))

who = st.integers(min_value=0, max_value=2)


def test_ledger_state_machine(app, database_url, database_template):
    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            reset_database(database_url, database_template)
            district = make_area("汉阳区", AreaKind.DISTRICT)
            street = make_area("龙阳街", AreaKind.STREET, district)
            self.community = make_area("龙湖东岸社区", AreaKind.COMMUNITY, street)
            self.secretary = make_user("sec", (Role.SECRETARY, self.community))
            self.members = [make_user(f"m{i}", (Role.MEMBER, self.community)) for i in range(3)]
            with atomic():
                self.policy = pp.ensure_default_policy()
            self.available = [0, 0, 0]
            self.held = [0, 0, 0]
            self.earned = [0, 0, 0]
            #: id -> (member index, kind, available delta, held delta, earned delta)
            self.txs: dict[int, tuple[int, TransactionKind, int, int, int]] = {}
            self.reversed: set[int] = set()
            self.keys: dict[str, int] = {}
            #: A delivery per possible earn step (an earn references a real delivery).
            self.deliveries = make_delivery_ids(self.community, self.members[0], STEPS)

        def _record(self, tx, i, avail, held=0, earned=0):
            self.txs[tx.id] = (i, tx.kind, avail, held, earned)
            self.available[i] += avail
            self.held[i] += held
            self.earned[i] += earned

        @rule(i=who, amount=st.integers(min_value=-80, max_value=80).filter(bool))
        def adjust(self, i, amount):
            key = f"adj-{uuid.uuid4().hex}"
            try:
                with atomic():
                    tx = ledger.adjust(
                        self.secretary, self.members[i], amount, "调整", idempotency_key=key
                    )
            except InsufficientPoints:
                assert self.available[i] + amount < 0
                return
            assert self.available[i] + amount >= 0
            self.keys[key] = tx.id
            self._record(tx, i, amount)

        @rule(
            i=who,
            minutes=st.integers(min_value=0, max_value=600),
            scores=st.lists(st.integers(min_value=1, max_value=5), max_size=4),
        )
        def earn(self, i, minutes, scores):
            points = pp.points_for(minutes, pp.average_score(scores), self.policy)
            delivery = self.deliveries.pop()
            with atomic():
                tx = ledger.earn(
                    None,
                    member_id=self.members[i].id,
                    community_id=self.community.id,
                    delivery_id=delivery,
                    points=points,
                    minutes=minutes,
                    policy_id=self.policy.id,
                )
            if points == 0:
                assert tx is None
                return
            assert tx.minutes == minutes and tx.policy_id == self.policy.id
            self._record(tx, i, points, 0, points)

        @precondition(lambda self: self.txs)
        @rule(pick=st.integers(min_value=0, max_value=10_000))
        def reverse(self, pick):
            tx_id = sorted(self.txs)[pick % len(self.txs)]
            i, kind, avail, held, earned = self.txs[tx_id]
            tx = ledger.get_transaction(tx_id)
            try:
                with atomic():
                    rev = ledger.reverse(self.secretary, tx, "冲正")
            except AlreadyReversed:
                assert tx_id in self.reversed
                return
            except InsufficientPoints:
                assert self.available[i] - avail < 0 or self.held[i] - held < 0
                return
            except Conflict:
                assert kind == TransactionKind.REVERSE
                return
            assert tx_id not in self.reversed and kind in ledger.REVERSIBLE_KINDS
            assert self.available[i] - avail >= 0 and self.held[i] - held >= 0
            self.reversed.add(tx_id)
            self._record(rev, i, -avail, -held, -earned)

        @precondition(lambda self: self.keys)
        @rule(pick=st.integers(min_value=0, max_value=10_000), i=who)
        def replay(self, pick, i):
            key = sorted(self.keys)[pick % len(self.keys)]
            member_index, *_ = self.txs[self.keys[key]]
            with atomic():
                tx = ledger.adjust(
                    self.secretary, self.members[member_index], 1, "重放", idempotency_key=key
                )
            assert tx.id == self.keys[key]  # nothing new is posted

        @invariant()
        def ledger_verifies(self):
            found = verify()
            assert found is None, str(found)

        @invariant()
        def balances_match_the_model(self):
            for i, member in enumerate(self.members):
                assert ledger.balances(member) == {
                    "available": self.available[i],
                    "held": self.held[i],
                    "earned_total": self.earned[i],
                }
                assert self.available[i] >= 0 and self.held[i] >= 0 and self.earned[i] >= 0

    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
