"""Delivery processes for the outbox tests: ``python -m tests.notifications.workers MODE
CONFIG_JSON``. Each builds its own app against the test's database (as cron would
start ``flask notifications deliver``) and runs the delivery.

``deliver`` waits until the file ``CONFIG["start_file"]`` exists (so several start
together), runs one delivery and prints its counts as JSON. ``crash`` sends the first
due message and then kills itself with SIGKILL *between the send and the mark* (the
mark function is replaced by a real ``kill -9`` of the process).
Kept free of pytest imports.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path

from tests.rewards.race import CHILD_CONFIG


def main(mode: str, config: dict) -> None:
    from volunteer_market import create_app
    from volunteer_market.cli.notifications import run_delivery
    from volunteer_market.services import notifications

    start_file = config.pop("start_file", None)
    app = create_app({**CHILD_CONFIG, **config})
    with app.app_context():
        if mode == "crash":

            def die(*args: object, **kwargs: object) -> bool:
                os.kill(os.getpid(), signal.SIGKILL)
                raise AssertionError("not reached")

            notifications.mark_sent = die  # type: ignore[assignment]
            app.config["NOTIFY_BATCH"] = 1
        if start_file:
            deadline = time.monotonic() + 60
            while not Path(start_file).exists():
                assert time.monotonic() < deadline, "never started"
                time.sleep(0.005)
        run = run_delivery()
    print(json.dumps(asdict(run)))


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]))
