"""Real processes against one database (SQLite file or PostgreSQL): two ``deliver`` runs
at once never send a message twice, and a run killed (SIGKILL) between the send and the
mark loses nothing: the next run after the lease resends with the same key."""

from __future__ import annotations

import json
import signal
from datetime import timedelta

from volunteer_market.cli.notifications import run_delivery
from volunteer_market.database import atomic
from volunteer_market.models import utcnow
from volunteer_market.services import audit

from ..factories import make_project
from .outbox_helpers import child_config, choose_email, rows, set_robot, start_worker

MESSAGES = 40


def _many_messages(world, robot) -> list[str]:
    """``MESSAGES`` community messages and as many e-mails, all due; return their keys."""
    set_robot(world.community_a, robot.url)
    choose_email(world.member_a2, "member.a2@example.org")
    project = make_project(world.member_a, world.community_a, status="approved")
    with atomic():
        for i in range(MESSAGES):
            # distinct events (object ids) so each is its own group message
            audit.notify(
                world.member_a2.id,
                "project.cancel",
                object_type="project",
                object_id=project.id if i == 0 else project.id + 10_000 + i,
                params={"title": f"活动{i}"},
            )
    return [r.idempotency_key for r in rows()]


def test_two_deliver_processes_never_send_a_message_twice(
    app, world, channels_on, mail, robot, tmp_path
):
    # project.cancel of unknown project ids has no community: only the first is a group
    # message; add the approval's group message and e-mails
    keys = _many_messages(world, robot)
    assert len(keys) == MESSAGES + 1 + 1  # e-mails + the approval's and first cancel's robot rows
    # every send takes a while, the e-mails too (40 of the 42): the runs overlap for real
    # (with instant e-mails one run could send everything before the other's first claim)
    robot.delay = mail.delay = 0.01
    start = tmp_path / "go"
    config = child_config(app, mail, robot, start_file=str(start), NOTIFY_BATCH=5)
    workers = [start_worker("deliver", dict(config)) for _ in range(2)]
    start.touch()
    outputs = [w.communicate(timeout=300) for w in workers]
    for w, (_out, err) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, err
    runs = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert sum(r["sent"] for r in runs) == len(keys)
    assert all(r["sent"] > 0 for r in runs), runs  # both took part
    assert all(r["lost"] == 0 and r["failed"] == 0 for r in runs), runs
    got = robot.keys() + [m["X-Idempotency-Key"] for m in mail.messages]
    assert sorted(got) == sorted(keys)  # each exactly once
    assert {r.status for r in rows()} == {"sent"}
    assert {r.attempts for r in rows()} == {1}


def test_a_run_killed_between_send_and_mark_is_resent_with_the_same_key(
    app, world, channels_on, mail, robot
):
    set_robot(world.community_a, robot.url)
    make_project(world.member_a, world.community_a, status="approved")
    (row,) = rows()
    worker = start_worker("crash", child_config(app, mail, robot))
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == -signal.SIGKILL, (out, err)
    assert robot.keys() == [row.idempotency_key]  # it was sent ...
    (row,) = rows()
    assert (row.status, row.attempts) == ("sending", 1)  # ... and never marked
    # within the lease another run leaves it alone (the killed run might still be sending)
    assert run_delivery().claimed == 0
    # after the lease: sent again, with the same key, and marked
    later = utcnow() + timedelta(seconds=channels_on["NOTIFY_LEASE_SECONDS"] + 1)
    run = run_delivery(later)
    assert (run.claimed, run.sent) == (1, 1)
    assert robot.keys() == [row.idempotency_key, row.idempotency_key]
    (row,) = rows()
    assert (row.status, row.attempts) == ("sent", 2)


def test_a_killed_run_after_the_last_attempt_ends_failed(app, world, channels_on, mail, robot):
    channels_on["NOTIFY_MAX_ATTEMPTS"] = 1
    set_robot(world.community_a, robot.url)
    make_project(world.member_a, world.community_a, status="approved")
    worker = start_worker("crash", child_config(app, mail, robot, NOTIFY_MAX_ATTEMPTS=1))
    worker.communicate(timeout=120)
    assert worker.returncode == -signal.SIGKILL
    later = utcnow() + timedelta(seconds=channels_on["NOTIFY_LEASE_SECONDS"] + 1)
    assert run_delivery(later).claimed == 0
    (row,) = rows()
    assert (row.status, row.last_error) == ("failed", "interrupted")
    assert len(robot.keys()) == 1
