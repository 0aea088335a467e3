"""The transactional outbox: rows written with the change, delivered by
``flask notifications deliver`` over SMTP and a group-robot webhook, retried with
backoff, given up after the last attempt (docs/notifications.md)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import sqlalchemy as sa

from volunteer_market.cli.notifications import run_delivery
from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import (
    Notification,
    OutboxMessage,
    Project,
    ProjectAction,
    utcnow,
)
from volunteer_market.services import audit
from volunteer_market.services import projects as project_service

from ..factories import make_project
from .outbox_helpers import choose_email, rows, set_robot
from .receivers import free_port


def _approve(world, project) -> None:
    with atomic():
        project_service.transition(
            world.secretary_a, db.session.get(Project, project.id), ProjectAction.APPROVE
        )


def test_a_notification_writes_its_outbox_rows_in_the_same_transaction(world, channels_on, robot):
    choose_email(world.member_a, "member.a@example.org")
    set_robot(world.community_a, robot.url)
    project = make_project(world.member_a, world.community_a, status="submitted")
    emails_before = rows(channel="email")
    assert [r.kind for r in emails_before] == ["project.submit"]  # the owner's own e-mail
    assert rows(channel="wecom") == []  # a submission is not a community event
    _approve(world, project)
    email = rows(channel="email")[-1]
    assert email.kind == "project.approve" and email.status == "pending"
    assert email.notification.user_id == world.member_a.id and email.attempts == 0
    (hook,) = rows(channel="wecom")
    assert hook.community_id == world.community_a.id and hook.notification_id is None
    assert hook.params == {"title": "义务理发"}
    assert hook.event_key == f"project.approve:project:{project.id}"
    assert len({r.idempotency_key for r in rows()}) == len(rows())


def test_a_change_that_rolls_back_sends_nothing(world, channels_on, mail, robot):
    choose_email(world.member_a)
    set_robot(world.community_a, robot.url)
    project = make_project(world.member_a, world.community_a, status="submitted")
    approvals = sa.select(sa.func.count(OutboxMessage.id)).where(
        OutboxMessage.kind == "project.approve"
    )
    with pytest.raises(RuntimeError), atomic():
        project_service.transition(
            world.secretary_a, db.session.get(Project, project.id), ProjectAction.APPROVE
        )
        db.session.flush()
        assert db.session.scalar(approvals) == 2  # e-mail + group robot, in this transaction
        raise RuntimeError("the change fails after its notification was written")
    db.session.expire_all()
    assert db.session.scalar(approvals) == 0
    assert (
        db.session.scalar(
            sa.select(sa.func.count(Notification.id)).where(Notification.kind == "project.approve")
        )
        == 0
    )
    assert run_delivery().sent == 1  # only the submission's e-mail goes out
    assert robot.received == [] and len(mail.messages) == 1


def test_no_email_row_without_the_choice_and_no_webhook_row_without_a_url(world, channels_on):
    make_project(world.member_a, world.community_a, status="approved")
    assert rows() == []


def test_a_community_event_is_one_webhook_message_however_many_it_notifies(
    world, channels_on, robot
):
    set_robot(world.community_a, robot.url)
    project = make_project(world.member_a, world.community_a, status="approved")
    with atomic():  # the same event notified to several people: one group message
        for user in (world.member_a2, world.member_a3):
            audit.notify(
                user.id,
                "project.approve",
                object_type="project",
                object_id=project.id,
                params={"title": project.title, "comment": "不进群"},
            )
    (hook,) = rows(channel="wecom")
    assert hook.params == {"title": "义务理发"}  # never the comment


def test_deliver_sends_email_with_its_key_once(world, channels_on, mail, runner):
    choose_email(world.member_a, "member.a@example.org")
    make_project(world.member_a, world.community_a, status="approved")
    pending = rows(channel="email")
    assert len(pending) == 2
    result = runner.invoke(args=["notifications", "deliver"])
    assert result.exit_code == 0, result.output
    assert "Claimed 2: sent 2, retrying 0, failed 0" in result.output
    assert sorted(mail.message_ids()) == sorted(
        f"<{r.idempotency_key}@vm.example>" for r in pending
    )
    by_key = {m["X-Idempotency-Key"]: m for m in mail.messages}
    approve = by_key[pending[1].idempotency_key]
    assert approve["To"] == "member.a@example.org" and approve["From"] == "notify@vm.example"
    body = approve.get_payload(decode=True).decode("utf-8")
    assert "项目「义务理发」审核通过。" in body
    assert [r.status for r in rows()] == ["sent", "sent"]
    assert all(r.sent_at is not None and r.attempts == 1 for r in rows())
    # a second run sends nothing again
    assert "Claimed 0" in runner.invoke(args=["notifications", "deliver"]).output
    assert len(mail.messages) == 2


def test_email_in_the_recipients_language(world, channels_on, mail):
    with atomic():
        db.session.merge(world.member_a).locale = "en"
    choose_email(world.member_a)
    make_project(world.member_a, world.community_a, status="submitted")
    run_delivery()
    (message,) = mail.messages
    assert "submitted" in message.get_payload(decode=True).decode("utf-8").lower()


def test_deliver_posts_the_webhook_text_with_its_key(world, channels_on, robot):
    set_robot(world.community_a, robot.url)
    make_project(world.member_a, world.community_a, status="approved")
    (hook,) = rows(channel="wecom")
    run = run_delivery()
    assert (run.claimed, run.sent) == (1, 1)
    (got,) = robot.received
    assert got["body"] == {
        "msgtype": "text",
        "text": {"content": "新项目「义务理发」已发布，欢迎报名参加。"},
        "idempotency_key": hook.idempotency_key,
    }
    assert got["header_key"] == hook.idempotency_key
    assert got["content_type"].startswith("application/json")
    assert rows(channel="wecom")[0].status == "sent"


def _one_webhook_row(world, robot) -> OutboxMessage:
    set_robot(world.community_a, robot.url)
    make_project(world.member_a, world.community_a, status="approved")
    (hook,) = rows(channel="wecom")
    return hook


@pytest.mark.parametrize(
    ("status", "errcode", "code"), [(500, 0, "http 500"), (200, 93000, "wecom errcode 93000")]
)
def test_failures_back_off_exponentially_then_fail(
    world, channels_on, robot, status, errcode, code
):
    channels_on.update(NOTIFY_MAX_ATTEMPTS=3, NOTIFY_BACKOFF_SECONDS=60)
    robot.status, robot.errcode = status, errcode
    hook = _one_webhook_row(world, robot)
    t0 = utcnow()
    run = run_delivery(t0)
    assert (run.claimed, run.retrying) == (1, 1)
    (row,) = rows(channel="wecom")
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, code)
    assert row.next_attempt_at == t0 + timedelta(seconds=60)
    assert run_delivery(t0 + timedelta(seconds=59)).claimed == 0  # not due yet
    t1 = t0 + timedelta(seconds=60)
    assert run_delivery(t1).retrying == 1
    (row,) = rows(channel="wecom")
    assert (row.status, row.attempts) == ("pending", 2)
    assert row.next_attempt_at == t1 + timedelta(seconds=120)  # doubled
    run = run_delivery(t1 + timedelta(seconds=120))
    assert (run.failed, run.retrying) == (1, 0)
    (row,) = rows(channel="wecom")
    assert (row.status, row.attempts, row.last_error) == ("failed", 3, code)
    assert run_delivery(t1 + timedelta(days=30)).claimed == 0  # failed for good
    keys = robot.keys()
    assert keys == [hook.idempotency_key] * 3  # every attempt carried the same key


def test_a_failure_then_success_is_sent(world, channels_on, robot):
    robot.status = 503
    _one_webhook_row(world, robot)
    t0 = utcnow()
    run_delivery(t0)
    robot.status = 200
    assert run_delivery(t0 + timedelta(minutes=5)).sent == 1
    (row,) = rows(channel="wecom")
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)


def test_unreachable_smtp_server_retries(world, channels_on):
    channels_on["SMTP_PORT"] = free_port()  # nobody listens there
    choose_email(world.member_a)
    make_project(world.member_a, world.community_a, status="submitted")
    run = run_delivery()
    assert run.retrying == 1
    (row,) = rows()
    assert row.status == "pending" and row.last_error == "ConnectionRefusedError"


def test_a_channel_turned_off_before_delivery_fails_without_sending(
    world, channels_on, mail, robot
):
    choose_email(world.member_a)
    hook = _one_webhook_row(world, robot)
    with atomic():
        db.session.merge(world.member_a)
        from volunteer_market.models import CommunityWebhook, NotificationPreference

        db.session.get(NotificationPreference, world.member_a.id).email_enabled = False
        db.session.delete(db.session.get(CommunityWebhook, world.community_a.id))
    run = run_delivery()
    assert run.failed == len(rows()) and run.sent == 0
    assert {r.last_error for r in rows()} == {"channel_off"}
    assert mail.messages == [] and robot.received == [] and hook.id


def test_the_cli_reports_failed_messages(world, channels_on, robot, runner):
    channels_on.update(NOTIFY_MAX_ATTEMPTS=1)
    robot.status = 500
    _one_webhook_row(world, robot)
    out = runner.invoke(args=["notifications", "deliver"]).output
    assert "failed 1" in out and "Errors: http 500 x1." in out
    assert "Outbox: pending 0, sending 0, sent 0, failed 1." in out
    assert "1 messages failed for good" in out


def test_nothing_personal_in_bodies_or_logs(world, channels_on, mail, robot, caplog):
    """Phones, addresses and household tags never reach an e-mail, a webhook or a log;
    neither do the e-mail address or the webhook URL reach a log."""
    with atomic():
        member = db.session.merge(world.member_a)
        member.phone, member.address, member.household_tags = "13812345678", "汉阳大道1号", "独居"
    choose_email(world.member_a, "private.person@example.org")
    set_robot(world.community_a, robot.url)
    robot.status = 500
    make_project(world.member_a, world.community_a, status="approved", team=[world.member_a2])
    caplog.set_level(logging.DEBUG)
    t0 = utcnow()
    run_delivery(t0)
    robot.status = 200
    run_delivery(t0 + timedelta(hours=1))
    assert mail.messages and robot.received
    bodies = [m.as_string() for m in mail.messages] + [str(r["body"]) for r in robot.received]
    ours = [r for r in caplog.records if not r.name.startswith("mail.")]  # not the receiver's
    logged = " ".join(f"{r.getMessage()} {r.args}" for r in ours)
    for secret in ("13812345678", "汉阳大道1号", "独居"):
        assert all(secret not in b for b in bodies), secret
        assert secret not in logged
    assert "private.person@example.org" not in logged
    assert "SECRET-robot-key" not in logged and "127.0.0.1" not in logged
    assert all(r.last_error is None or "SECRET" not in r.last_error for r in rows())


def test_one_message_that_cannot_be_rendered_does_not_stop_the_others(
    world, channels_on, mail, robot, monkeypatch
):
    from volunteer_market.services.notifications import delivery

    choose_email(world.member_a)
    make_project(world.member_a, world.community_a, status="submitted")
    make_project(world.member_a, world.community_a, status="submitted", title="义务修车")
    first, second = rows()
    real = delivery.render_text

    def broken(kind, params, **kw):
        if params.get("title") == "义务理发":
            raise KeyError("a bug")
        return real(kind, params, **kw)

    monkeypatch.setattr(delivery, "render_text", broken)
    run = run_delivery()
    assert (run.claimed, run.sent, run.retrying) == (2, 1, 1)
    assert run.errors == {"KeyError": 1}
    first, second = rows()
    assert (first.status, first.last_error) == ("pending", "KeyError")
    assert second.status == "sent" and len(mail.messages) == 1
