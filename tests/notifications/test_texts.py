"""Every notification kind the services send has a message in both languages: a page never
shows the raw kind (``redemption.held``)."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask_babel import force_locale

from volunteer_market.models import RedemptionStatus
from volunteer_market.web.notifications import NOTIFICATION_TEXTS, notification_text

SERVICES = Path(__file__).resolve().parents[2] / "volunteer_market" / "services"
NOTIFY = re.compile(r"audit\.notify\(\s*[^,]+,\s*\"([a-z_]+\.[a-z_]+)\"", re.S)


def sent_kinds() -> set[str]:
    kinds = set()
    for path in SERVICES.rglob("*.py"):
        kinds.update(NOTIFY.findall(path.read_text(encoding="utf-8")))
    # redemptions/transitions.py sends f"redemption.{new_status.value}"
    kinds.update(
        f"redemption.{s.value}" for s in RedemptionStatus if s is not RedemptionStatus.HELD
    )
    return kinds


def test_every_kind_sent_has_a_message():
    kinds = sent_kinds()
    assert {"points.adjusted", "redemption.held", "redemption.rejected"} <= kinds
    assert sorted(kinds - set(NOTIFICATION_TEXTS)) == []


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_messages_are_filled_in_never_the_raw_kind(app, locale):
    params = {
        "reward": "大米",
        "quantity": 1,
        "total": 30,
        "reason": None,
        "amount": 5,
        "year": 2026,
        "expires_at": "2026-12-31T00:00:00+00:00",
    }
    with app.test_request_context(), force_locale(locale):
        for kind in [
            "points.adjusted",
            "points.reversed",
            "points.expired",
            "redemption.held",
            "redemption.rejected",
            "redemption.cancelled",
            "redemption.expiring",
            "redemption.fulfilled",
            "redemption.expired",
            "no.such_kind",
        ]:
            text = notification_text(SimpleNamespace(kind=kind, params=params))
            assert kind not in text and "None" not in text and "%(" not in text, (kind, text)
            if locale == "en":
                assert not re.search(r"[\u4e00-\u9fff]", text.replace("大米", "")), text
