"""Annual evaluation (年度考核): the annual report, its exports and the year's close.

Design overview
===============

The report (``report.py``) reads rollups only: points and hours from the ranking
rollups (period ``YYYY``), deliveries, ratings, points spent and expired and the
projects of each member from the annual rollups that ``services.rankings.annual``
keeps in every posting's transaction. A year is the calendar year in the community's
time zone of the posting (a reversal: of the posting it reverses). The figures are
therefore exact at the moment of reading and cost a few range reads per community.

Rooms
=====

``report.py``   the rows of a community or an area's subtree, ranks from score buckets
"""

from __future__ import annotations

from .report import FIELDS, annual_report, check_year, communities_under, get_area

__all__ = ["FIELDS", "annual_report", "check_year", "communities_under", "get_area"]
