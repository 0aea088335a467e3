"""The fixtures of the notifications tests are those of ``tests/projects/conftest.py`` (one
``unchanged`` guard over the tables of projects, teams, needs and deliveries)."""

from __future__ import annotations

from ..projects.conftest import api, app_config, as_user, unchanged  # noqa: F401
from .outbox_helpers import channels_on, mail, robot  # noqa: F401, E402  (the outbox tests)
