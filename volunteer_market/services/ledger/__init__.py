"""The points ledger (积分账本): the only code that writes ledger rows.

Design overview
===============

Double entry. Every movement of points is a :class:`LedgerTransaction` with two or
more :class:`LedgerEntry` legs whose amounts sum to zero. Accounts
(:class:`LedgerAccount`):

============================  =================================  ==================
kind                          owner                              balance
============================  =================================  ==================
``member_available``          one per member (the wallet)        never < 0
``member_held``               one per member (pending redemptions) never < 0
``issuance``                  one per community                  goes negative
``redemption_sink``           one per community                  grows
``expiry_sink``               one per community                  grows
``adjustment``                one per community                  either sign
============================  =================================  ==================

Kinds of transaction and their usual legs: ``earn`` issuance -> available (a
delivery's settlement; carries ``delivery_id``, ``minutes``, ``policy_id``);
``hold`` available -> held, ``release`` held -> available, ``redeem`` held ->
redemption sink (a redemption; ``redemption_id``); ``expire`` available -> expiry
sink; ``adjust`` adjustment <-> available (a secretary, with a reason);
``reverse`` the negated legs of an earlier earn/adjust/expire, with a reason
(``reverses_id``; at most once; it copies the original's references, including
``minutes``, so rollups subtract hours as well as points).

Two balances. ``balance`` on the member's accounts is the wallet (available) and
the held amount. The service record is ``earned`` on the available account: it
moves only with earns and reversals of earns, so redemption and expiry never
lower it (rankings and evaluation read it).

Posting (:func:`post_transaction`, ``posting.py``), all inside the caller's ``atomic()``:

1. lock the head row (``head.py``; ``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite
   ``atomic()``'s ``BEGIN IMMEDIATE`` already serializes writers);
2. if a transaction with the idempotency key exists, return it (nothing posted);
3. in a savepoint, per leg ``UPDATE ledger_accounts SET balance = balance + :amt
   WHERE id = :id AND (kind is not a member kind OR balance + :amt >= 0)``;
   no row -> :class:`InsufficientPoints` (409) and nothing of it stays;
4. insert the transaction with its hash and its entries; advance the head;
5. call ``posting._after_post`` (rollups maintained in the same transaction, by
   ``services.rankings.rollups``).

Lock order (the rule that keeps PostgreSQL free of deadlocks): **the ledger head
row first, then ledger accounts, then anything else** (reward stock,
redemptions, rollups). Every helper here that creates or touches accounts takes
the head lock first, so callers get the order for free; a service that also moves
stock posts first and updates stock afterwards.

Append-only. No code path updates or deletes entries or transactions, and
database triggers on both engines refuse it (``models.ledger.ledger_trigger_ddl``).
A correction is a reversing transaction (:func:`reverse`) or an adjustment
(:func:`adjust`), each with a reason (``corrections.py``).

Tamper evidence. Each transaction stores ``prev_hash`` (the previous
transaction's hash) and ``hash`` = sha256 over the canonical JSON of its content
(kind, key, references, actor, reason, time, sorted ``[account_id, amount]``
entries) and ``prev_hash`` (``hashing.py``). ``ledger verify`` (the package
``services/verify/``) recomputes the chain and every invariant.

Idempotency. Every posting has a unique key. Natural keys make retries safe:
``earn:d<delivery>:u<member>``, ``reverse:t<transaction>``; API requests with an
``Idempotency-Key`` header also replay their first response (``api/idempotency.py``).

Rooms of this package
=====================

``head.py``         the head row: :func:`lock_head` (the first lock) and its bookkeeping
``accounts.py``     one account per owner, created race-safely after the head lock
``hashing.py``      :func:`hash_content`, the canonical hash of a transaction
``posting.py``      :func:`post_transaction`, :func:`earn` and the posting hook
``corrections.py``  :func:`reverse`, :func:`adjust` and the adjustment target
``reading.py``      balances, history, presentation, monthly earnings, the overview

The limits (``MAX_ADJUSTMENT``, ``MAX_REASON``) live in ``models/ledger.py`` and
are re-exported here for callers.
"""

from ...models.ledger import MAX_ADJUSTMENT, MAX_REASON
from .accounts import (
    COMMUNITY_ACCOUNT_KINDS,
    Leg,
    account_for_member,
    adjustment_account,
    issuance_account,
    lock_member_accounts,
    sink_account,
)
from .corrections import (
    AdjustTarget,
    adjust,
    adjustable_community,
    member_communities,
    reverse,
)
from .hashing import hash_content
from .head import lock_all_heads, lock_head, lock_heads, mutex
from .posting import REVERSIBLE_KINDS, earn, post_transaction
from .reading import (
    balances,
    earned_by_month,
    get_transaction,
    history,
    member_delta,
    member_overview_stmt,
    present_transactions,
)

__all__ = [
    "COMMUNITY_ACCOUNT_KINDS",
    "MAX_ADJUSTMENT",
    "MAX_REASON",
    "REVERSIBLE_KINDS",
    "AdjustTarget",
    "Leg",
    "account_for_member",
    "adjust",
    "adjustable_community",
    "adjustment_account",
    "balances",
    "earn",
    "earned_by_month",
    "get_transaction",
    "hash_content",
    "history",
    "issuance_account",
    "lock_all_heads",
    "lock_head",
    "lock_heads",
    "lock_member_accounts",
    "mutex",
    "member_communities",
    "member_delta",
    "member_overview_stmt",
    "post_transaction",
    "present_transactions",
    "reverse",
    "sink_account",
]
