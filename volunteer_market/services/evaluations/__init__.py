"""Annual evaluation (年度考核): the annual report, the year's close and its notice.

Design overview
===============

The report (``report.py``) reads rollups only: points and hours from the ranking
rollups (period ``YYYY``), deliveries, ratings, points spent and expired and the
projects of each member from the annual rollups that ``services.rankings.annual``
keeps in every posting's transaction. A year is the calendar year in the community's
time zone of the posting (a reversal: of the posting it reverses). The figures are
therefore exact at the moment of reading and cost a few set-based reads per batch of
communities, never a pass over the ledger.

The evaluation (``lifecycle.py``): the secretary closes an ended year (the report rows
are frozen), publishes the list for a notice period (公示, default 7 days), answers
the objections filed during it (``objections.py``: upheld corrections are ledger
adjustments and the frozen row is recomputed) and finalizes it once the notice is over
and nothing is open. Every other order of steps is a 409. Members and residents of the
community read the published list: names and figures only.

Rooms
=====

``report.py``      the rows of a community or an area's subtree, ranks from score buckets
``lifecycle.py``   close, publish, finalize; the transition table; frozen rows
``objections.py``  filing and answering objections; recomputing the frozen ranks
``certificates.py`` service certificates: content, hash, verification code, look-up
``listing.py``     which evaluations and objections a user sees listed (the pages)
"""

from __future__ import annotations

from .certificates import Certificate, issue, mask_name, normalise_code, verify
from .lifecycle import (
    PUBLIC_FIELDS,
    ROW_FIELDS,
    TRANSITIONS,
    close_year,
    finalize,
    get_evaluation,
    open_objections,
    publish,
    rows_of,
)
from .listing import evaluations_in, objections_visible, published_for
from .objections import answer, file_objection, get_objection, objections_of
from .report import (
    COMPARISON_FIELDS,
    FIELDS,
    annual_report,
    annual_report_page,
    check_year,
    communities_under,
    comparison,
    get_area,
)

__all__ = [
    "COMPARISON_FIELDS",
    "FIELDS",
    "Certificate",
    "PUBLIC_FIELDS",
    "ROW_FIELDS",
    "TRANSITIONS",
    "annual_report",
    "annual_report_page",
    "answer",
    "check_year",
    "close_year",
    "communities_under",
    "comparison",
    "file_objection",
    "finalize",
    "get_area",
    "get_evaluation",
    "evaluations_in",
    "get_objection",
    "issue",
    "mask_name",
    "normalise_code",
    "objections_of",
    "objections_visible",
    "open_objections",
    "publish",
    "published_for",
    "rows_of",
    "verify",
]
