"""API fuzzing (issue 8, item 3): schemathesis against ``/api/v1/openapi.json``.

Every operation of the OpenAPI document is called with requests that schemathesis
derives from the document itself through Hypothesis -- valid ones (positive mode) and
invalid ones (negative mode: wrong types, out-of-range numbers, missing or extra fields,
unknown enum values ...), with any text including NUL characters and huge numbers --
once as an admin and once as a member (bearer tokens). Every response must pass:

* ``not_a_server_error``: never a 5xx (nor an exception escaping the app);
* ``status_code_conformance``: the status is documented for the operation (there is no
  catch-all ``default`` response: ``api.common.problem_statuses`` lists each operation's
  error statuses, views add others with ``@blp.alt_response``);
* ``content_type_conformance``: the documented media type (``application/json``;
  ``application/problem+json`` for errors; the image types of image endpoints);
* ``response_schema_conformance``: the body validates against the documented schema;
* ``response_headers_conformance``: documented headers (``WWW-Authenticate`` on 401,
  ``Retry-After`` on 429 and 503) are present and well-formed.

After the generated requests, an edge pass sets each integer/text field to values past
every id column (2^31, 2^63, 10^25), NUL and (in bodies) a lone surrogate; a raw-body
pass sends every JSON-body operation a body nested 50,000 deep, a 4,400-digit integer
and lone surrogates in a value and a key (issue 20): a documented 4xx problem+json each.

The app is isolated: its own database per role (a SQLite file, or ``<DATABASE_URL's
database>_fuzz_<worker>`` on PostgreSQL, created and dropped here) holding the factories'
world and a small scene (projects in several states and modes, a need, deliveries with a
rating, points, a reward and a redemption). Fuzzing writes -- that is intended. Path ids
and id fields of bodies are drawn partly from the scene's objects, so requests reach real
objects in every state, not only 404s. The rate limiter stays on: the throttled public
endpoints (token, rating codes) answer a documented 429 with ``Retry-After``.
``DELETE /api/v1/auth/token`` gets a throwaway token per call (it revokes the token it is
called with).

The run is deterministic: operations in document order, Hypothesis ``derandomize`` (no
example database, no shrinking) and a fresh database per role. All operations run even
after a failure; the test then lists the first failing request of every operation and mode
(with a curl line to reproduce it). schemathesis' own pytest integration is not used: its
lazy ``from_fixture`` schemas fail on pytest 9.2 (``Function._nodeid``), and per-operation
items would share one mutable database across xdist workers in varying order.

CI runs ``FAST_EXAMPLES`` examples per operation, mode and role (about 1,500 requests);
``VM_FULL_FUZZ=1`` runs ``FULL_EXAMPLES`` (a long run for a nightly job or a release).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from volunteer_market import create_app
from volunteer_market.extensions import db, limiter
from volunteer_market.models import User

from ..conftest import (
    ON_POSTGRES,
    TEST_CONFIG,
    create_schema,
    drop_postgres_database,
    postgres_url_for,
)
from ..factories import (
    bearer,
    build_world,
    give_points,
    make_delivery,
    make_need,
    make_project,
    make_reward,
    rate_delivery,
    redeem,
)

FULL = os.environ.get("VM_FULL_FUZZ") == "1"
FAST_EXAMPLES = 5
FULL_EXAMPLES = 100
MAX_EXAMPLES = FULL_EXAMPLES if FULL else FAST_EXAMPLES

CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
)
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)

ROLES = {"admin": "admin", "member": "member_a"}
REVOKE_TOKEN = "DELETE /api/v1/auth/token"

#: Hypothesis settings of one operation and mode: deterministic, no example database,
#: no shrinking (the first failing request is reported as is).
SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


@dataclass
class FuzzEnv:
    """The app under test, the role's token and the ids of the scene's objects."""

    app: Any
    role: str
    user_id: int
    token: str
    ids: dict[str, list[int]] = field(default_factory=dict)

    def token_for(self, case: schemathesis.Case) -> str:
        """The role's token, or a throwaway one for the operation that revokes it."""
        return self.token_for_label(case.operation.label)

    def token_for_label(self, label: str) -> str:
        """The role's token, or a throwaway one for the operation that revokes it."""
        if label != REVOKE_TOKEN:
            return self.token
        with self.app.app_context():
            headers = bearer(db.session.get(User, self.user_id))
            db.session.remove()
        return headers["Authorization"]


