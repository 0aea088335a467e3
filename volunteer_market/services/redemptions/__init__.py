"""Redemption (积分兑换): request, fulfil, cancel, reject, expire -- safe under concurrency.

Design overview
===============

States and who moves them (every step is one ledger transaction, audited, and the
member is notified):

=========  =========  ==============================================  ==================
from       to         who                                             ledger
=========  =========  ==============================================  ==================
(new)      held       a member in the reward's scope                  ``hold`` available -> held
held       fulfilled  the community's secretary, on the pickup code   ``redeem`` held -> redemption sink
held       cancelled  the member, or the community's secretary        ``release`` held -> available
held       rejected   the community's secretary, with a reason        ``release``
held       expired    ``flask --app wsgi redemptions expire`` (cron)  ``release``
=========  =========  ==============================================  ==================

Cancelled, rejected and expired redemptions give their stock back. "The community"
is the member's community inside the reward's scope (:func:`redemption_community`):
its secretary hands the reward over, its redemption sink receives the points.

Request (:func:`request`), in the caller's one write transaction:

1. read-only checks with clear messages (visible 404, may redeem 403, quantity 422,
   open 409);
2. lock the head of the community's chain (``services.ledger.lock_head``) -- the
   first lock, as the ledger's lock order demands; a redemption already made with this request's
   idempotency key is returned instead (replay);
3. allocate the redemption's id (:func:`next_redemption_id`) so the hold can carry it;
4. **hold**: ``post_transaction(hold)``, whose conditional balance UPDATE refuses to
   take the wallet below zero -> :class:`InsufficientPoints` (409);
5. **stock**: ``UPDATE rewards SET stock = stock - :q WHERE id = :id AND stock >= :q``
   (limited stock only); no row -> :class:`OutOfStock` (409);
6. **limit**: the member's held + fulfilled quantity of this reward in the current
   period (month/quarter/year/all, in the community's time zone) plus ``q`` must not
   exceed the limit -> :class:`LimitReached` (409). Race-free without a lock of its
   own: on PostgreSQL step 4 updated the member's wallet row (held to commit), so a
   second request of the same member -- in any community -- waits until this
   transaction commits, and its step-6 query (READ COMMITTED: a fresh snapshot per statement)
   then counts this redemption; on SQLite ``BEGIN IMMEDIATE`` serializes writers.
   ``tests/rewards/test_races.py`` proves it with real processes on both engines;
7. insert the redemption (pickup-code digest) and the ``reserve`` stock change.

A refusal at any step raises, and the caller's ``atomic()`` rolls back everything:
the hold, the stock, the rows.

Transitions (:func:`fulfil`, :func:`cancel`, :func:`reject`, :func:`expire_hold`):

1. lock the ledger head; re-read the status (the common refusal gets a clear 409);
2. post the ledger transaction with its natural key (``redeem:r<id>`` or
   ``release:r<id>``: a redemption can be released at most once, ever);
3. the arbiter: ``UPDATE redemptions SET status = :new, final_transaction_id = ...
   WHERE id = :id AND status = 'held'``; rowcount 0 -> :class:`Conflict` and the whole
   transaction, posting included, rolls back. Of a racing cancel, fulfil and
   expiry exactly one wins;
4. stock back: ``UPDATE rewards SET stock = stock + :q WHERE id = :id AND stock IS
   NOT NULL`` (if stock was reserved) and a ``return`` stock change.

Lock order everywhere: ledger head -> ledger accounts -> redemption -> reward.

Pickup codes: eight digits. The database keeps only an HMAC digest (unique among
held redemptions) and a random salt; the member's pages re-derive the code from
the salt and the application key (``PICKUP_CODE_KEY``, default ``SECRET_KEY``), so
a copy of the database alone yields no usable code. Rotating the key invalidates
the codes of redemptions still held (cancel and request again). The QR code holds
the URL of the fulfilment page with the code filled in.

``ledger verify`` has two checks of redemptions (``redemptions`` and ``reward_stock``,
in ``services/verify/redemptions.py``): every hold/release/redeem matches its
redemption, each member's held balance equals their held redemptions, per-member
limits hold, and every reward's stock is accounted for by its stock changes.

Rooms of the package
====================

``codes``          pickup codes: derive, digest, normalise, allocate; the QR code
``periods``        limit periods (month/quarter/year/all) in the community's zone
``reading``        get, visible lists, lookup by code, ``present``, the allowance left
``requesting``     :func:`request` and its steps (named ``requesting``: a submodule
                   called ``request`` would be shadowed by the function it exports)
``transitions``    fulfil, cancel, reject and ``close`` (the one way out of ``held``)
``lockout``        wrong pickup codes counted per redemption and per fulfilling user
``expiry``         due holds, expire, remind
"""

from __future__ import annotations

from .codes import (
    CODE_DIGITS,
    code_digest,
    derive_code,
    normalise_code,
    pickup_code,
    qr_svg_data_uri,
)
from .expiry import REMIND_BEFORE, due_holds, expire_hold, expire_holds, remind_expiring
from .lockout import look_up
from .periods import PERIOD_LABELS, period_key, period_start
from .reading import (
    find_held_by_code,
    get_redemption,
    get_visible_redemption,
    present,
    redemption_community,
    redemptions_stmt,
    remaining_allowance,
    used_in_period,
)
from .requesting import (
    MAX_QUANTITY,
    Issued,
    LimitReached,
    OutOfStock,
    next_redemption_id,
    request,
    request_key,
)
from .transitions import MAX_REASON, cancel, fulfil, reject

__all__ = [
    "CODE_DIGITS",
    "MAX_QUANTITY",
    "MAX_REASON",
    "PERIOD_LABELS",
    "REMIND_BEFORE",
    "Issued",
    "LimitReached",
    "OutOfStock",
    "cancel",
    "code_digest",
    "derive_code",
    "due_holds",
    "expire_hold",
    "expire_holds",
    "find_held_by_code",
    "look_up",
    "fulfil",
    "get_redemption",
    "get_visible_redemption",
    "next_redemption_id",
    "normalise_code",
    "period_key",
    "period_start",
    "pickup_code",
    "present",
    "qr_svg_data_uri",
    "redemption_community",
    "redemptions_stmt",
    "reject",
    "remaining_allowance",
    "remind_expiring",
    "request",
    "request_key",
    "used_in_period",
]
