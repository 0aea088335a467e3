"""Every action the services write to the audit log has a display name on the audit page,
and the page shows labels (in Chinese and English), never the stored codes."""

from __future__ import annotations

import ast
import pathlib

import pytest

from volunteer_market.models import ProjectAction, RedemptionStatus
from volunteer_market.web import audit_labels

from ..conftest import login
from .test_audit import entries  # noqa: F401  (the fixture)

SOURCE = pathlib.Path(__file__).resolve().parents[2] / "volunteer_market"

#: f-string actions and the values their placeholder takes.
FAMILIES = {
    "project.": [a.value for a in ProjectAction],
    "redemption.": [s.value for s in RedemptionStatus if s is not RedemptionStatus.HELD],
}


def _constants(tree: ast.Module) -> dict[str, str]:
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                    out[target.id] = node.value.value
    return out


def _passed_through(tree: ast.Module, param: str) -> set[str]:
    """The string literals the module's calls pass to functions for parameter ``param``."""
    out: set[str] = set()
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef):
            continue
        names = [a.arg for a in func.args.args]
        if param not in names:
            continue
        at = names.index(param)
        for call in ast.walk(tree):
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id == func.name
                and len(call.args) > at
                and isinstance(call.args[at], ast.Constant)
            ):
                out.add(call.args[at].value)
    return out


def audited_actions() -> tuple[set[str], set[str], set[str]]:
    """(actions, object types, literal detail keys) of every ``audit.record(actor, action,
    type, ..., detail={...})`` call."""
    actions: set[str] = set()
    types: set[str] = set()
    keys: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = _constants(tree)
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "record"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "audit"
            ):
                continue
            action, kind = node.args[1], node.args[2]
            if isinstance(action, ast.Constant):
                actions.add(action.value)
            elif isinstance(action, ast.Name) and action.id in names:
                actions.add(names[action.id])
            elif isinstance(action, ast.Name):  # a parameter: the literals its callers pass
                passed = _passed_through(tree, action.id)
                assert passed, f"{path}:{node.lineno}: where does {action.id} come from?"
                actions.update(passed)
            elif isinstance(action, ast.JoinedStr):
                prefix = action.values[0]
                assert isinstance(prefix, ast.Constant), ast.dump(action)
                assert prefix.value in FAMILIES, f"{path}: unknown family {prefix.value}"
                actions.update(prefix.value + v for v in FAMILIES[prefix.value])
            else:
                raise AssertionError(f"{path}:{node.lineno}: action not a literal")
            assert isinstance(kind, ast.Constant), f"{path}:{node.lineno}"
            types.add(kind.value)
            for kw in node.keywords:
                if kw.arg == "detail" and isinstance(kw.value, ast.Dict):
                    keys.update(k.value for k in kw.value.keys if isinstance(k, ast.Constant))
    return actions, types, keys


def test_every_audited_action_and_type_has_a_label():
    actions, types, keys = audited_actions()
    assert len(actions) > 50 and len(keys) > 30  # the scan finds the calls
    assert actions - set(audit_labels.ACTION_LABELS) == set()
    assert types - set(audit_labels.OBJECT_TYPE_LABELS) == set()
    assert keys - set(audit_labels.DETAIL_KEY_LABELS) == set()


def test_detail_values_by_their_labels(app):
    with app.test_request_context():
        assert audit_labels.audit_detail_value("project", "to", "approved") == "已通过"
        assert audit_labels.audit_detail_value("user", "role", "grid_worker") == "网格员"
        assert audit_labels.audit_detail_value("area", "kind", "community") == "社区"
        assert audit_labels.audit_detail_value("delivery", "automatic", True) == "是"
        assert audit_labels.audit_detail_value("delivery", "participants", [3, 4]) == "3、4"
        assert audit_labels.audit_detail_value("delivery", "average_score", "4.5") == "4.5"
        changed = {"cost": [10, 20], "is_active": [True, False]}
        shown = audit_labels.audit_detail_value("reward", "changed", changed)
        assert shown == "所需积分：10 → 20；上架：是 → 否"
        assert audit_labels.audit_detail_value("appeal", "subject", "rating:12") == "评价 #12"
        assert audit_labels.audit_detail_value("project", "fields", ["title"]) == "标题"
        assert audit_labels.audit_detail_value("session", "status", "waitlisted") == "候补中"
        assert audit_labels.audit_origin_label("cli") == "命令行"
        assert audit_labels.audit_origin_label("10.0.0.7") == "10.0.0.7"


@pytest.mark.usefixtures("entries")
@pytest.mark.parametrize(
    "lang,expected", [("zh_CN", "<strong>派单</strong>"), ("en", "<strong>Dispatch</strong>")]
)
def test_page_shows_labels_in_the_language(client, lang, expected):
    login(client, "secretary_a")
    html = client.get(f"/audit?lang={lang}").get_data(as_text=True)
    assert expected in html and "need.dispatch" not in html
