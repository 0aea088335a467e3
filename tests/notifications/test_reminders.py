"""``flask notifications remind``: reminders that time made due, once each, through the
outbox like every other notification; ``remind_due`` is the hook for more kinds."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import Notification, OutboxMessage, Redemption
from volunteer_market.services.notifications import reminders

from ..factories import give_points, make_reward, redeem
from .outbox_helpers import choose_email


def _expiring(world):
    give_points(world.member_a, 50, world.community_a)
    reward = make_reward(world.community_a)
    issued = redeem(world.member_a, reward)
    return db.session.get(Redemption, issued.redemption.id)


def _reminders() -> list[Notification]:
    db.session.rollback()
    return list(
        db.session.scalars(
            sa.select(Notification).where(Notification.kind == "redemption.expiring")
        )
    )


def test_remind_once_per_redemption(world, runner, channels_on):
    choose_email(world.member_a)
    redemption = _expiring(world)
    soon = (redemption.expires_at - timedelta(days=1)).isoformat()
    early = (redemption.expires_at - timedelta(days=5)).isoformat()
    out = runner.invoke(args=["notifications", "remind", "--now", early])
    assert out.exit_code == 0 and "redemptions 0" in out.output
    assert _reminders() == []
    out = runner.invoke(args=["notifications", "remind", "--now", soon])
    assert out.exit_code == 0 and "Reminded: redemptions 1," in out.output, out.output
    (note,) = _reminders()
    assert note.user_id == world.member_a.id and note.object_id == redemption.id
    # its e-mail is in the outbox, written with it
    assert db.session.scalars(
        sa.select(OutboxMessage.kind).where(OutboxMessage.notification_id == note.id)
    ).all() == ["redemption.expiring"]
    # re-run: nobody is reminded twice
    out = runner.invoke(args=["notifications", "remind", "--now", soon])
    assert "redemptions 0" in out.output
    assert len(_reminders()) == 1


def test_remind_rejects_a_bad_time(world, runner):
    out = runner.invoke(args=["notifications", "remind", "--now", "tomorrow"])
    assert out.exit_code == 2 and "ISO 8601" in out.output
    out = runner.invoke(args=["notifications", "remind", "--now", "2026-12-01T08:00"])
    assert out.exit_code == 2
    out = runner.invoke(args=["notifications", "deliver", "--now", "nope"])
    assert out.exit_code == 2


def test_remind_due_is_the_hook_of_every_reminder(world, monkeypatch):
    seen = []
    monkeypatch.setitem(reminders.REMINDERS, "sessions", lambda now: seen.append(now) or 3)
    from volunteer_market.models import utcnow

    now = utcnow()
    assert reminders.remind_due(now) == {"redemptions": 0, "sessions": 3}
    assert seen == [now]
