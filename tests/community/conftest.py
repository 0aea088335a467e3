"""Running a community (audit log, points policy, rankings exposure, dashboard): the
API caller and the isolated page client of the ratings tests."""

from __future__ import annotations

from ..ratings.conftest import api, client, scene  # noqa: F401
