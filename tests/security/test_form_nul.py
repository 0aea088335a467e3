"""NUL characters in HTML form fields (issue 8, item 3).

The API's bodies go through ``StrictSchema``, which refuses text containing NUL
(``test_fuzz_api.py``); many page forms read ``request.form`` directly (login, profile,
project actions and reviews, orders, rating codes, redemptions, ...). PostgreSQL cannot
store or even compare a NUL character in text (psycopg raises ``DataError``), so such a
field reaching a query is a 500 there.

Every POST page route of ``app.url_map`` is posted, signed in as a caller allowed to use
it, with the VALID form of ``test_access_matrix.BODIES`` (plus the fields views read
that the matrix leaves out, :data:`EXTRA_FIELDS`, :data:`MORE_FORMS`) in which one field
at a time carries a NUL character. Wanted, for every field: **400** with the HTML error
page (chosen over a re-rendered form: no person types a NUL, so a plain refusal is
enough; the shared guard in ``volunteer_market/web/__init__.py`` refuses any form or
query value containing NUL before a view runs) and **nothing written**: every table
holds exactly the rows it held before the request. Then the unchanged form must succeed
(2xx/3xx): each 400 was the NUL's, not a missing permission or a wrong state.

Run on PostgreSQL too (``DATABASE_URL=postgresql+psycopg://...``): that is where a 500
would appear.
"""

from __future__ import annotations

import pytest

from volunteer_market.extensions import db

from ..conftest import login
from .test_access_matrix import (
    BODIES,
    MATRIX,
    USERNAMES,
    IsolatedClient,
    _fill,
    _objects,
    _token,
)

NUL = "\x00"

#: Fields a view reads that the matrix's valid form does not send (``next`` targets, the
#: stock figure the edit form posts back). Each is fuzzed as well.
EXTRA_FIELDS: dict[tuple[str, str], dict[str, str]] = {
    ("POST", "/login"): {"next": "/profile"},
    ("POST", "/deliveries/<int:delivery_id>/settle"): {"next": "queue"},
    ("POST", "/projects/<int:project_id>/review"): {"next": "queue"},
    ("POST", "/ratings/<int:rating_id>/reply"): {"next": "inbox"},
    ("POST", "/ratings/<int:rating_id>/hide"): {"next": "moderation"},
    ("POST", "/callbacks/<int:rating_id>"): {"note": "居民认可"},
    ("POST", "/notifications"): {"id": "1"},
    ("POST", "/rewards/<int:reward_id>/edit"): {"stock": "", "stock_loaded": ""},
}

#: Second forms of one route (fuzzed and controlled after the first).
MORE_FORMS: dict[tuple[str, str], list[dict[str, str]]] = {
    ("POST", "/profile"): [
        {"action": "text_size", "size": "large"},
        {
            "action": "password",
            "old_password": "password123",
            "new_password": "password456",
        },
    ],
}

#: Who posts a route instead of the matrix's first allowed caller: the owner of B's
#: projects and a resident of B for the routes nobody of the matrix's cast may use, and
#: a user of their own for the password change (it ends that user's other sessions).
POSTERS = {
    ("POST", "/profile"): "member_a3",
    ("POST", "/projects/<int:project_id>/edit"): "member_b",
    ("POST", "/projects/<int:project_id>/order"): "resident_b",
    ("POST", "/projects/<int:project_id>/team/<int:user_id>/<string:verb>"): "member_b",
    ("POST", "/needs/new"): "resident_b",
    # no matrix actor may decide (only an officer of B's street, outside the cast)
    ("POST", "/appeals/<int:appeal_id>/decide"): "officer_street",
}


def _page_post_routes(app) -> list[tuple[str, str]]:
    return sorted(
        ("POST", rule.rule)
        for rule in app.url_map.iter_rules()
        if "POST" in rule.methods and not rule.rule.startswith("/api/")
    )


def _poster(key: tuple[str, str]) -> tuple[str, str | None]:
    """``(matrix actor, username)`` of a caller allowed to post ``key`` (None: anonymous)."""
    if key in POSTERS:  # (their valid forms do not depend on the actor)
        return "poster", POSTERS[key]
    allowed = MATRIX[key]
    if "anon" in allowed:
        return "anon", None
    actor = sorted(allowed)[0]
    return actor, "member_b2" if actor == "non_owner" else USERNAMES[actor]


def _scene_extras(world) -> dict:
    """Objects for the routes posted by :data:`POSTERS` (owner's draft, a menu service)."""
    from volunteer_market.models import ProjectMode

    from ..factories import make_project

    b = world.community_b
    draft = make_project(world.member_b, b, title="草稿项目")
    menu = make_project(world.member_b, b, status="approved", mode=ProjectMode.MENU, title="菜单")
    return {"draft_project_id": draft.id, "menu_project_id": menu.id}