def _scene(world) -> dict[str, list[int]]:  # type: ignore[no-untyped-def]
    """Objects of community A in several states; return the ids per parameter name."""
    approved = make_project(
        world.member_a, world.community_a, status="approved", team=[world.member_a2]
    )
    draft = make_project(world.member_a2, world.community_a, title="读书会")
    menu = make_project(
        world.member_a, world.community_a, status="approved", mode="menu", title="上门维修"
    )
    need = make_need(world.resident_a, world.community_a)
    recorded = make_delivery(approved, world.member_a, beneficiaries=[world.resident_a])
    rated = rate_delivery(world.resident_a, recorded.delivery, 5, "很好")
    other = make_delivery(approved, world.member_a, beneficiaries=[world.resident_a2], hours_ago=10)
    earn = give_points(world.member_a, 200, world.community_a)
    reward = make_reward(world.community_a, stock=5)
    issued = redeem(world.member_a, reward)
    users = [u.id for u in world.users.values()]
    return {
        "project_id": [approved.id, draft.id, menu.id],
        "need_id": [need.id],
        "delivery_id": [recorded.delivery.id, other.delivery.id],
        "rating_id": [rated.rating.id],
        "tx_id": [earn.id],
        "reward_id": [reward.id],
        "redemption_id": [issued.redemption.id],
        "area_id": [a.id for a in world.areas.values()],
        "community_id": [world.community_a.id, world.community_b.id],
        "user_id": users,
        "member_id": users,
        "grant_id": list(range(1, len(users) + 1)),
        "on_behalf_of": [world.resident_a.id],
    }


def _own_database(database_template: str, tmp: Path) -> str:
    if ON_POSTGRES:
        url = postgres_url_for(f"fuzz_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}")
        create_schema(url)
        return url
    path = tmp / "fuzz.db"
    shutil.copyfile(database_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=sorted(ROLES))
def fuzz_env(request, database_template, tmp_path) -> Iterator[FuzzEnv]:
    """A fresh app and database for the role, holding the world and the scene."""
    url = _own_database(database_template, tmp_path)
    app = create_app(
        {**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url, "UPLOAD_FOLDER": str(tmp_path / "up")}
    )
    limiter.reset()
    with app.app_context():
        world = build_world()
        ids = _scene(world)
        user = world.users[ROLES[request.param]]
        token = bearer(user)["Authorization"]
        env = FuzzEnv(app=app, role=request.param, user_id=user.id, token=token, ids=ids)
        db.session.remove()
    yield env
    limiter.reset()
    with app.app_context():
        db.engine.dispose()
    if ON_POSTGRES:
        drop_postgres_database(url)


def _known(ids: dict[str, list[int]], name: str, value: Any) -> st.SearchStrategy:
    """Keep the generated value or, for an id parameter, use one of the scene's ids."""
    if ids.get(name):
        return st.one_of(st.just(value), st.sampled_from(ids[name]))
    return st.just(value)


def load_schema(env: FuzzEnv) -> Any:
    """The app's OpenAPI document through WSGI, with hooks that draw ids from the scene."""
    schema = schemathesis.openapi.from_wsgi(
        "/api/v1/openapi.json",
        env.app,
        config=schemathesis.Config.from_dict({"cache": {"enabled": False}, "warnings": False}),
    )

    @schema.hook("flatmap_path_parameters")
    def _path_ids(context, params):  # type: ignore[no-untyped-def]
        if not params:
            return st.just(params)
        return st.fixed_dictionaries({k: _known(env.ids, k, v) for k, v in params.items()})

    @schema.hook("flatmap_body")
    def _body_ids(context, body):  # type: ignore[no-untyped-def]
        if not isinstance(body, dict):
            return st.just(body)
        return st.fixed_dictionaries({k: _known(env.ids, k, v) for k, v in body.items()})

    return schema


