"""``ledger verify`` finds every kind of corruption we can inject and names the first
broken link; the CLI prints OK with counts or the violation with exit code 1."""

from __future__ import annotations

import pytest

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import AccountKind
from volunteer_market.services import ledger
from volunteer_market.services import verify as lv
from volunteer_market.services.verify import registry

from ..factories import give_points, post_earn
from .conftest import raw


@pytest.fixture
def booked(world, delivery):
    """Five transactions: adjust, earn, earn, adjust, reversal of the first earn."""
    t1 = give_points(world.member_a, 50)
    t2 = post_earn(world.member_a, world.community_a, delivery_id=delivery(), points=24)
    t3 = post_earn(
        world.member_b, world.community_b, delivery_id=delivery(world.community_b), points=10
    )
    t4 = give_points(world.member_a2, 7)
    with atomic():
        t5 = ledger.reverse(world.secretary_a, t2, "申诉成立")
    db.session.rollback()
    return [t1, t2, t3, t4, t5]


def _wallet(user):
    return raw(
        "SELECT id FROM ledger_accounts WHERE user_id = :u AND kind = 'member_available'",
        u=user.id,
    )[0][0]


def test_clean_ledger_verifies(booked):
    assert lv.verify() is None
    assert lv.verify_all() == []
    # wallets of member_a, member_a2, member_b; adjustment and issuance of A; issuance of B
    assert lv.stats() == {"transactions": 5, "entries": 10, "accounts": 6, "entries_sum": 0}
    names = lv.check_names()
    assert names[: len(lv.BUILTIN_CHECKS)] == list(lv.BUILTIN_CHECKS)  # features' checks follow


def test_empty_ledger_verifies(app):
    assert lv.verify() is None


def test_cli_ok(booked, runner):
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: 5 transactions, 10 entries, 6 accounts")


def test_cached_balance_edit(booked, world, runner):
    wallet = _wallet(world.member_a)
    raw("UPDATE ledger_accounts SET balance = balance + 5 WHERE id = :a", a=wallet)
    found = lv.verify()
    assert (found.check, found.account_id) == ("cached_balance", wallet)
    assert "cached balance 55 but entries sum to 50" in found.detail
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 1
    assert f"VIOLATION [cached_balance] account {wallet}:" in result.output


def test_cached_earned_edit(booked, world):
    wallet = _wallet(world.member_b)
    raw("UPDATE ledger_accounts SET earned = earned + 1 WHERE id = :a", a=wallet)
    found = lv.verify()
    assert (found.check, found.account_id) == ("earned", wallet)
    assert "cached earned 11 but earn - reversed earn is 10" in found.detail


def test_entry_amount_tampered(booked, unlocked):
    t3 = booked[2]
    raw(
        "UPDATE ledger_entries SET amount = amount + 1 WHERE transaction_id = :t AND amount > 0",
        t=t3.id,
    )
    found = lv.verify()
    assert (found.check, found.transaction_id) == ("balanced", t3.id)
    assert [v.check for v in lv.verify_all()][:3] == ["balanced", "global_sum", "cached_balance"]


def test_consistent_rewrite_is_caught_by_the_hash_chain(booked, unlocked, world, runner):
    """Both legs and the cached balances rewritten: only the hash chain notices."""
    t4 = booked[3]
    raw("UPDATE ledger_entries SET amount = amount * 10 WHERE transaction_id = :t", t=t4.id)
    raw(
        "UPDATE ledger_accounts SET balance = balance + 63 WHERE id = :a",
        a=_wallet(world.member_a2),
    )
    raw(
        "UPDATE ledger_accounts SET balance = balance - 63 WHERE kind = 'adjustment'"
        " AND community_id = :c",
        c=world.community_a.id,
    )
    found = lv.verify()
    assert (found.check, found.transaction_id) == ("hash_chain", t4.id)
    assert "altered" in found.detail
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 1
    assert f"VIOLATION [hash_chain] transaction {t4.id}: broken link" in result.output


def test_reason_rewritten(booked, unlocked):
    t1 = booked[0]
    raw("UPDATE ledger_transactions SET reason = '另一个原因' WHERE id = :t", t=t1.id)
    found = lv.verify()
    assert (found.check, found.transaction_id) == ("hash_chain", t1.id)


