"""Arrows run one way: api/, web/ (and the CLI) -> http/ -> services/ -> models/.

``api/`` and ``web/`` never import each other (what both need lives in ``http/``);
``http/`` and ``schemas/`` import neither; schemas take their limits from the models, never
from services; the CLI imports no views; services import no edge and no Flask request
globals (the actor is an argument). Cycles and module sizes: ``tests/test_structure.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "volunteer_market"
EDGES = {"api", "web", "http"}
REQUEST_GLOBALS = {"request", "session", "g", "current_user"}


def imports_of(path: Path) -> list[tuple[str, list[str]]]:
    """Return ``(module, names)`` for every import in ``path``, as absolute module names
    (``volunteer_market.web.forms``), lazy imports inside functions included."""
    package = list(path.relative_to(PACKAGE.parent).parent.parts)  # also for __init__.py
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - (node.level - 1)] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            out.append((module, [alias.name for alias in node.names]))
    return out


def _targets(module: str, names: list[str]) -> set[str]:
    """The volunteer_market folders an import reaches (``from .. import web`` -> web)."""
    parts = module.split(".")
    if parts[0] != "volunteer_market":
        return set()
    if len(parts) > 1:
        return {parts[1]}
    return set(names)


def _modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("api", {"web"}),
        ("web", {"api"}),
        ("http", {"api", "web"}),
        ("schemas", EDGES | {"services", "cli"}),
        ("services", EDGES | {"cli", "demo"}),
        ("models", EDGES | {"services", "schemas", "cli", "demo"}),
        ("cli", {"api", "web"}),
    ],
)
def test_no_arrow_points_up_or_across(folder, forbidden):
    wrong = [
        f"{path.relative_to(PACKAGE)}: {module}"
        for path in _modules(folder)
        for module, names in imports_of(path)
        if _targets(module, names) & forbidden
    ]
    assert _modules(folder) and not wrong


def test_services_read_no_request_globals():
    wrong = [
        f"{path.relative_to(PACKAGE)}: {module} {names}"
        for path in _modules("services")
        for module, names in imports_of(path)
        if module.split(".")[0] in ("flask", "flask_login") and set(names) & REQUEST_GLOBALS
    ]
    assert not wrong


def test_the_scan_resolves_relative_imports():
    sample = PACKAGE / "web" / "admin.py"
    found = {m for m, _n in imports_of(sample)}
    assert "volunteer_market.web.forms" in found and "volunteer_market.services" in found
    assert _targets("volunteer_market.api.common", ["actor"]) == {"api"}
    assert _targets("volunteer_market", ["web"]) == {"web"}
