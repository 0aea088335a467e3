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

1. lock the head of the transaction's chain (``head.py``: one chain per community,
   chain key = ``community_id``, 0 for a transaction without one; ``SELECT ... FOR
   UPDATE`` on PostgreSQL; on SQLite ``atomic()``'s ``BEGIN IMMEDIATE`` already
   serializes writers);
2. if a transaction with the idempotency key exists, return it (nothing posted); an
   earn of the delivery for this member under another key is a 409 (the same read);
3. per leg ``UPDATE ledger_accounts SET balance = balance + :amt WHERE id = :id AND
   (kind is not a member kind OR balance + :amt >= 0)``; no row ->
   :class:`InsufficientPoints` (409) and nothing of it stays (a savepoint only when
   the refused leg could come after a moved one: ``posting._savepoint_if_refusable``);
4. insert the transaction (with its chain key and hash, ``RETURNING id``) and all its
   entries (one multi-row ``INSERT``) with Core -- no ORM flush of ledger rows; the
   objects returned are put in the session as persistent; advance the chain's head;
5. call ``posting._after_post`` (rollups maintained in the same transaction, by
   ``services.rankings.rollups``; the shared score buckets deferred to the outermost
   commit, then written in three statements in key order).

Lock order (the rule that keeps PostgreSQL free of deadlocks):

1. the chain heads, **ascending by chain key** (nearly every transaction takes one:
   its community's; :func:`lock_heads` takes several in order, after the registry lock shared; whole-ledger operations
   take the registry lock and then every head, :func:`lock_all_heads`, as the first
   lock of their transaction);
2. named locks (:func:`mutex`) and the row of the object acted on (the delivery, the
   redemption, its pickup-code counters);
3. ledger accounts, **ascending by id** within a posting; a transaction that posts for
   several members locks their wallets first, ascending
   (:func:`lock_member_accounts`);
4. anything else: reward stock (after the hold posting), member, team and annual
   rollup rows (a member's rows are written only under that member's wallet lock; team
   and annual rows belong to one community, so under its head);
5. last, at commit: the score buckets, shared by the members of a street or district
   across communities, netted and written in ascending key order
   (``rankings.rollups.flush_pending``).

Postings of different communities share no head, so on PostgreSQL they run in
parallel; they meet only on rows they really share (a member's wallet, a reward's
stock, a score bucket at commit), always in the order above.

What each former user of the single head relied on, and what guarantees it now:

=====================================  ==============================================
caller (relied on the single head for) now guaranteed by
=====================================  ==============================================
posting (a linear chain)               the head of its community's chain
``accounts._account`` (one account     ``owner_key`` UNIQUE + ``INSERT .. ON CONFLICT
per owner under races)                 DO NOTHING`` then read; no head needed
``earn``/``adjust``/``reverse``        the head of the community's chain; a reversal
(reversal at most once)                takes the original's chain, so two reversals of
                                       one transaction queue there (and ``reverses_id``
                                       is UNIQUE)
``settlement.settle`` (one settlement  the delivery community's head, then the
per delivery; earns)                   delivery row ``FOR UPDATE`` (as before); the
                                       participants' wallets locked ascending before
                                       the earns
``ratings.rating._record`` (rating,    the delivery community's head, then the
auto-settlement)                       delivery row
``appeals.decide`` (one decision;      the heads of the appeal's community and of the
the reversal/adjustment)               appealed transaction's chain, ascending; the
                                       conditional ``UPDATE .. WHERE status='open'``;
                                       the reversed earns' wallets locked ascending
``redemptions.requesting.request``     the community's head (the hold); stock: the
(stock, per-member limit)              conditional ``UPDATE rewards .. stock >= q``
                                       (atomic, its row lock held to commit, so two
                                       communities sharing a street reward cannot
                                       oversell); the per-member limit is counted
                                       while the hold's balance UPDATE holds the
                                       member's wallet row (every request of the
                                       member, any community, queues there)
``redemptions.transitions.close`` /    the redemption community's head (every
``fulfil`` (one final state)           transition of a redemption takes it), the
                                       ``status = 'held'`` check under it
``redemptions.lockout`` (tries counted ``mutex("pickup-code-user", user)`` per user
one after another)                     (``pg_advisory_xact_lock``) and the redemption's
                                       counters read ``FOR UPDATE``; ``fulfil`` takes
                                       the head first (lock order)
``wallet_expiry.expire_member`` (one   the expiry community's head, then the member's
expiry per member and year)            wallet ``FOR UPDATE``, the plan made again
                                       under them (the key checked after)
``rankings.eligibility`` (no posting   :func:`lock_all_heads` (a member's rows and
interleaves a flag refresh)            buckets move with postings of any community)
``rankings.rebuild`` (no posting       :func:`lock_all_heads`
interleaves)
=====================================  ==============================================

Append-only. No code path updates or deletes entries or transactions, and
database triggers on both engines refuse it (``models.ledger.ledger_trigger_ddl``).
A correction is a reversing transaction (:func:`reverse`) or an adjustment
(:func:`adjust`), each with a reason (``corrections.py``).

Tamper evidence. Each transaction stores its ``chain_key``, ``prev_hash`` (the
previous transaction's hash *in its chain*; the chain's genesis for the first) and
``hash`` = sha256 over the canonical JSON of its content (kind, key, references,
actor, reason, time, sorted ``[account_id, amount]`` entries, chain key) and
``prev_hash`` (``hashing.py``, version 2). Transactions posted before the chains stay
in the *legacy* chain (``chain_key`` NULL, version 1, ending at ``ledger_head``); each
chain's genesis is derived from the legacy chain's last hash, so every chain is bound
to the legacy history. ``anchors.py`` writes anchors (``flask ledger anchor``, cron):
a linear chain of snapshots of every head. ``ledger verify`` (``services/verify/``)
recomputes the legacy chain and every community chain link by link, checks every
head against its chain's last transaction and every anchor against the transactions
it names.

Strength, compared with the single chain. Within a chain, altering, inserting,
removing or reordering a transaction breaks a link or a hash exactly as before, and a
transaction moved to another chain breaks its hash (the chain key is hashed). What the
single chain also gave is a total order of all transactions and one end witnessing
everything; now each chain's end is witnessed by its own head row, so a writer who
truncates a chain's tail *and* moves its head would go unnoticed -- unless the tail is
older than the last anchor: the anchor names each chain's last transaction and hash at
its time, and verify reports a missing or changed one. So truncation is detected up to
the last anchor (run ``ledger anchor`` often, and keep its hashes outside the
database for the strongest guarantee); the single chain had the same weakness at its
own tail (a truncated tail plus a moved head verified clean too).

Idempotency. Every posting has a unique key. Natural keys make retries safe:
``earn:d<delivery>:u<member>``, ``reverse:t<transaction>``; API requests with an
``Idempotency-Key`` header also replay their first response (``api/idempotency.py``).

Rooms of this package
=====================

``head.py``         the chain heads: :func:`lock_head` (the first lock), :func:`lock_heads`,
                    :func:`lock_all_heads`, :func:`mutex` and the bookkeeping
``accounts.py``     one account per owner, created race-safely; :func:`lock_member_accounts`
``anchors.py``      the anchor chain: :func:`~.anchors.write_anchor`
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
