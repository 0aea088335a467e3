"""``bench.profile_request`` runs and reports what it measured (a smoke test: the figures
themselves are the benchmark's, never asserted here)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_it_measures_me_against_bare_json(tmp_path):
    env = {
        **os.environ,
        "BENCH_RATELIMIT_STORAGE_URI": "memory://",
        "BENCH_TOKEN_FILE": str(tmp_path / "token"),
    }
    env.pop("DATABASE_URL", None)
    out = subprocess.run(
        [sys.executable, "-m", "bench.profile_request", f"sqlite:///{tmp_path}/p.db", "5", "--sql"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert re.search(r"^bare JSON: \d+\.\d+ ms CPU per call$", out, re.M), out
    found = re.search(r"^/api/v1/me: .* per call: (\d+\.\d) statements", out, re.M)
    assert found and float(found.group(1)) >= 2, out  # the token's user and the balances
    sql = [line.strip() for line in out.splitlines() if line.startswith("    ")]
    assert sql[1].startswith("SELECT users.id") and sql[2].startswith("SELECT ledger_accounts"), out
    assert len((tmp_path / "token").read_text()) > 20
