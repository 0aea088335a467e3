"""The fixtures of the notifications tests are those of ``tests/projects/conftest.py`` (one
``unchanged`` guard over the tables of projects, teams, needs and deliveries)."""

from __future__ import annotations

from ..projects.conftest import api, app_config, as_user, unchanged  # noqa: F401
