"""Deliveries: record one service session, its participants, beneficiaries and no-shows.

Design overview
---------------
* Recorded by the owner or an active team member of an ``approved`` project.
* Participants (owner or active team members) serve whole minutes, each at most the
  session length and :func:`participant_cap_minutes` (8 h; the points policy may
  replace that function). A session lasts at most 24 h, ends after it starts, not in
  the future and not longer ago than the rating window (its codes must still work).
* Beneficiaries are residents of the project's community; nobody is both.
* A member never has two overlapping sessions: inside the write transaction the
  participants' user rows are locked (``FOR NO KEY UPDATE`` on PostgreSQL, in id
  order; SQLite's ``BEGIN IMMEDIATE`` already serialises writers) before the overlap
  query, so two concurrent recordings for one member cannot both pass.
* The optional need (same community) is closed by a conditional UPDATE.
* The rating secret never reaches a participant: recording makes no code. A resident
  with an account rates from their own session; for one without, the community's
  secretary or a grid worker who did not serve issues a slip (:func:`issue_slips`):
  a one-time six-digit code and a long random token for the QR URL ``/rate/<token>``,
  shown once to the issuer. Only ``sha256`` hex digests are stored
  (:func:`rating_code_hash`, :func:`rating_token_hash`) with who issued them. A code
  is unique among unused codes of deliveries whose rating window is still open: look
  codes up with :func:`find_beneficiary_by_code`, which applies the same condition.
* Ratings and settlement both lock the delivery row (:func:`lock_delivery`, after the
  head of the delivery's community chain) and read its scores (:func:`scores_of`); those two live here, below
  both, so neither service imports the other's internals.

Rooms of the package
--------------------
``recording``  :func:`record_delivery` and its steps; the session and window limits
``photo``      the session photo (recorder or owner, before settlement)
``codes``      the beneficiaries' rating codes and QR tokens: digests, allocation, lookup
``slips``      :func:`issue_slips`: codes on printable slips, issued by non-participants
``reading``    get, the visible lists, a project's deliveries; the row lock and scores
"""

from __future__ import annotations

from .codes import (
    CODE_DIGITS,
    RatingCode,
    find_beneficiary_by_code,
    find_beneficiary_by_token,
    qr_svg_data_uri,
    rating_code_hash,
    rating_token_hash,
)
from .photo import check_photo_allowed, set_photo
from .reading import (
    deliveries_of,
    get_delivery,
    get_visible_delivery,
    list_deliveries,
    lock_delivery,
    project_title,
    scores_of,
    visible_condition,
)
from .recording import (
    CLOCK_SKEW,
    MAX_SESSION,
    RATING_WINDOW,
    RECORD_WINDOW,
    Recorded,
    participant_cap_minutes,
    rating_window,
    record_delivery,
)
from .slips import issue_slips

__all__ = [
    "CLOCK_SKEW",
    "CODE_DIGITS",
    "MAX_SESSION",
    "RATING_WINDOW",
    "RECORD_WINDOW",
    "RatingCode",
    "Recorded",
    "check_photo_allowed",
    "deliveries_of",
    "find_beneficiary_by_code",
    "find_beneficiary_by_token",
    "get_delivery",
    "get_visible_delivery",
    "issue_slips",
    "list_deliveries",
    "lock_delivery",
    "project_title",
    "participant_cap_minutes",
    "qr_svg_data_uri",
    "rating_code_hash",
    "rating_token_hash",
    "rating_window",
    "record_delivery",
    "scores_of",
    "set_photo",
    "visible_condition",
]