def test_rehashed_tamper_breaks_the_next_link(booked, unlocked):
    """A forger who recomputes the altered transaction's hash breaks the next link (the
    next transaction of the same community chain: t4, t3 is community B's)."""
    t2, t3 = booked[1], booked[3]
    raw(
        "UPDATE ledger_transactions SET reason = '伪造', hash = :h WHERE id = :t",
        h="a" * 64,
        t=t2.id,
    )
    found = lv.verify()
    assert (found.check, found.transaction_id) == ("hash_chain", t2.id)
    # make t2 self-consistent again with a forged hash: t3's prev_hash no longer links
    row = raw(
        "SELECT kind, idempotency_key, member_id, community_id, delivery_id, redemption_id,"
        " reverses_id, minutes, policy_id, actor_id, reason, prev_hash FROM ledger_transactions"
        " WHERE id = :t",
        t=t2.id,
    )[0]
    entries = raw(
        "SELECT account_id, amount FROM ledger_entries WHERE transaction_id = :t", t=t2.id
    )
    forged = ledger.hash_content(
        kind=row[0],
        idempotency_key=row[1],
        member_id=row[2],
        community_id=row[3],
        delivery_id=row[4],
        redemption_id=row[5],
        reverses_id=row[6],
        minutes=row[7],
        policy_id=row[8],
        actor_id=row[9],
        reason=row[10],
        created_at=t2.created_at,
        entries=[(a, m) for a, m in entries],
        prev_hash=row[11],
        chain_key=t2.chain_key,
    )
    raw("UPDATE ledger_transactions SET hash = :h WHERE id = :t", h=forged, t=t2.id)
    found = lv.verify()
    assert (found.check, found.transaction_id) == ("hash_chain", t3.id)
    assert f"prev_hash does not match the hash of transaction {t2.id}" in found.detail


def test_deleted_transaction(booked, unlocked, world):
    """Deleting a whole transaction and fixing the balances leaves a gap in the chain."""
    t4 = booked[3]
    raw("DELETE FROM ledger_entries WHERE transaction_id = :t", t=t4.id)
    raw("DELETE FROM ledger_transactions WHERE id = :t", t=t4.id)
    raw("UPDATE ledger_accounts SET balance = 0 WHERE id = :a", a=_wallet(world.member_a2))
    raw(
        "UPDATE ledger_accounts SET balance = balance + 7 WHERE kind = 'adjustment'"
        " AND community_id = :c",
        c=world.community_a.id,
    )
    found = lv.verify()
    assert (found.check, found.transaction_id) == ("hash_chain", booked[4].id)
    # t5's previous transaction in community A's chain is now t2 (t3 is community B's)
    assert f"hash of transaction {booked[1].id}" in found.detail


def test_head_out_of_step(booked):
    chain = booked[-1].chain_key
    raw("UPDATE ledger_chain_heads SET last_hash = :h WHERE chain_key = :k", h="b" * 64, k=chain)
    found = lv.verify()
    assert found.check == "head"
    raw(
        "UPDATE ledger_chain_heads SET last_hash = :h, transaction_count = 3 WHERE chain_key = :k",
        h=booked[-1].hash,
        k=chain,
    )
    assert lv.verify().check == "head"


def _raw_tx(kind, key, member_id, community_id, legs, *, prev, **refs):
    """Insert a transaction and its entries behind the service's back (INSERT is allowed)."""
    cols = {
        "kind": kind,
        "idempotency_key": key,
        "member_id": member_id,
        "community_id": community_id,
        "prev_hash": prev,
        "hash": (key * 64)[:64],
        **refs,
    }
    names = ", ".join(cols) + ", created_at"
    values = ", ".join(f":{c}" for c in cols) + ", CURRENT_TIMESTAMP"
    raw(f"INSERT INTO ledger_transactions ({names}) VALUES ({values})", **cols)  # noqa: S608
    tx_id = raw("SELECT id FROM ledger_transactions WHERE idempotency_key = :k", k=key)[0][0]
    for account_id, amount in legs:
        raw(
            "INSERT INTO ledger_entries (transaction_id, account_id, amount, created_at)"
            " VALUES (:t, :a, :m, CURRENT_TIMESTAMP)",
            t=tx_id,
            a=account_id,
            m=amount,
        )
    return tx_id


def _adjustment_account(community):
    return raw(
        "SELECT id FROM ledger_accounts WHERE kind = 'adjustment' AND community_id = :c",
        c=community.id,
    )[0][0]


def test_balance_went_negative_in_between(booked, world):
    """Net zero, so the cached balances agree, but the member was overdrawn in between."""
    wallet, adj = _wallet(world.member_a2), _adjustment_account(world.community_a)
    first = _raw_tx(
        "adjust",
        "x",
        world.member_a2.id,
        world.community_a.id,
        [(wallet, -10), (adj, 10)],
        prev="0" * 64,
    )
    _raw_tx(
        "adjust",
        "y",
        world.member_a2.id,
        world.community_a.id,
        [(wallet, 10), (adj, -10)],
        prev="0" * 64,
    )
    found = lv.verify()
    assert (found.check, found.transaction_id, found.account_id) == ("nonnegative", first, wallet)
    assert "went to -3" in found.detail