def fuzz_operation(env: FuzzEnv, operation: Any, mode: GenerationMode) -> tuple[int, str | None]:
    """Run one operation in one mode; return the number of requests and the first failure."""
    calls = 0

    @SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        nonlocal calls
        calls += 1
        # buffered: werkzeug closes the app's iterable (a sent file) before returning.
        headers = {"Authorization": env.token_for(case)}
        response = case.call(headers=headers, app=env.app, buffered=True)
        case.validate_response(response, checks=list(CHECKS))

    try:
        run()
    except Exception as exc:  # noqa: BLE001  (a check failure or an exception from the app)
        return calls, _described(exc)
    except BaseExceptionGroup as exc:  # several failed checks at once
        return calls, _described(exc)
    return calls, None


def _described(exc: BaseException) -> str:
    """The failure as the report shows it, with what a group (several failed checks, or
    Hypothesis' FlakyFailure: the first run failed, its replay did not) holds inside, so
    an intermittent failure names its first cause instead of only "Inconsistent results"."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, BaseExceptionGroup):
        inner = "; ".join(f"{type(e).__name__}: {e}" for e in exc.exceptions)
        text += f" [first run: {inner[:2000]}]"
    return text


#: Edge values put into one field of an otherwise generated valid request (see
#: :func:`edge_operation`): past every id column and past SQLite's 64-bit INTEGER, and
#: text PostgreSQL cannot store.
EDGE_VALUES: dict[str, tuple[Any, ...]] = {
    "integer": (2**31, 2**63, -(2**63) - 1, 10**25),
    "string": ("edge\x00text",),
}
#: Edge values of body fields only (a query string cannot carry a lone surrogate: it is
#: not UTF-8); JSON writes it as the escape ``\ud800``.
BODY_EDGE_VALUES: dict[str, tuple[Any, ...]] = {"string": ("edge\ud800text",)}


def _edge_targets(case: schemathesis.Case) -> Iterator[tuple[dict[str, Any], str, Any]]:
    """Yield (container, key, edge value) for every query field and top-level body field
    of ``case`` whose documented (query) or generated (body) value is an integer or text
    (or a list of them: then a list holding the edge value)."""
    for param in case.operation.query:
        kind = param.definition.get("schema", {}).get("type")
        for value in EDGE_VALUES.get(kind, ()):
            yield case.query if case.query is not None else {}, param.name, value
    if isinstance(case.body, dict):
        for key, current in list(case.body.items()):
            items = current if isinstance(current, list) and current else [current]
            if all(isinstance(v, str) for v in items):
                kind = "string"
            elif all(isinstance(v, int) and not isinstance(v, bool) for v in items):
                kind = "integer"
            else:
                continue
            json_body = case.media_type == "application/json"  # multipart is bytes
            extra = BODY_EDGE_VALUES.get(kind, ()) if json_body else ()
            for value in EDGE_VALUES[kind] + extra:
                yield case.body, key, [value] if isinstance(current, list) else value


def edge_operation(env: FuzzEnv, operation: Any) -> tuple[int, str | None]:
    """Draw one valid request and send it again with each integer or text field (query,
    top-level body) set to each edge value in turn; path ids get ``2**31``. Every response
    must pass the checks. Generated examples reach these values only by luck."""
    calls = 0

    def send(case: schemathesis.Case) -> None:
        nonlocal calls
        calls += 1
        headers = {"Authorization": env.token_for(case)}
        response = case.call(headers=headers, app=env.app, buffered=True)
        case.validate_response(response, checks=list(CHECKS))

    @settings(SETTINGS, max_examples=1)
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def run(case: schemathesis.Case) -> None:
        if case.query is None and len(case.operation.query):
            case.query = {}
        for container, key, value in list(_edge_targets(case)):
            before = container.get(key, _MISSING)
            container[key] = value
            try:
                send(case)
            finally:
                if before is _MISSING:
                    container.pop(key, None)
                else:
                    container[key] = before
        for name in list(case.path_parameters or {}):
            before = case.path_parameters[name]
            case.path_parameters[name] = 2**31
            try:
                send(case)
            finally:
                case.path_parameters[name] = before

    try:
        run()
    except Exception as exc:  # noqa: BLE001  (a check failure or an exception from the app)
        return calls, _described(exc)
    except BaseExceptionGroup as exc:
        return calls, _described(exc)
    return calls, None


_MISSING = object()

#: Whole bodies no generator writes (issue 20): nesting past any recursion limit, an
#: integer of 4,400 digits (past Python's int-from-text limit), lone surrogates in a
#: value and in a key.
RAW_BODIES: dict[str, str] = {
    "nested": '{"x": ' + "[" * 50_000 + "]" * 50_000 + "}",
    "huge_integer": '{"x": ' + "7" * 4400 + "}",
    "lone_surrogate": '{"x": "a\\ud800b"}',
    "surrogate_key": '{"\\udc00": 1}',
}


def raw_body_operation(env: FuzzEnv, operation: Any) -> tuple[int, str | None]:
    """Send each of :data:`RAW_BODIES` to an operation that takes a JSON body (its path
    ids from the scene): each must answer a documented 4xx problem+json, never a 5xx."""
    content = (operation.definition.raw.get("requestBody") or {}).get("content", {})
    if "application/json" not in content:
        return 0, None
    documented = {str(code) for code in operation.definition.raw.get("responses", {})}
    path = operation.path
    for name in re.findall(r"{(\w+)}", path):
        path = path.replace("{" + name + "}", str((env.ids.get(name) or [1])[0]))
    client = env.app.test_client()
    calls = 0
    for label, body in RAW_BODIES.items():
        calls += 1
        headers = {"Authorization": env.token_for_label(operation.label)}
        resp = client.open(
            path,
            method=operation.method.upper(),
            data=body.encode(),
            content_type="application/json",
            headers=headers,
        )
        if (
            resp.status_code >= 500
            or resp.status_code < 400
            or str(resp.status_code) not in documented
            or resp.mimetype != "application/problem+json"
        ):
            return calls, (
                f"{label} body: {resp.status_code} {resp.mimetype} "
                f"{resp.get_data(as_text=True)[:200]}"
            )
    return calls, None


def test_api_conforms_to_its_openapi_document(fuzz_env: FuzzEnv) -> None:
    schema = load_schema(fuzz_env)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 70, "the OpenAPI document lost operations"
    failures: list[str] = []
    requests = 0
    for operation in operations:
        for mode in MODES:
            calls, failure = fuzz_operation(fuzz_env, operation, mode)
            requests += calls
            if failure is not None:
                failures.append(f"--- {operation.label} ({mode.value}) ---\n{failure}")
    edges = 0
    for operation in operations:
        calls, failure = edge_operation(fuzz_env, operation)
        edges += calls
        if failure is not None:
            failures.append(f"--- {operation.label} (edge values) ---\n{failure}")
    raw = 0
    for operation in operations:
        calls, failure = raw_body_operation(fuzz_env, operation)
        raw += calls
        if failure is not None:
            failures.append(f"--- {operation.label} (raw bodies) ---\n{failure}")
    print(
        f"{fuzz_env.role}: {len(operations)} operations, {requests} fuzz + {edges} edge "
        f"+ {raw} raw-body requests"
    )
    assert requests >= len(operations) * len(MODES), "too few requests were made"
    assert edges >= 100, "too few edge-value requests were made"
    assert raw >= 100, "too few raw-body requests were made"  # 28 JSON-body operations
    assert not failures, (
        f"{len(failures)} operation/mode pairs failed as {fuzz_env.role} "
        f"({requests} requests):\n\n" + "\n\n".join(failures)
    )
