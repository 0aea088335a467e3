"""Ratings (评价): beneficiaries score a delivery 1-5; participants reply once.

Design overview
===============

Who rates. Only a beneficiary of the delivery rates it, once (UNIQUE
``(delivery_id, beneficiary_id)``; a second POST is a 409 that points at the
change path). Participants never rate their own delivery. A grid worker or the
secretary of the delivery's community may enter a rating for a beneficiary
(``on_behalf_of``): it is flagged ``is_proxy``, audited, and the beneficiary is
notified. Without an account password a resident rates with the one-time
six-digit code or the QR token of the delivery (:func:`rate_by_code`); a wrong,
used or expired code gets one generic 422 (:class:`InvalidRatingCode`) that never
says which, and failures are throttled per IP by the web/API layer
(``http/throttles.py``). Any rating, however entered, uses up the code.

When. Inside the delivery's window: ``now < delivery.rating_deadline``, fixed at
recording time from the community's points policy (``rating_window_days``), and
only while the delivery awaits ratings. The rating may be changed
(:func:`change_rating`) by the beneficiary or by proxy staff inside the window
and until settlement; after that, 409.

Settlement. When the last beneficiary rates, the delivery is settled in the same
transaction (``services/settlement.py``, ``settled_by_id`` NULL = automatic).
Settlement and ratings share the delivery row lock and the scores read, which live
below both in ``services/deliveries`` (no import cycle).

Locks (PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises writers anyway).
Recording a rating may settle, and settling posts to the ledger, whose rule is
"the chain head first". So :func:`rate` takes the head of the delivery's
community chain, then the
delivery row (``FOR UPDATE``), and only then reads the ratings: concurrent
ratings of one delivery serialise, the last one sees all the others and settles
exactly once. :func:`change_rating` never posts, so it locks the delivery row
only (settlement waits for it, or it waits for settlement and sees ``settled``).

Privacy. Members (participants) see scores, comments and replies, never who gave
which: no rater or beneficiary ids, no proxy flag, no times, and the list is
ordered by score, not by time (with one beneficiary the author is obvious; that
is inherent). The community's secretary and the officers above it see who
(``rating.identities``); every caller sees their own rating marked ``mine``.
Notifications of a rating to the participants carry the score, never the rater.

Rooms of the package
====================

``input``    score and text validation; the generic refusal of a code (``InvalidRatingCode``)
``state``    the rated delivery as ratings read it: window, beneficiaries, participants, title
``codes``    which beneficiary a code or QR token opens, and what it rates
``rating``   rate, rate by code, change, reply (the locks and the automatic settlement)
``reading``  ratings as a given user may see them; lists for the pages
"""

from __future__ import annotations

from .codes import describe_code, find_code
from .input import CODE_RE, INVALID_CODE_MESSAGE, InvalidRatingCode, clean_score, clean_text
from .rating import (
    Rated,
    change_rating,
    get_rating,
    get_visible_rating,
    rate,
    rate_by_code,
    reply,
)
from .reading import (
    delivery_ratings,
    given_ratings,
    present_ratings,
    received_ratings,
    titles,
    to_rate,
)
from .state import beneficiary_ids, participant_ids, window_open

__all__ = [
    "CODE_RE",
    "INVALID_CODE_MESSAGE",
    "InvalidRatingCode",
    "Rated",
    "beneficiary_ids",
    "change_rating",
    "clean_score",
    "clean_text",
    "delivery_ratings",
    "describe_code",
    "find_code",
    "get_rating",
    "get_visible_rating",
    "given_ratings",
    "participant_ids",
    "present_ratings",
    "rate",
    "rate_by_code",
    "received_ratings",
    "reply",
    "titles",
    "to_rate",
    "window_open",
]
