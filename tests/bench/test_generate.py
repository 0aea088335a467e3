"""bench.generate builds a ledger the services accept: verify passes, rebuild agrees,
and a posting through the service layer continues the bulk-written hash chain."""

from __future__ import annotations

import sqlalchemy as sa

from bench.generate import SKIPPED_CHECKS, generate, make_app
from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import LedgerTransaction, TransactionKind
from volunteer_market.models.rankings import RankingMember, RankingScoreCount, RankingTeam
from volunteer_market.services import ledger, ledger_verify, rankings


def _rollups() -> dict[str, list]:
    return {
        t.__tablename__: sorted(tuple(r) for r in db.session.execute(sa.select(t.__table__)).all())
        for t in (RankingMember, RankingScoreCount, RankingTeam)
    }


def _verify() -> ledger_verify.Violation | None:
    return ledger_verify.verify([n for n in ledger_verify.check_names() if n not in SKIPPED_CHECKS])


def test_small_generated_set_verifies(database_url: str) -> None:
    info = generate(database_url, members=50, entries=500, seed=3)
    assert info["entries"] == 500 and info["transactions"] == 250
    app = make_app(database_url)
    with app.app_context():
        assert _verify() is None
        generated = _rollups()
        assert generated["ranking_members"]
        with atomic():
            rankings.rebuild()
        assert _rollups() == generated

        # One more earn through the service layer chains onto the generated head.
        last = db.session.scalars(
            sa.select(LedgerTransaction).order_by(LedgerTransaction.id.desc()).limit(1)
        ).one()
        with atomic():
            ledger.post_transaction(
                kind=TransactionKind.EARN,
                legs=[
                    (ledger.issuance_account(last.community_id), -7),
                    (ledger.account_for_member(last.member_id), 7),
                ],
                idempotency_key="earn:bench-extra",
                actor=None,
                member_id=last.member_id,
                community_id=last.community_id,
                delivery_id=_free_delivery(last),
                minutes=60,
            )
        assert _verify() is None
        db.session.remove()
        db.engine.dispose()


def _free_delivery(last: LedgerTransaction) -> int:
    """A delivery of the member's community on which the member has not earned yet."""
    taken = sa.select(LedgerTransaction.delivery_id).where(
        LedgerTransaction.member_id == last.member_id
    )
    from volunteer_market.models import Delivery

    return db.session.scalar(
        sa.select(Delivery.id)
        .where(Delivery.community_id == last.community_id, Delivery.id.not_in(taken))
        .order_by(Delivery.id)
        .limit(1)
    )