#: URL and form changes for the routes posted by :data:`POSTERS`.
POSTER_OVERRIDES = {
    ("POST", "/projects/<int:project_id>/edit"): lambda o: (
        {"project_id": o["draft_project_id"]},
        {},
    ),
    ("POST", "/projects/<int:project_id>/order"): lambda o: (
        {"project_id": o["menu_project_id"]},
        {},
    ),
    # a resident posts for themself
    ("POST", "/needs/new"): lambda o: ({}, {"on_behalf_of": None}),
}


def _forms(key: tuple[str, str], objects: dict, actor: str) -> tuple[str, list[dict[str, str]]]:
    """The URL and the valid forms to post to ``key``."""
    overrides, form = BODIES[key](objects, actor) if key in BODIES else ({}, {})
    form = {**form, **EXTRA_FIELDS.get(key, {})}
    if key in POSTER_OVERRIDES:
        more_overrides, changes = POSTER_OVERRIDES[key](objects)
        overrides = {**overrides, **more_overrides}
        form = {k: v for k, v in {**form, **changes}.items() if v is not None}
    forms = [form] + MORE_FORMS.get(key, [])
    return _fill(key[1], {**objects, **overrides}), forms


def _snapshot() -> dict[str, list[tuple]]:
    """Every row of every table (the databases here hold a few hundred rows)."""
    with db.engine.connect() as conn:
        return {
            t.name: sorted(map(tuple, conn.execute(t.select())), key=repr)
            for t in db.metadata.sorted_tables
        }


def _changed(before: dict[str, list[tuple]], after: dict[str, list[tuple]]) -> list[str]:
    return [name for name in before if before[name] != after[name]]


@pytest.fixture
def app_config(app_config, tmp_path):
    # an error is answered as in production (a 500 page), not raised into the test
    return {
        **app_config,
        "RATELIMIT_ENABLED": False,
        "UPLOAD_FOLDER": str(tmp_path / "up"),
        "PROPAGATE_EXCEPTIONS": False,
    }


def test_every_page_form_route_has_a_valid_form(app):
    """A new page form is fuzzed as soon as the matrix gives it a valid form: every POST
    page route but /logout (no fields) and /notifications (``id`` only) has one there."""
    routes = _page_post_routes(app)
    missing = [k for k in routes if k not in BODIES]
    assert missing == [("POST", "/logout"), ("POST", "/notifications")], missing


def test_nul_in_every_page_form_field_is_refused(app, world):
    app.test_client_class = IsolatedClient
    objects = _objects(world)
    objects.update(_scene_extras(world))
    db.session.commit()
    clients: dict[str | None, object] = {}

    def client_for(username: str | None):
        if username not in clients:
            client = app.test_client()
            if username is not None:
                login(client, username)
            clients[username] = client
        return clients[username]

    problems: list[str] = []
    fuzzed = routes = 0
    for key in _page_post_routes(app):
        if key == ("POST", "/logout"):
            continue  # no form fields
        actor, username = _poster(key)
        url, forms = _forms(key, objects, actor)
        client = client_for(username)
        routes += 1
        for form in forms:
            before = _snapshot()
            for field in sorted(form):
                fuzzed += 1
                bad = {**form, field: f"{form[field]}{NUL}x"}
                resp = client.post(url, data={**bad, "csrf_token": _token(client)})
                resp.close()
                after = _snapshot()
                changed = _changed(before, after)
                if resp.status_code != 400 or changed:
                    problems.append(
                        f"{url} {field!r} as {username}: {resp.status_code}"
                        + (f", wrote {changed}" if changed else "")
                    )
                    before = after
            # control: the same form without the NUL is accepted (so each refusal above
            # was the NUL's, not a missing permission or a wrong state)
            resp = client.post(url, data={**form, "csrf_token": _token(client)})
            resp.close()
            if not 200 <= resp.status_code < 400:
                problems.append(f"{url} control as {username}: {resp.status_code}")
    assert routes == len(_page_post_routes(app)) - 1 and fuzzed >= 80, (routes, fuzzed)
    assert not problems, f"{len(problems)} NUL fields not refused cleanly:\n" + "\n".join(problems)


def test_nul_in_a_field_name_or_a_query_string_is_refused(app, world):
    """The guard looks at every name and value of a page request, form and query string
    (filters, ``next``, a pickup code), not only the fields a view reads."""
    app.test_client_class = IsolatedClient
    client = app.test_client()
    login(client, "secretary_b")
    before = _snapshot()
    resp = client.post("/notifications", data={f"id{NUL}": "1", "csrf_token": _token(client)})
    assert resp.status_code == 400 and resp.mimetype == "text/html"
    for path in (
        "/needs?status=open%00",
        "/rewards/fulfil?code=12%0034",
        "/redemptions?reward_id=1&status=held%00",
        "/login?next=/%00",
    ):
        assert client.get(path).status_code == 400, path
    assert client.get("/needs?status=open").status_code == 200  # control
    assert _changed(before, _snapshot()) == []