def test_second_earn_for_a_delivery(booked, world):
    """With the partial UNIQUE index gone, verify still finds the duplicate earn."""
    raw("DROP INDEX uq_ledger_transactions_earn_once")
    try:
        wallet = _wallet(world.member_b)
        issuance = raw(
            "SELECT id FROM ledger_accounts WHERE kind = 'issuance' AND community_id = :c",
            c=world.community_b.id,
        )[0][0]
        dup = _raw_tx(
            "earn",
            "z",
            world.member_b.id,
            world.community_b.id,
            [(wallet, 10), (issuance, -10)],
            prev="0" * 64,
            delivery_id=booked[2].delivery_id,
            minutes=60,
        )
        raw(
            "UPDATE ledger_accounts SET balance = balance + 10, earned = earned + 10 WHERE id = :a",
            a=wallet,
        )
        raw("UPDATE ledger_accounts SET balance = balance - 10 WHERE id = :a", a=issuance)
        found = lv.verify()
        assert (found.check, found.transaction_id) == ("earn_once", booked[2].id)
        assert (
            f"delivery {booked[2].delivery_id} earned 2 times for member {world.member_b.id}"
            in found.detail
        )
        assert dup > booked[2].id
    finally:
        if db.engine.dialect.name == "postgresql":  # the database outlives this test
            raw(
                "TRUNCATE ledger_entries, ledger_transactions, ledger_accounts, ledger_head CASCADE"
            )
            raw(
                "CREATE UNIQUE INDEX IF NOT EXISTS uq_ledger_transactions_earn_once ON"
                " ledger_transactions (delivery_id, member_id) WHERE kind = 'earn'"
            )


def test_reversal_of_a_reversal(booked, world):
    t5 = booked[4]
    legs = raw("SELECT account_id, amount FROM ledger_entries WHERE transaction_id = :t", t=t5.id)
    forged = _raw_tx(
        "reverse",
        "w",
        world.member_a.id,
        world.community_a.id,
        [(a, -m) for a, m in legs],
        prev="0" * 64,
        reverses_id=t5.id,
        minutes=120,
        delivery_id=booked[1].delivery_id,
    )
    for account_id, amount in legs:
        raw(
            "UPDATE ledger_accounts SET balance = balance - :m WHERE id = :a",
            m=amount,
            a=account_id,
        )
    found = lv.verify()
    assert (found.check, found.transaction_id) == ("reversals", forged)
    assert f"reverses transaction {t5.id}, itself a reversal" in found.detail


def test_reversal_with_wrong_legs(booked, world):
    t1 = booked[0]  # adjust +50 to member_a
    wallet, adj = _wallet(world.member_a), _adjustment_account(world.community_a)
    forged = _raw_tx(
        "reverse",
        "v",
        world.member_a.id,
        world.community_a.id,
        [(wallet, -20), (adj, 20)],
        prev="0" * 64,
        reverses_id=t1.id,
    )
    raw("UPDATE ledger_accounts SET balance = balance - 20 WHERE id = :a", a=wallet)
    raw("UPDATE ledger_accounts SET balance = balance + 20 WHERE id = :a", a=adj)
    found = lv.verify()
    assert (found.check, found.transaction_id) == ("reversals", forged)
    assert "exact negation" in found.detail


def test_registered_checks_run_after_the_builtin_ones(booked, monkeypatch):
    calls = []

    def extra():
        calls.append(1)
        return lv.Violation("test_extra", "stock of reward 3 is -1")

    monkeypatch.setattr(registry, "_CHECKS", [*registry._CHECKS])
    registry.register_check("test_extra")(extra)
    assert str(lv.verify()) == "[test_extra] stock of reward 3 is -1"
    with pytest.raises(RuntimeError):
        registry.register_check("test_extra")(extra)


def test_account_kinds_cover_the_design():
    assert {k.value for k in AccountKind} == {
        "member_available",
        "member_held",
        "issuance",
        "redemption_sink",
        "expiry_sink",
        "adjustment",
    }


def test_verify_a_subset_of_checks(booked, world):
    raw("UPDATE ledger_chain_heads SET transaction_count = 99")
    assert lv.verify(["balanced", "hash_chain"]) is None
    assert lv.verify(lv.BUILTIN_CHECKS).check == "head"
    with pytest.raises(LookupError):
        lv.verify(["no_such_check"])


def test_checks_run_in_the_documented_order():
    """The verify package registers every check itself, in one fixed order (the order
    the CLI reports and ``bench.verify_checks`` runs)."""
    assert lv.check_names() == [
        "balanced",
        "global_sum",
        "cached_balance",
        "earned",
        "nonnegative",
        "earn_once",
        "reversals",
        "hash_chain",
        "head",
        "anchors",
        "ranking_rollups",
        "settlements",
        "redemptions",
        "reward_stock",
    ]
    assert tuple(lv.check_names()[:10]) == lv.BUILTIN_CHECKS


def test_no_domain_service_imports_verify():
    """The arrow is verify -> domain: no module of ``services`` outside ``services/verify``
    imports it (every import statement, at any depth)."""
    import ast
    from pathlib import Path

    import volunteer_market.services as services_pkg

    root = Path(services_pkg.__file__).parent
    target = "volunteer_market.services.verify"
    offenders = []
    for path in root.rglob("*.py"):
        parts = ("volunteer_market", "services", *path.relative_to(root).with_suffix("").parts)
        if parts[2] == "verify":
            continue
        package = parts[:-1]  # a module's package; an __init__'s own package
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
                module = ".".join(p for p in (base, node.module or "") if p)
                names = [module, *(f"{module}.{a.name}" for a in node.names)]
            else:
                continue
            if any(n == target or n.startswith(target + ".") for n in names):
                offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert offenders == []
