"""The appeals tests use the ratings scene (member_a's project, member_a2 on the team,
one 2 h delivery for resident_a and resident_a2) and its API caller."""

from __future__ import annotations

from ..ratings.conftest import api, client, scene, unchanged  # noqa: F401
