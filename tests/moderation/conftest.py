"""The moderation and call-back tests use the ratings scene and its API caller, and a
snapshot of what a refused request must leave alone."""

from __future__ import annotations

from typing import Any

import pytest

from volunteer_market.extensions import db

from ..guards import unchanged_guard
from ..ratings.conftest import api, client, scene  # noqa: F401


def moderation_state() -> dict[str, Any]:
    """Reports, call-backs, hidden comments, notifications and the audit log, read fresh."""
    db.session.rollback()
    with db.engine.connect() as conn:
        out = {
            "reports": conn.exec_driver_sql(
                "SELECT id, status, resolved_by_id, resolution_reason FROM comment_reports"
                " ORDER BY id"
            ).all(),
            "callbacks": conn.exec_driver_sql(
                "SELECT id, rating_id, outcome FROM rating_callbacks ORDER BY id"
            ).all(),
            "ratings": conn.exec_driver_sql(
                "SELECT id, comment, comment_hidden_at, comment_hidden_by_id,"
                " comment_hidden_reason FROM ratings ORDER BY id"
            ).all(),
            "notifications": conn.exec_driver_sql("SELECT count(*) FROM notifications").scalar(),
            "audit": conn.exec_driver_sql(
                "SELECT count(*) FROM audit_log WHERE action <> 'token.issue'"
            ).scalar(),
        }
        conn.rollback()
    return out


@pytest.fixture
def unchanged():
    """``with unchanged(): ...`` asserts that the block changed no moderation state."""
    return unchanged_guard(moderation_state)
