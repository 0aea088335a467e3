"""The integrity tests use the ratings scene and its API caller."""

from __future__ import annotations

from ..ratings.conftest import api, client, scene  # noqa: F401
