"""CPU cost of one ``ledger verify`` and of each of its checks, on a small database.

The service state machine (tests/ledger/test_service_state_machine.py) runs ``verify()``
after every step, so this cost decides how many examples fit in CI (issue 8 item 4).

    python -m bench.profile_verify                       # a temporary SQLite file
    python -m bench.profile_verify postgresql+psycopg://postgres@127.0.0.1:5432/NAME

The target database is emptied (``drop_all``/``create_all``) and given the tests' world.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

os.environ.setdefault("SECRET_KEY", "bench-profile-verify")

from tests.conftest import TEST_CONFIG  # noqa: E402
from tests.factories import build_world  # noqa: E402
from volunteer_market import create_app  # noqa: E402
from volunteer_market.extensions import db  # noqa: E402
from volunteer_market.services.verify import verify  # noqa: E402
from volunteer_market.services.verify.registry import selected  # noqa: E402

RUNS = 50


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{tempfile.mkdtemp()}/verify.db"
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        db.drop_all()
        db.create_all()
        build_world()
        assert verify() is None
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(RUNS):
            assert verify() is None
        cpu_ms = (time.process_time() - cpu) / RUNS * 1000
        wall_ms = (time.perf_counter() - wall) / RUNS * 1000
        print(f"verify(): {cpu_ms:.1f} ms CPU, {wall_ms:.1f} ms wall per call")
        for name, check in selected(None):
            cpu = time.process_time()
            for _ in range(RUNS):
                check()
            print(f"  {name:16s} {(time.process_time() - cpu) / RUNS * 1000:6.2f} ms CPU")


if __name__ == "__main__":
    main()
