"""The outside acceptance run (``tests/acceptance/run.py``) against gunicorn serving a
freshly migrated demo database (the ``served`` fixture of ``test_gunicorn``: SQLite, or
a throw-away PostgreSQL database when DATABASE_URL is set), then ``flask ledger verify``
on the same database."""

from __future__ import annotations

import ast
import subprocess
import sys

from .test_gunicorn import ROOT, ledger_verify, served  # noqa: F401 - the fixture


def test_acceptance_runner_is_black_box():
    """The runner imports the standard library and openpyxl only: never the app nor
    the tests' helpers (a relative import would reach them)."""
    tree = ast.parse((ROOT / "tests" / "acceptance" / "run.py").read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, ast.dump(node)
            imported.add((node.module or "").split(".")[0])
    assert imported, "no imports found: the parse is wrong"
    assert imported - {"__future__"} <= set(sys.stdlib_module_names) | {"openpyxl"}, imported


def test_acceptance_run_over_http(served):  # noqa: F811
    run = subprocess.run(
        [sys.executable, "-m", "tests.acceptance.run", "--base-url", served],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    lines = run.stdout.splitlines()
    # On a fresh demo database every step runs: the closed-window settlement too.
    assert not [line for line in lines if line.startswith(("FAIL", "SKIP"))], report
    assert lines[-1].startswith("SUMMARY ") and " 0 failed, 0 skipped" in lines[-1], report
    assert sum(line.startswith("PASS ") for line in lines) >= 150, report
    print(lines[-1])

    verify = ledger_verify(served)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.startswith("OK: "), verify.stdout
    assert "VIOLATION" not in verify.stdout
