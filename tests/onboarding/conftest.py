"""Helpers of the onboarding tests (login by phone, password resets, bulk import,
self-registration): per-request client contexts and row counts of what a refused
request must leave alone."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from volunteer_market.extensions import db

from ..ledger.conftest import IsolatedClient

ONBOARDING_TABLES = ("users", "role_grants", "api_tokens", "import_jobs", "registrations")


@pytest.fixture
def client(app):
    """A test client with per-request contexts (as in production)."""
    app.test_client_class = IsolatedClient
    return app.test_client()


def counts() -> dict[str, int]:
    """Return row counts of the onboarding tables (fresh, outside the identity map)."""
    db.session.rollback()
    names = set(sa.inspect(db.engine).get_table_names())
    return {
        t: db.session.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()  # noqa: S608
        for t in ONBOARDING_TABLES
        if t in names
    }


def user_state() -> list[tuple]:
    """Return every user's id, password hash, flags and session version."""
    db.session.rollback()
    return [
        tuple(r)
        for r in db.session.execute(
            sa.text(
                "SELECT id, password_hash, must_change_password, session_version, phone,"
                " display_name, household_tags FROM users ORDER BY id"
            )
        )
    ]
