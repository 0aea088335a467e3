"""Fixtures and helpers of the outbox tests (imported by their modules)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import (
    CommunityWebhook,
    NotificationPreference,
    OutboxMessage,
)

from .receivers import MailServer, RobotServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def robot():
    server = RobotServer().start()
    yield server
    server.stop()


@pytest.fixture
def mail():
    server = MailServer().start()
    yield server
    server.stop()


@pytest.fixture
def channels_on(app, mail, robot):
    """E-mail to the local SMTP server; group robots on the local HTTP server."""
    app.config.update(outbox_config(mail, robot))
    return app.config


def outbox_config(mail: MailServer, robot: RobotServer) -> dict:
    return {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": mail.port,
        "SMTP_STARTTLS": False,
        "SMTP_USER": "",
        "SMTP_FROM": "notify@vm.example",
        "SMTP_TIMEOUT": 10.0,
        "WECOM_WEBHOOK_HOSTS": ("127.0.0.1",),
        "WECOM_WEBHOOK_ALLOW_HTTP": True,
        "WECOM_WEBHOOK_TIMEOUT": 10.0,
    }


def choose_email(user, address: str = "someone@example.org") -> None:
    """Give ``user`` an e-mail address with e-mail on (directly, as the service would)."""
    with atomic():
        db.session.merge(NotificationPreference(user_id=user.id, email=address, email_enabled=True))


def set_robot(community, url: str) -> None:
    with atomic():
        db.session.merge(CommunityWebhook(community_id=community.id, url=url))


def rows(**where) -> list[OutboxMessage]:
    db.session.rollback()
    db.session.expire_all()
    stmt = sa.select(OutboxMessage).order_by(OutboxMessage.id)
    for key, value in where.items():
        stmt = stmt.where(getattr(OutboxMessage, key) == value)
    return list(db.session.scalars(stmt))


def database_url() -> str:
    return db.engine.url.render_as_string(hide_password=False)


def child_config(app, mail: MailServer, robot: RobotServer, **extra) -> dict:
    return {
        "SQLALCHEMY_DATABASE_URI": database_url(),
        "SECRET_KEY": app.config["SECRET_KEY"],
        **{
            k: list(v) if isinstance(v, tuple) else v for k, v in outbox_config(mail, robot).items()
        },
        **extra,
    }


def start_worker(mode: str, config: dict) -> subprocess.Popen:
    """Start ``python -m tests.notifications.workers MODE CONFIG`` in its own process."""
    db.session.rollback()  # no open transaction holds a lock the child needs
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.notifications.workers", mode, json.dumps(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
