"""Member states (``rankings.members.member_states``) are read once per user and
transaction, and a role grant or ``is_active`` written in the transaction, or by another
transaction before it began, is seen (issue 21: every earn of a settlement read its
member's state, one statement each)."""

from __future__ import annotations

import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import Role, RoleGrant, User, utcnow
from volunteer_market.services.rankings.members import member_states

from ..statements import Statements


def _member_grants(user_id: int) -> int:
    return len(member_states([user_id])[user_id].grants)


def test_read_once_per_transaction(world):
    ids = [world.member_a.id, world.member_b.id]
    db.session.commit()
    with Statements() as sql:
        first = member_states(ids)
        again = member_states(ids)
        one = member_states([world.member_a.id])
    assert first == again and one == {world.member_a.id: first[world.member_a.id]}
    assert sql.count("SELECT users.id, users.is_active") == 1, "\n".join(sql.lines)
    assert member_states([999_999]) == {}  # an unknown user: no state


def test_a_grant_added_or_revoked_in_the_transaction_is_seen(world):
    user_id = world.member_a.id
    before = _member_grants(user_id)
    grant = RoleGrant(user_id=user_id, role=Role.MEMBER, area_id=world.areas["grid_a1"].id)
    db.session.add(grant)
    assert _member_grants(user_id) == before + 1  # pending: flushed, read again
    grant.revoked_at = utcnow()
    (revoked,) = [g for g in member_states([user_id])[user_id].grants if g.area_id == grant.area_id]
    assert revoked.revoked_at is not None
    db.session.rollback()
    assert _member_grants(user_id) == before


def test_a_suspension_in_the_transaction_is_seen_a_rename_keeps_the_answer(world):
    user_id = world.member_a.id
    assert member_states([user_id])[user_id].active
    user = db.session.get(User, user_id)
    user.display_name = user.display_name + "·"
    with Statements() as sql:
        assert member_states([user_id])[user_id].active
    assert sql.count("SELECT users.id, users.is_active") == 0  # not a state change
    user.is_active = False
    assert not member_states([user_id])[user_id].active
    db.session.rollback()


def test_another_transaction_s_change_is_seen_in_the_next_transaction(world):
    user_id = world.member_a.id
    db.session.commit()
    assert member_states([user_id])[user_id].active
    with db.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE users SET is_active = :f WHERE id = :u"), {"f": False, "u": user_id}
        )
    db.session.commit()
    assert not member_states([user_id])[user_id].active
