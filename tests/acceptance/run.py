"""The outside acceptance run over HTTP against a server loaded with the demo data.

Usage::

    python -m tests.acceptance.run --base-url http://127.0.0.1:8000 [--password demo12345]

A black-box client of the contract in docs/API.md: only the standard library (and
openpyxl to read the XLSX downloads back); it imports nothing of the application nor
of its tests. It signs in once per demo account, discovers ids through the API,
creates its own objects (titles carry a random suffix, session times are drawn at
random and retried on an overlap, so it can run twice against the same server) and
prints one line per step: ``PASS name`` or ``FAIL name: status body…``, ``SKIP name:
why`` for a step whose precondition the server no longer offers (only the demo's one
closed-window delivery can be settled by the secretary, once). Exit 0 only if every
step passed.

Sections: (a) the right to rate and settlement, (b) no self-dealing, (c) appeals,
(d) integrity signals, (e) comment moderation, (f) the annual evaluation.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import re
import sys
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

BEIJING = timezone(timedelta(hours=8))
USERS = (
    "admin",
    "officer_hy",
    "officer_ly",
    "secretary_lh",
    "secretary_zj",
    "grid_lh1",
    "member_chen",
    "member_liu",
    "member_zhao",
    "member_sun",
    "resident_wang",
    "resident_li",
    "resident_zhou",
    "resident_he",
)
SIGNAL_KINDS = {
    "repeat_rater",
    "reciprocal_rating",
    "all_five_streak",
    "odd_hours",
    "overlap",
    "chronic_no_show",
    "rated_from_recorder",
    "disputed_callback",
}
ANNUAL_FIELDS = {
    "user_id",
    "username",
    "display_name",
    "home_unit",
    "community_id",
    "hours",
    "deliveries",
    "projects_led",
    "projects_joined",
    "average_score",
    "points_earned",
    "points_spent",
    "points_expired",
    "rank_community",
    "rank_street",
}
COMPARISON_FIELDS = {
    "community_id",
    "name",
    "members",
    "active_members",
    "participation_rate",
    "points",
    "hours",
    "points_per_active_member",
    "hours_per_active_member",
}
#: A key of a delivery that would carry a beneficiary's rating secret (``photo_url`` is
#: the session photo, not a secret).
SECRET_KEY = re.compile(r"code|token|link|secret|qr|rat\w*_url|slip", re.IGNORECASE)


class StepFailed(Exception):
    """A step's check failed (the message says how)."""


@dataclass
class Resp:
    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.raw) if self.raw else None
        except ValueError:
            return None

    def excerpt(self) -> str:
        return f"{self.status} {self.raw[:300].decode('utf-8', 'replace')!r}"

    def header(self, name: str) -> str:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return ""


@dataclass
class Client:
    base: str
    password: str
    tokens: dict[str, str] = field(default_factory=dict)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        user: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Resp:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)  # noqa: S310
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if user is not None:
            req.add_header("Authorization", f"Bearer {self.token(user)}")
        req.add_header("Accept-Language", "zh-CN")
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
                return Resp(resp.status, dict(resp.headers), resp.read())
        except urllib.error.HTTPError as exc:
            return Resp(exc.code, dict(exc.headers), exc.read())

    def token(self, user: str) -> str:
        """Sign in once per account and reuse the token (failed logins are limited)."""
        if user not in self.tokens:
            resp = self.call(
                "POST", "/api/v1/auth/token", {"username": user, "password": self.password}
            )
            if resp.status != 201:
                raise StepFailed(f"login {user}: {resp.excerpt()}")
            self.tokens[user] = resp.json["token"]
        return self.tokens[user]


class Run:
    """The steps and their results."""

    def __init__(self, client: Client) -> None:
        self.c = client
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.suffix = uuid.uuid4().hex[:6]
        self.ids: dict[str, int] = {}

    # ---- reporting

    def _pass(self, name: str) -> None:
        self.passed += 1
        print(f"PASS {name}", flush=True)

    def _fail(self, name: str, why: str) -> None:
        self.failed += 1
        print(f"FAIL {name}: {why}", flush=True)

    def skip(self, name: str, why: str) -> None:
        self.skipped += 1
        print(f"SKIP {name}: {why}", flush=True)

    def expect(
        self,
        name: str,
        resp: Resp,
        status: int | tuple[int, ...],
        check: Callable[[Any], Any] | None = None,
    ) -> Resp:
        """Record a step: ``resp`` has ``status`` (one of) and ``check(json)`` is true.

        Problem responses (4xx) must be ``application/problem+json`` with ``status``.
        """
        wanted = status if isinstance(status, tuple) else (status,)
        ok = resp.status in wanted
        why = f"expected {'/'.join(map(str, wanted))}, got {resp.excerpt()}"
        if ok and resp.status >= 400:
            body = resp.json
            ok = (
                "problem+json" in resp.header("Content-Type")
                and isinstance(body, dict)
                and body.get("status") == resp.status
            )
            why = f"not a problem+json answer: {resp.header('Content-Type')} {resp.excerpt()}"
        if ok and check is not None:
            try:
                ok = bool(check(resp.json))
            except Exception as exc:  # noqa: BLE001 - a shape error is a failed step
                ok = False
                why = f"shape check raised {exc!r}: {resp.excerpt()}"
            else:
                why = f"shape check failed: {resp.excerpt()}"
        if ok:
            self._pass(f"{name} [{resp.status}]")
        else:
            self._fail(name, why)
        return resp

    def truth(self, name: str, value: Any, detail: str = "") -> bool:
        if value:
            self._pass(name)
        else:
            self._fail(name, detail or "condition false")
        return bool(value)

    def section(self, name: str, body: Callable[[], None]) -> None:
        """Run one section; an exception (a missing precondition) fails it, not the run."""
        try:
            body()
        except Exception as exc:  # noqa: BLE001
            self._fail(f"{name}: section aborted", f"{exc!r}")
            traceback.print_exc(limit=3, file=sys.stdout)

    # ---- helpers

    def get(self, path: str, user: str, **query: Any) -> Resp:
        if query:
            path += "?" + urllib.parse.urlencode(query)
        return self.c.call("GET", path, user=user)

    def post(self, path: str, body: Any, user: str | None, **headers: str) -> Resp:
        return self.c.call(
            "POST", path, body if body is not None else {}, user=user, headers=headers
        )

    def need(self, resp: Resp, status: int, what: str) -> Any:
        """A precondition of later steps (not itself a step): raise if it failed."""
        if resp.status != status:
            raise StepFailed(f"{what}: {resp.excerpt()}")
        return resp.json

    # ---- setup

    def setup(self) -> None:
        for user in USERS:
            self.c.token(user)
        self._pass(f"sign in once as each of {len(USERS)} demo accounts")
        for user in USERS:
            me = self.need(self.get("/api/v1/me", user), 200, f"GET /me {user}")
            self.ids[user] = me["user"]["id"]
            for role in me["roles"]:
                if role["role"] == "secretary" and user == "secretary_lh":
                    self.ids["lh"] = role["area_id"]
                if role["role"] == "secretary" and user == "secretary_zj":
                    self.ids["zj"] = role["area_id"]
                if role["role"] == "officer" and user == "officer_ly":
                    self.ids["street_ly"] = role["area_id"]
                if role["role"] == "grid_worker" and user == "grid_lh1":
                    self.ids["grid_lh1"] = role["area_id"]
        areas = self.need(self.get("/api/v1/areas", "admin", per_page=100), 200, "areas")
        self.ids["unknown_area"] = max(a["id"] for a in areas["items"]) + 100000
        street_zj = next(a["parent_id"] for a in areas["items"] if a["id"] == self.ids["zj"])
        self._other_officer(street_zj)
        self.expect(
            "GET /api/v1/me and /api/v1/areas give the demo's communities",
            self.get("/api/v1/areas", "secretary_lh", kind="community"),
            200,
            lambda b: {self.ids["lh"], self.ids["zj"]} <= {a["id"] for a in b["items"]},
        )
        self.project_id = self._new_project()

    def _other_officer(self, street_id: int) -> None:
        """An officer of another street (the demo has none): created by the admin."""
        name = f"officer_acc_{self.suffix}"
        password = f"acc-{uuid.uuid4().hex}"
        body = {"username": name, "password": password, "display_name": "验收街道管理员"}
        user = self.need(self.post("/api/v1/users", body, "admin"), 201, "officer account")
        self.expect(
            "POST /users/{id}/roles officer of another street (admin) -> 201",
            self.post(
                f"/api/v1/users/{user['id']}/roles",
                {"role": "officer", "area_id": street_id},
                "admin",
            ),
            201,
            lambda b: b["role"] == "officer" and b["area_id"] == street_id,
        )
        resp = self.c.call("POST", "/api/v1/auth/token", {"username": name, "password": password})
        self.c.tokens["officer_other"] = self.need(resp, 201, "officer login")["token"]

    def _new_project(self) -> int:
        title = f"验收测试项目 {self.suffix}"
        body = {
            "title": title,
            "description": "外部验收运行创建的项目",
            "category": "elderly",
            "community_id": self.ids["lh"],
            "mode": "event",
            "capacity": 5,
            "planned_hours": 1,
        }
        resp = self.expect(
            "POST /projects by a member -> 201 draft",
            self.post("/api/v1/projects", body, "member_chen"),
            201,
            lambda b: b["status"] == "draft" and b["title"] == title,
        )
        pid = self.need(resp, 201, "project")["id"]
        self.expect(
            "POST /projects with an unknown field -> 422",
            self.post("/api/v1/projects", {**body, "colour": "red"}, "member_chen"),
            422,
        )
        self.expect(
            "POST /projects/{id}/submit by the owner -> submitted",
            self.post(f"/api/v1/projects/{pid}/submit", {}, "member_chen"),
            200,
            lambda b: b["status"] == "submitted",
        )
        self.expect(
            "POST /projects/{id}/review by another community's secretary -> 404",
            self.post(f"/api/v1/projects/{pid}/review", {"decision": "approve"}, "secretary_zj"),
            404,
        )
        self.expect(
            "POST /projects/{id}/review approve by the secretary -> approved",
            self.post(f"/api/v1/projects/{pid}/review", {"decision": "approve"}, "secretary_lh"),
            200,
            lambda b: b["status"] == "approved",
        )
        return pid

    def record(
        self, beneficiaries: list[str], participants: tuple[str, ...] = ("member_chen",)
    ) -> Resp:
        """Record a 30-minute delivery in the small hours (Beijing) 1-5 days ago, a
        random slot, retried when it overlaps an earlier run's session."""
        resp = Resp(0, {}, b"")
        for _ in range(12):
            day = datetime.now(BEIJING).date() - timedelta(days=random.randint(1, 5))
            start = datetime(day.year, day.month, day.day, tzinfo=BEIJING) + timedelta(
                minutes=30 * random.randint(0, 11)
            )
            body = {
                "project_id": self.project_id,
                "started_at": start.astimezone(UTC).isoformat(),
                "ended_at": (start + timedelta(minutes=30)).astimezone(UTC).isoformat(),
                "participants": [{"user_id": self.ids[p], "hours": 0.5} for p in participants],
                "beneficiaries": [self.ids[b] for b in beneficiaries],
            }
            resp = self.post("/api/v1/deliveries", body, participants[0])
            if resp.status != 409:
                return resp
        return resp

    # ---- (a) the right to rate, settlement

    def rating_right(self) -> None:
        resp = self.record(["resident_wang", "resident_li", "resident_zhou"])

        def no_secret(b: Any) -> bool:
            def walk(x: Any) -> bool:
                if isinstance(x, dict):
                    return all(not SECRET_KEY.search(k) and walk(v) for k, v in x.items())
                if isinstance(x, list):
                    return all(walk(v) for v in x)
                return not (isinstance(x, str) and "/rate" in x)

            return b["status"] == "awaiting_ratings" and walk(b)

        self.expect(
            "POST /deliveries -> 201 awaiting_ratings, no rating code/token/link in the body",
            resp,
            201,
            no_secret,
        )
        d = self.need(resp, 201, "delivery")["id"]
        self.ids["d1"] = d
        self.expect(
            "POST /deliveries ending before it starts -> 422",
            self.post(
                "/api/v1/deliveries",
                {
                    "project_id": self.project_id,
                    "started_at": "2026-01-02T10:00:00+08:00",
                    "ended_at": "2026-01-02T09:00:00+08:00",
                    "participants": [{"user_id": self.ids["member_chen"], "hours": 1}],
                    "beneficiaries": [],
                },
                "member_chen",
            ),
            422,
        )
        self.expect(
            "POST /deliveries with a time without offset -> 422",
            self.post(
                "/api/v1/deliveries",
                {
                    "project_id": self.project_id,
                    "started_at": "2026-01-02T09:00:00",
                    "ended_at": "2026-01-02T10:00:00",
                    "participants": [{"user_id": self.ids["member_chen"], "hours": 1}],
                    "beneficiaries": [],
                },
                "member_chen",
            ),
            422,
        )
        self.expect(
            "POST /deliveries by a member of another community -> 403",
            self.post(
                "/api/v1/deliveries",
                {
                    "project_id": self.project_id,
                    "started_at": "2026-01-02T09:00:00+08:00",
                    "ended_at": "2026-01-02T10:00:00+08:00",
                    "participants": [{"user_id": self.ids["member_sun"], "hours": 1}],
                    "beneficiaries": [],
                },
                "member_sun",
            ),
            403,
        )
        self.expect(
            "GET /deliveries/{id} by the recorder carries no rating secret",
            self.get(f"/api/v1/deliveries/{d}", "member_chen"),
            200,
            no_secret,
        )

        def pending_has(b: Any, want: bool) -> bool:
            items = b["items"]
            ok = all(
                {"delivery_id", "project_title", "started_at", "rate_until"} <= set(i)
                for i in items
            )
            return ok and (any(i["delivery_id"] == d for i in items) == want)

        self.expect(
            "GET /me/pending-ratings (beneficiary) lists the delivery with the documented shape",
            self.get("/api/v1/me/pending-ratings", "resident_wang"),
            200,
            lambda b: pending_has(b, True),
        )
        self.expect(
            "GET /me/pending-ratings (participant) does not list it",
            self.get("/api/v1/me/pending-ratings", "member_chen"),
            200,
            lambda b: pending_has(b, False),
        )
        self.expect(
            "GET /me/pending-ratings (resident of another community) does not list it",
            self.get("/api/v1/me/pending-ratings", "resident_he"),
            200,
            lambda b: pending_has(b, False),
        )
        self.expect(
            "GET /deliveries/{id}/rating-slips by the participant -> 403",
            self.get(f"/api/v1/deliveries/{d}/rating-slips", "member_chen"),
            403,
        )
        self.expect(
            "GET /deliveries/{id}/rating-slips by another community's secretary -> 404",
            self.get(f"/api/v1/deliveries/{d}/rating-slips", "secretary_zj"),
            404,
        )
        self.expect(
            "GET /deliveries/{id}/rating-slips by a resident (wrong role) -> 403",
            self.get(f"/api/v1/deliveries/{d}/rating-slips", "resident_wang"),
            403,
        )
        self.expect(
            "GET /deliveries/{id}/rating-slips?user_id=<no beneficiary> -> 422",
            self.get(
                f"/api/v1/deliveries/{d}/rating-slips", "grid_lh1", user_id=self.ids["resident_he"]
            ),
            422,
        )
        bens = {self.ids[u] for u in ("resident_wang", "resident_li", "resident_zhou")}
        resp = self.expect(
            "GET /deliveries/{id}/rating-slips by the grid worker -> 200 slips, no-store",
            self.get(f"/api/v1/deliveries/{d}/rating-slips", "grid_lh1"),
            200,
            lambda b: (
                b["delivery_id"] == d
                and {"project_title", "started_at", "rate_until"} <= set(b)
                and {i["user_id"] for i in b["items"]} == bens
                and all(
                    re.fullmatch(r"\d{6}", i["code"]) and i["url"] and "svg" in i["qr_svg"]
                    for i in b["items"]
                )
            ),
        )
        self.truth(
            "rating slips are sent with Cache-Control: no-store",
            "no-store" in resp.header("Cache-Control"),
            resp.header("Cache-Control"),
        )
        slips = {i["user_id"]: i["code"] for i in self.need(resp, 200, "slips")["items"]}

        self.expect(
            "POST /deliveries/{id}/ratings score 6 -> 422",
            self.post(f"/api/v1/deliveries/{d}/ratings", {"score": 6}, "resident_wang"),
            422,
        )
        self.expect(
            "POST /deliveries/{id}/ratings by the participant (no beneficiary) -> 403",
            self.post(f"/api/v1/deliveries/{d}/ratings", {"score": 5}, "member_chen"),
            403,
        )
        self.expect(
            "POST /deliveries/{id}/ratings by a resident of another community -> 404",
            self.post(f"/api/v1/deliveries/{d}/ratings", {"score": 5}, "resident_he"),
            404,
        )
        resp = self.expect(
            "POST /deliveries/{id}/ratings by a beneficiary -> 201, still awaiting",
            self.post(
                f"/api/v1/deliveries/{d}/ratings",
                {"score": 5, "comment": f"服务很好 {self.suffix}"},
                "resident_wang",
            ),
            201,
            lambda b: b["score"] == 5 and b["delivery_status"] == "awaiting_ratings",
        )
        self.ids["rating_wang"] = self.need(resp, 201, "rating")["id"]
        self.expect(
            "POST /deliveries/{id}/ratings a second time -> 409",
            self.post(f"/api/v1/deliveries/{d}/ratings", {"score": 4}, "resident_wang"),
            409,
        )
        self.expect(
            "GET /me/pending-ratings no longer lists a rated delivery",
            self.get("/api/v1/me/pending-ratings", "resident_wang"),
            200,
            lambda b: pending_has(b, False),
        )
        self._by_code(d, slips)
        self.expect(
            "POST /deliveries/{id}/ratings on_behalf_of by the participant -> 403",
            self.post(
                f"/api/v1/deliveries/{d}/ratings",
                {"score": 5, "on_behalf_of": self.ids["resident_zhou"]},
                "member_chen",
            ),
            403,
        )
        self.expect(
            "POST /deliveries/{id}/ratings on_behalf_of a non-beneficiary -> 422",
            self.post(
                f"/api/v1/deliveries/{d}/ratings",
                {"score": 5, "on_behalf_of": self.ids["resident_he"]},
                "grid_lh1",
            ),
            422,
        )
        self.expect(
            "POST /deliveries/{id}/settle before the window closes (not all rated) -> 409",
            self.post(
                f"/api/v1/deliveries/{d}/settle",
                {"confirm_unrated": True},
                "secretary_lh",
                **{"Idempotency-Key": uuid.uuid4().hex},
            ),
            409,
        )
        resp = self.expect(
            "POST /deliveries/{id}/ratings on_behalf_of by the secretary (last) -> settled",
            self.post(
                f"/api/v1/deliveries/{d}/ratings",
                {
                    "score": 4,
                    "comment": f"代评：老人说很满意 {self.suffix}",
                    "on_behalf_of": self.ids["resident_zhou"],
                },
                "secretary_lh",
            ),
            201,
            lambda b: b["delivery_status"] == "settled",
        )
        self.ids["rating_zhou"] = self.need(resp, 201, "proxy rating")["id"]
        resp = self.expect(
            "GET /deliveries/{id}/settlement -> the postings, average, multiplier, policy",
            self.get(f"/api/v1/deliveries/{d}/settlement", "member_chen"),
            200,
            lambda b: (
                [p["user_id"] for p in b["postings"]] == [self.ids["member_chen"]]
                and all(
                    {"points", "minutes", "counted_minutes", "transaction_id"} <= set(p)
                    for p in b["postings"]
                )
                and {"average_score", "multiplier", "policy_id", "policy_version"} <= set(b)
                and abs(b["average_score"] - 13 / 3) < 0.01
                and b["postings"][0]["counted_minutes"] == 30
            ),
        )
        self.ids["earn_tx"] = self.need(resp, 200, "settlement")["postings"][0]["transaction_id"]
        self.expect(
            "GET /deliveries/{id}/settlement by a member of another community -> 404",
            self.get(f"/api/v1/deliveries/{d}/settlement", "member_sun"),
            404,
        )
        self.expect(
            "POST /deliveries/{id}/settle when settled -> 409",
            self.post(
                f"/api/v1/deliveries/{d}/settle",
                {},
                "secretary_lh",
                **{"Idempotency-Key": uuid.uuid4().hex},
            ),
            409,
        )
        self.expect(
            "GET /deliveries/{id}/rating-slips once settled -> 409",
            self.get(f"/api/v1/deliveries/{d}/rating-slips", "grid_lh1"),
            409,
        )
        # an unsettled one: the settle refusals
        resp = self.record(["resident_wang"])
        d2 = self.need(resp, 201, "second delivery")["id"]
        self.ids["d2"] = d2
        self.expect(
            "POST /deliveries/{id}/settle by the participant -> 403",
            self.post(
                f"/api/v1/deliveries/{d2}/settle",
                {"confirm_unrated": True},
                "member_chen",
                **{"Idempotency-Key": uuid.uuid4().hex},
            ),
            403,
        )
        self.expect(
            "POST /deliveries/{id}/settle by another community's secretary -> 404",
            self.post(
                f"/api/v1/deliveries/{d2}/settle",
                {"confirm_unrated": True},
                "secretary_zj",
                **{"Idempotency-Key": uuid.uuid4().hex},
            ),
            404,
        )
        self.expect(
            "POST /deliveries/{id}/settle with confirm_unrated='yes' -> 422",
            self.post(
                f"/api/v1/deliveries/{d2}/settle",
                {"confirm_unrated": "yes"},
                "secretary_lh",
                **{"Idempotency-Key": uuid.uuid4().hex},
            ),
            422,
        )
        self.expect(
            "GET /deliveries/{id}/settlement before settlement -> 404",
            self.get(f"/api/v1/deliveries/{d2}/settlement", "secretary_lh"),
            404,
        )
        self._settle_closed_window()

    def _by_code(self, d: int, slips: dict[int, str]) -> None:
        """Rate with the slips' one-time codes (3 failed codes per run: 20 an hour per IP)."""
        probe = self.post("/api/v1/ratings/by-code", {"code": "12ab", "score": 5}, None)
        if probe.status == 429:
            # This IP used up its failed rating codes (20 an hour, docs/API.md): the
            # limit itself is the check; the resident then rates from her session.
            self.truth(
                "POST /ratings/by-code over the failed-code limit -> 429 with Retry-After",
                probe.header("Retry-After") and probe.json["status"] == 429,
                probe.excerpt(),
            )
            self.skip("POST /ratings/by-code steps", "the failed-code limit of this IP is reached")
            self.expect(
                "POST /deliveries/{id}/ratings by a beneficiary (instead of by code) -> 201",
                self.post(
                    f"/api/v1/deliveries/{d}/ratings",
                    {"score": 4, "comment": f"准时 {self.suffix}"},
                    "resident_li",
                ),
                201,
            )
            return
        self.expect("POST /ratings/by-code with a malformed code -> 422", probe, 422)
        self.expect(
            "POST /ratings/by-code with the slip of who already rated -> 422 (voided)",
            self.post(
                "/api/v1/ratings/by-code",
                {"code": slips[self.ids["resident_wang"]], "score": 5},
                None,
            ),
            422,
        )
        self.expect(
            "GET /deliveries/{id}/rating-slips?user_id=<who rated> -> 409",
            self.get(
                f"/api/v1/deliveries/{d}/rating-slips",
                "grid_lh1",
                user_id=self.ids["resident_wang"],
            ),
            409,
        )
        resp = self.expect(
            "GET /deliveries/{id}/rating-slips again -> fresh slips for who has not rated",
            self.get(f"/api/v1/deliveries/{d}/rating-slips", "grid_lh1"),
            200,
            lambda b: (
                {i["user_id"] for i in b["items"]}
                == {self.ids["resident_li"], self.ids["resident_zhou"]}
            ),
        )
        fresh = {i["user_id"]: i["code"] for i in self.need(resp, 200, "slips")["items"]}
        old_code = slips[self.ids["resident_li"]]
        if old_code != fresh[self.ids["resident_li"]]:  # a fresh code may repeat by chance
            self.expect(
                "POST /ratings/by-code with a slip voided by the re-issue -> 422",
                self.post("/api/v1/ratings/by-code", {"code": old_code, "score": 1}, None),
                422,
            )
        li_code = fresh[self.ids["resident_li"]]
        self.expect(
            "POST /ratings/by-code (anonymous, the slip) -> 201 rated",
            self.post(
                "/api/v1/ratings/by-code",
                {"code": li_code, "score": 4, "comment": f"准时 {self.suffix}"},
                None,
            ),
            201,
            lambda b: (
                b["status"] == "rated"
                and b["score"] == 4
                and b["delivery_status"] == "awaiting_ratings"
            ),
        )
        self.expect(
            "POST /ratings/by-code with a used code -> 422",
            self.post("/api/v1/ratings/by-code", {"code": li_code, "score": 4}, None),
            422,
        )

    def _settle_closed_window(self) -> None:
        name = "POST /deliveries/{id}/settle (closed window, Idempotency-Key) -> 200 settled"
        queue = self.expect(
            "GET /settlement-queue by the secretary -> 200 page",
            self.get("/api/v1/settlement-queue", "secretary_lh", community_id=self.ids["lh"]),
            200,
            lambda b: isinstance(b["items"], list) and "total" in b,
        ).json
        now = datetime.now(UTC)
        closed = [
            i
            for i in (queue or {}).get("items", [])
            if i["settleable"] and datetime.fromisoformat(i["rating_deadline"]) < now
        ]
        if not closed:
            self.skip(name, "no delivery with a closed rating window in the queue (already run)")
            return
        d = closed[0]["delivery_id"]
        self.expect(
            "POST /deliveries/{id}/settle, nobody rated, without confirm_unrated -> 409",
            self.post(
                f"/api/v1/deliveries/{d}/settle",
                {},
                "secretary_lh",
                **{"Idempotency-Key": uuid.uuid4().hex},
            ),
            409,
        )
        key = uuid.uuid4().hex
        first = self.expect(
            name,
            self.post(
                f"/api/v1/deliveries/{d}/settle",
                {"confirm_unrated": True},
                "secretary_lh",
                **{"Idempotency-Key": key},
            ),
            200,
            lambda b: b["status"] == "settled" and b["postings"],
        )
        again = self.post(
            f"/api/v1/deliveries/{d}/settle",
            {"confirm_unrated": True},
            "secretary_lh",
            **{"Idempotency-Key": key},
        )
        self.truth(
            "settle retried with the same Idempotency-Key replays the first response",
            again.status == first.status
            and again.json == first.json
            and again.header("Idempotent-Replayed") == "true",
            again.excerpt() + " replayed=" + again.header("Idempotent-Replayed"),
        )
        self.expect(
            "settle with the same key and another body -> 422",
            self.post(
                f"/api/v1/deliveries/{d}/settle",
                {"confirm_unrated": False},
                "secretary_lh",
                **{"Idempotency-Key": key},
            ),
            422,
        )
        self.expect(
            "settle with a new key once settled -> 409",
            self.post(
                f"/api/v1/deliveries/{d}/settle",
                {"confirm_unrated": True},
                "secretary_lh",
                **{"Idempotency-Key": uuid.uuid4().hex},
            ),
            409,
        )
        self.expect(
            "GET /deliveries/{id}/settlement of it -> the same document",
            self.get(f"/api/v1/deliveries/{d}/settlement", "secretary_lh"),
            200,
            lambda b: b == first.json,
        )
        self.ids["settled_by_secretary_tx"] = first.json["postings"][0]["transaction_id"]
        self.ids["settled_by_secretary_member"] = first.json["postings"][0]["user_id"]

    # ---- (b) no self-dealing

    def self_dealing(self) -> None:
        sec = self.ids["secretary_lh"]
        self.expect(
            "POST /users/{self}/roles: a secretary grants himself member -> 403",
            self.post(
                f"/api/v1/users/{sec}/roles",
                {"role": "member", "area_id": self.ids["lh"]},
                "secretary_lh",
            ),
            403,
        )
        self.expect(
            "POST /users/{self}/roles: a secretary grants himself officer -> 403",
            self.post(
                f"/api/v1/users/{sec}/roles",
                {"role": "officer", "area_id": self.ids["street_ly"]},
                "secretary_lh",
            ),
            403,
        )
        self.expect(
            "POST /adjustments to himself (secretary) -> 403",
            self.post(
                "/api/v1/adjustments",
                {"user_id": sec, "amount": 100, "reason": "自己给自己"},
                "secretary_lh",
                **{"Idempotency-Key": uuid.uuid4().hex},
            ),
            403,
        )
        self.expect(
            "POST /adjustments by another community's secretary -> 403",
            self.post(
                "/api/v1/adjustments",
                {"user_id": self.ids["member_zhao"], "amount": 5, "reason": "跨社区"},
                "secretary_zj",
                **{"Idempotency-Key": uuid.uuid4().hex},
            ),
            403,
        )
        self.expect(
            "POST /adjustments by a member -> 403",
            self.post(
                "/api/v1/adjustments",
                {"user_id": self.ids["member_zhao"], "amount": 5, "reason": "会员"},
                "member_chen",
                **{"Idempotency-Key": uuid.uuid4().hex},
            ),
            403,
        )
        self.expect(
            "POST /adjustments with amount 0 -> 422",
            self.post(
                "/api/v1/adjustments",
                {"user_id": self.ids["member_zhao"], "amount": 0, "reason": "零"},
                "secretary_lh",
                **{"Idempotency-Key": uuid.uuid4().hex},
            ),
            422,
        )
        self.expect(
            "POST /adjustments below zero -> 409",
            self.post(
                "/api/v1/adjustments",
                {"user_id": self.ids["member_zhao"], "amount": -99999, "reason": "超额扣减"},
                "secretary_lh",
                **{"Idempotency-Key": uuid.uuid4().hex},
            ),
            409,
        )
        resp = self.expect(
            "POST /adjustments by the member's secretary -> 201 transaction",
            self.post(
                "/api/v1/adjustments",
                {"user_id": self.ids["member_zhao"], "amount": 3, "reason": f"验收 {self.suffix}"},
                "secretary_lh",
                **{"Idempotency-Key": uuid.uuid4().hex},
            ),
            201,
            lambda b: isinstance(b["id"], int),
        )
        tx = resp.json["id"] if resp.status == 201 else None
        self.expect(
            "GET /users/{id}/ledger shows the adjustment",
            self.get(f"/api/v1/users/{self.ids['member_zhao']}/ledger", "member_zhao"),
            200,
            lambda b: tx is not None and any(t["id"] == tx for t in b["items"]),
        )
        self.expect(
            "GET /users/{id}/ledger of another member as a member -> 404",
            self.get(f"/api/v1/users/{self.ids['member_zhao']}/ledger", "member_chen"),
            404,
        )
        d2 = self.ids["d2"]
        self.expect(
            "a participant cannot issue rating slips of his delivery -> 403",
            self.get(f"/api/v1/deliveries/{d2}/rating-slips", "member_chen"),
            403,
        )
        self.expect(
            "a participant cannot rate on behalf of his beneficiary -> 403",
            self.post(
                f"/api/v1/deliveries/{d2}/ratings",
                {"score": 5, "on_behalf_of": self.ids["resident_wang"]},
                "member_chen",
            ),
            403,
        )
        self.expect(
            "a participant cannot settle his delivery -> 403",
            self.post(
                f"/api/v1/deliveries/{d2}/settle",
                {"confirm_unrated": True},
                "member_chen",
                **{"Idempotency-Key": uuid.uuid4().hex},
            ),
            403,
        )

    # ---- (c) appeals

    def appeals(self) -> None:
        rating = self.ids["rating_wang"]
        self.expect(
            "POST /appeals with both rating_id and transaction_id -> 422",
            self.post(
                "/api/v1/appeals",
                {"rating_id": rating, "transaction_id": self.ids["earn_tx"], "reason": "x"},
                "member_chen",
            ),
            422,
        )
        self.expect(
            "POST /appeals without reason -> 422",
            self.post("/api/v1/appeals", {"rating_id": rating}, "member_chen"),
            422,
        )
        self.expect(
            "POST /appeals by a member of another community -> 404",
            self.post("/api/v1/appeals", {"rating_id": rating, "reason": "不公"}, "member_sun"),
            404,
        )
        shape = {
            "id",
            "status",
            "community_id",
            "appellant_id",
            "rating_id",
            "appealed_transaction_id",
            "delivery_id",
            "member_id",
            "reason",
            "created_at",
        }
        resp = self.expect(
            "POST /appeals {rating_id} by the member who served -> 201 open",
            self.post(
                "/api/v1/appeals",
                {"rating_id": rating, "reason": f"评价有误 {self.suffix}"},
                "member_chen",
            ),
            201,
            lambda b: (
                shape <= set(b)
                and b["status"] == "open"
                and b["rating_id"] == rating
                and b["appellant_id"] == self.ids["member_chen"]
                and b["community_id"] == self.ids["lh"]
            ),
        )
        a1 = self.need(resp, 201, "appeal")["id"]
        self.expect(
            "POST /appeals a second open appeal -> 409",
            self.post(
                "/api/v1/appeals", {"rating_id": rating, "reason": "再次申诉"}, "member_chen"
            ),
            409,
        )
        resp = self.expect(
            "POST /appeals {transaction_id} by the member of the award -> 201 open",
            self.post(
                "/api/v1/appeals",
                {"transaction_id": self.ids["earn_tx"], "reason": f"积分算错 {self.suffix}"},
                "member_chen",
            ),
            201,
            lambda b: b["appealed_transaction_id"] == self.ids["earn_tx"] and b["status"] == "open",
        )
        a2 = self.need(resp, 201, "transaction appeal")["id"]
        self.expect(
            "POST /appeals {transaction_id} of someone else's award -> 404",
            self.post(
                "/api/v1/appeals",
                {"transaction_id": self.ids["earn_tx"], "reason": "不是我的"},
                "member_liu",
            ),
            404,
        )
        self.expect(
            "POST /appeals {rating_id} by the resident of a proxy rating -> 201 open",
            self.post(
                "/api/v1/appeals",
                {"rating_id": self.ids["rating_zhou"], "reason": f"不是我的评价 {self.suffix}"},
                "resident_zhou",
            ),
            201,
            lambda b: b["status"] == "open" and b["appellant_id"] == self.ids["resident_zhou"],
        )
        self.expect(
            "POST /appeals {rating_id} by the resident of her own (no proxy) rating -> 403",
            self.post(
                "/api/v1/appeals", {"rating_id": rating, "reason": "改主意"}, "resident_wang"
            ),
            403,
        )
        self.expect(
            "GET /appeals (appellant) lists both",
            self.get("/api/v1/appeals", "member_chen", per_page=100),
            200,
            lambda b: {a1, a2} <= {a["id"] for a in b["items"]} and "total" in b,
        )
        self.expect(
            "GET /appeals?status=open&community_id= (secretary) lists them",
            self.get(
                "/api/v1/appeals",
                "secretary_lh",
                status="open",
                community_id=self.ids["lh"],
                per_page=100,
            ),
            200,
            lambda b: {a1, a2} <= {a["id"] for a in b["items"]},
        )
        self.expect(
            "GET /appeals (another community's secretary) does not list them",
            self.get("/api/v1/appeals", "secretary_zj", per_page=100),
            200,
            lambda b: not {a1, a2} & {a["id"] for a in b["items"]},
        )
        self.expect(
            "GET /appeals?status=bogus -> 422",
            self.get("/api/v1/appeals", "secretary_lh", status="bogus"),
            422,
        )
        self.expect(
            "GET /appeals/{id} by the officer above -> 200",
            self.get(f"/api/v1/appeals/{a1}", "officer_ly"),
            200,
            lambda b: b["id"] == a1 and shape <= set(b),
        )
        self.expect(
            "GET /appeals/{id} by a member who is no party -> 404",
            self.get(f"/api/v1/appeals/{a1}", "member_zhao"),
            404,
        )
        self.expect(
            "GET /appeals/{id} by another community's secretary -> 404",
            self.get(f"/api/v1/appeals/{a1}", "secretary_zj"),
            404,
        )
        self.expect(
            "GET /appeals/{id} by an officer of another street -> 404",
            self.get(f"/api/v1/appeals/{a1}", "officer_other"),
            404,
        )
        decide = f"/api/v1/appeals/{a1}/decide"
        self.expect(
            "POST /appeals/{id}/decide by an officer of another street -> 404",
            self.post(
                decide,
                {"decision": "upheld", "reason": "外街道", "amount": 5},
                "officer_other",
                **{"Idempotency-Key": uuid.uuid4().hex},
            ),
            404,
        )
        self.expect(
            "POST /appeals/{id}/decide by the community's secretary -> 403",
            self.post(
                decide,
                {"decision": "upheld", "reason": "书记", "amount": 5},
                "secretary_lh",
                **{"Idempotency-Key": uuid.uuid4().hex},
            ),
            403,
        )
        self.expect(
            "POST /appeals/{id}/decide by the appellant -> 403",
            self.post(
                decide,
                {"decision": "upheld", "reason": "我自己", "amount": 5},
                "member_chen",
                **{"Idempotency-Key": uuid.uuid4().hex},
            ),
            403,
        )
        self.expect(
            "POST /appeals/{id}/decide with decision 'maybe' -> 422",
            self.post(
                decide,
                {"decision": "maybe", "reason": "x"},
                "officer_ly",
                **{"Idempotency-Key": uuid.uuid4().hex},
            ),
            422,
        )
        self.expect(
            "POST /appeals/{id}/decide upheld on a rating appeal without amount -> 422",
            self.post(
                decide,
                {"decision": "upheld", "reason": "无金额"},
                "officer_ly",
                **{"Idempotency-Key": uuid.uuid4().hex},
            ),
            422,
        )
        resp = self.expect(
            "POST /appeals/{id}/decide upheld with amount by the officer -> 200, transaction_id",
            self.post(
                decide,
                {"decision": "upheld", "reason": f"申诉成立 {self.suffix}", "amount": 5},
                "officer_ly",
                **{"Idempotency-Key": uuid.uuid4().hex},
            ),
            200,
            lambda b: b["status"] == "upheld" and isinstance(b["transaction_id"], int),
        )
        tx = resp.json.get("transaction_id") if resp.status == 200 else None
        self.expect(
            "the upheld appeal's transaction is in GET /users/{id}/ledger",
            self.get(
                f"/api/v1/users/{self.ids['member_chen']}/ledger", "member_chen", per_page=100
            ),
            200,
            lambda b: tx is not None and any(t["id"] == tx for t in b["items"]),
        )
        self.expect(
            "POST /appeals/{id}/decide a second time -> 409",
            self.post(
                decide,
                {"decision": "dismissed", "reason": "再判"},
                "officer_hy",
                **{"Idempotency-Key": uuid.uuid4().hex},
            ),
            409,
        )
        decide2 = f"/api/v1/appeals/{a2}/decide"
        self.expect(
            "POST /appeals/{id}/decide dismissed with an amount -> 422",
            self.post(
                decide2,
                {"decision": "dismissed", "reason": "驳回", "amount": 3},
                "officer_hy",
                **{"Idempotency-Key": uuid.uuid4().hex},
            ),
            422,
        )
        self.expect(
            "POST /appeals/{id}/decide dismissed by the district officer -> 200, no transaction",
            self.post(
                decide2,
                {"decision": "dismissed", "reason": f"驳回 {self.suffix}"},
                "officer_hy",
                **{"Idempotency-Key": uuid.uuid4().hex},
            ),
            200,
            lambda b: b["status"] == "dismissed" and b["transaction_id"] is None,
        )
        tx3 = self.ids.get("settled_by_secretary_tx")
        member = self.ids.get("settled_by_secretary_member")
        user = next((u for u in USERS if self.ids.get(u) == member), None)
        if tx3 is None or user is None:
            self.skip(
                "POST /appeals/{id}/decide by the secretary who settled -> 403",
                "no delivery was settled by the secretary in this run",
            )
            return
        resp = self.post("/api/v1/appeals", {"transaction_id": tx3, "reason": "书记结算有误"}, user)
        a3 = self.need(resp, 201, "appeal of the secretary's settlement")["id"]
        self.expect(
            "POST /appeals/{id}/decide by the secretary who settled -> 403",
            self.post(
                f"/api/v1/appeals/{a3}/decide",
                {"decision": "upheld", "reason": "我结算的", "amount": 1},
                "secretary_lh",
                **{"Idempotency-Key": uuid.uuid4().hex},
            ),
            403,
        )

    # ---- (d) integrity signals

    def integrity(self) -> None:
        def shape(b: Any) -> bool:
            return (
                b["community_id"] == self.ids["lh"]
                and isinstance(b["since"], str)
                and b["signal_cap"] == 100
                and b["ids_cap"] == 50
                and isinstance(b["totals"], dict)
                and set(b["totals"]) <= SIGNAL_KINDS
                and all(
                    i["kind"] in SIGNAL_KINDS
                    and isinstance(i["user_ids"], list)
                    and isinstance(i["delivery_ids"], list)
                    and isinstance(i["detail"], dict)
                    for i in b["items"]
                )
            )

        path = "/api/v1/integrity/signals"
        self.expect(
            "GET /integrity/signals (secretary) -> 200 documented shape",
            self.get(path, "secretary_lh", community_id=self.ids["lh"]),
            200,
            shape,
        )
        self.expect(
            "GET /integrity/signals (officer over it) -> 200 documented shape",
            self.get(path, "officer_ly", community_id=self.ids["lh"]),
            200,
            shape,
        )
        self.expect(
            "GET /integrity/signals (officer of another street) -> 403",
            self.get(path, "officer_other", community_id=self.ids["lh"]),
            403,
        )
        self.expect(
            "GET /integrity/signals (member) -> 403",
            self.get(path, "member_chen", community_id=self.ids["lh"]),
            403,
        )
        self.expect(
            "GET /integrity/signals (another community's secretary) -> 403",
            self.get(path, "secretary_zj", community_id=self.ids["lh"]),
            403,
        )
        self.expect(
            "GET /integrity/signals of an area that is no community -> 403",
            self.get(path, "officer_ly", community_id=self.ids["street_ly"]),
            403,
        )
        self.expect(
            "GET /integrity/signals unknown community -> 404",
            self.get(path, "secretary_lh", community_id=self.ids["unknown_area"]),
            404,
        )
        self.expect(
            "GET /integrity/signals without community_id -> 422",
            self.get(path, "secretary_lh"),
            422,
        )

    # ---- (e) comment moderation

    def moderation(self) -> None:
        rating = self.ids["rating_wang"]
        reports = f"/api/v1/ratings/{rating}/reports"
        self.expect(
            "POST /ratings/{id}/reports with an empty reason -> 422",
            self.post(reports, {"reason": ""}, "member_chen"),
            422,
        )
        self.expect(
            "POST /ratings/{id}/reports by the rater (no server) -> 403",
            self.post(reports, {"reason": "我自己的"}, "resident_wang"),
            403,
        )
        self.expect(
            "POST /ratings/{id}/reports by a member of another community -> 404",
            self.post(reports, {"reason": "外社区"}, "member_sun"),
            404,
        )
        shape = {"id", "rating_id", "community_id", "reason", "status", "created_at", "resolved_at"}
        resp = self.expect(
            "POST /ratings/{id}/reports by the member who served -> 201 open",
            self.post(reports, {"reason": f"评论不实 {self.suffix}"}, "member_chen"),
            201,
            lambda b: shape <= set(b) and b["status"] == "open" and b["rating_id"] == rating,
        )
        r1 = self.need(resp, 201, "report")["id"]
        self.expect(
            "POST /ratings/{id}/reports a second time -> 409",
            self.post(reports, {"reason": "再举报"}, "member_chen"),
            409,
        )
        queue = "/api/v1/comment-reports"
        self.expect(
            "GET /comment-reports (secretary) -> the report in the queue",
            self.get(queue, "secretary_lh", community_id=self.ids["lh"], per_page=100),
            200,
            lambda b: any(
                i["id"] == r1
                and i["rating_id"] == rating
                and {"delivery_id", "project_title", "comment", "reporter_id", "can_decide"}
                <= set(i)
                for i in b["items"]
            ),
        )
        self.expect(
            "GET /comment-reports (member) -> 403",
            self.get(queue, "member_chen", community_id=self.ids["lh"]),
            403,
        )
        self.expect(
            "GET /comment-reports (another community's secretary) -> 403",
            self.get(queue, "secretary_zj", community_id=self.ids["lh"]),
            403,
        )
        self.expect(
            "GET /comment-reports unknown community -> 404",
            self.get(queue, "secretary_lh", community_id=self.ids["unknown_area"]),
            404,
        )
        self.expect(
            "GET /comment-reports without community_id -> 422",
            self.get(queue, "secretary_lh"),
            422,
        )
        self.expect(
            "GET /comment-reports?status=bogus -> 422",
            self.get(queue, "secretary_lh", community_id=self.ids["lh"], status="bogus"),
            422,
        )
        self.expect(
            "POST /ratings/{id}/hide by the member -> 403",
            self.post(f"/api/v1/ratings/{rating}/hide", {"reason": "x"}, "member_chen"),
            403,
        )
        self.expect(
            "POST /ratings/{id}/hide without reason -> 422",
            self.post(f"/api/v1/ratings/{rating}/hide", {}, "secretary_lh"),
            422,
        )
        self.expect(
            "POST /ratings/{id}/hide of the proxy rating he entered (a party) -> 403",
            self.post(
                f"/api/v1/ratings/{self.ids['rating_zhou']}/hide",
                {"reason": "自己代评"},
                "secretary_lh",
            ),
            403,
        )
        self.expect(
            "POST /ratings/{id}/hide by the secretary -> 200 comment_hidden",
            self.post(
                f"/api/v1/ratings/{rating}/hide", {"reason": f"不实 {self.suffix}"}, "secretary_lh"
            ),
            200,
            lambda b: (
                b["rating_id"] == rating
                and b["comment_hidden"] is True
                and b["comment_hidden_reason"]
                and b["comment_hidden_at"]
            ),
        )
        self.expect(
            "the report is resolved as hidden (GET /comment-reports?status=hidden)",
            self.get(
                queue, "secretary_lh", community_id=self.ids["lh"], status="hidden", per_page=100
            ),
            200,
            lambda b: any(i["id"] == r1 and i["status"] == "hidden" for i in b["items"]),
        )
        self.expect(
            "a hidden comment is null for the member (GET /deliveries/{id}/ratings)",
            self.get(f"/api/v1/deliveries/{self.ids['d1']}/ratings", "member_chen"),
            200,
            lambda b: any(i["comment"] is None and i["comment_hidden"] is True for i in b["items"]),
        )
        self.expect(
            "POST /ratings/{id}/hide again -> 409",
            self.post(f"/api/v1/ratings/{rating}/hide", {"reason": "再隐藏"}, "secretary_lh"),
            409,
        )
        self.expect(
            "POST /ratings/{id}/unhide -> 200 comment_hidden false",
            self.post(f"/api/v1/ratings/{rating}/unhide", {}, "secretary_lh"),
            200,
            lambda b: b["comment_hidden"] is False,
        )
        self.expect(
            "POST /ratings/{id}/unhide again -> 409",
            self.post(f"/api/v1/ratings/{rating}/unhide", {}, "secretary_lh"),
            409,
        )
        # the by-code rating of resident_li (a comment): report it, dismiss the report
        ratings = self.need(
            self.get(f"/api/v1/deliveries/{self.ids['d1']}/ratings", "secretary_lh"), 200, "ratings"
        )
        other = next(
            i["id"]
            for i in ratings["items"]
            if i["id"] not in (rating, self.ids["rating_zhou"]) and i["comment"]
        )
        resp = self.post(f"/api/v1/ratings/{other}/reports", {"reason": "不妥"}, "member_chen")
        r2 = self.need(resp, 201, "second report")["id"]
        self.expect(
            "POST /comment-reports/{id}/dismiss by a member -> 404",
            self.post(f"/api/v1/comment-reports/{r2}/dismiss", {}, "member_chen"),
            404,
        )
        self.expect(
            "POST /comment-reports/{id}/dismiss by the secretary -> 200 dismissed",
            self.post(
                f"/api/v1/comment-reports/{r2}/dismiss", {"reason": "属实评价"}, "secretary_lh"
            ),
            200,
            lambda b: b["id"] == r2 and b["status"] == "dismissed" and b["resolved_at"],
        )
        self.expect(
            "POST /comment-reports/{id}/dismiss again -> 409",
            self.post(f"/api/v1/comment-reports/{r2}/dismiss", {}, "secretary_lh"),
            409,
        )

    # ---- (f) the annual evaluation

    def annual(self) -> None:
        year = datetime.now(BEIJING).year
        lh = self.ids["lh"]
        path = "/api/v1/reports/annual"
        resp = self.expect(
            "GET /reports/annual json (secretary) -> the documented rows",
            self.get(path, "secretary_lh", area_id=lh, year=year),
            200,
            lambda b: (
                b["area_id"] == lh
                and b["year"] == year
                and {"page", "per_page", "total"} <= set(b)
                and b["items"]
                and all(set(r) == ANNUAL_FIELDS for r in b["items"])
            ),
        )
        total = resp.json["total"] if resp.status == 200 else -1
        resp = self.get(path, "secretary_lh", area_id=lh, year=year, format="csv")
        ok = resp.status == 200 and resp.raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in resp.raw
        rows: list[list[str]] = []
        if ok:
            rows = list(csv.reader(io.StringIO(resp.raw.decode("utf-8-sig"), newline="")))
        self.truth(
            "GET /reports/annual csv: UTF-8 BOM, CRLF, Chinese header, every row",
            ok
            and len(rows) == total + 1
            and any("\u4e00" <= ch <= "\u9fff" for ch in "".join(rows[0]))
            and "attachment" in resp.header("Content-Disposition"),
            resp.excerpt(),
        )
        resp = self.get(path, "secretary_lh", area_id=lh, year=year, format="xlsx")
        self.truth(
            "GET /reports/annual xlsx: parsed by openpyxl, bold frozen header, every row",
            resp.status == 200 and self._xlsx_ok(resp.raw, total),
            resp.excerpt()[:120],
        )
        self.expect(
            "GET /reports/annual (member) -> 403",
            self.get(path, "member_chen", area_id=lh, year=year),
            403,
        )
        self.expect(
            "GET /reports/annual (another community's secretary) -> 403",
            self.get(path, "secretary_zj", area_id=lh, year=year),
            403,
        )
        self.expect(
            "GET /reports/annual (officer of another street) -> 403",
            self.get(path, "officer_other", area_id=lh, year=year),
            403,
        )
        self.expect(
            "GET /reports/annual of a grid -> 422",
            self.get(path, "secretary_lh", area_id=self.ids["grid_lh1"], year=year),
            422,
        )
        self.expect(
            "GET /reports/annual unknown area -> 404",
            self.get(path, "officer_hy", area_id=self.ids["unknown_area"], year=year),
            404,
        )
        self.expect(
            "GET /reports/annual year 1999 -> 422",
            self.get(path, "secretary_lh", area_id=lh, year=1999),
            422,
        )
        self.expect(
            "GET /reports/annual format=pdf -> 422",
            self.get(path, "secretary_lh", area_id=lh, year=year, format="pdf"),
            422,
        )
        cpath = "/api/v1/reports/communities"
        self.expect(
            "GET /reports/communities (officer of the street) -> the documented rows",
            self.get(cpath, "officer_ly", area_id=self.ids["street_ly"], year=year),
            200,
            lambda b: (
                b["area_id"] == self.ids["street_ly"]
                and lh in {r["community_id"] for r in b["items"]}
                and all(set(r) == COMPARISON_FIELDS for r in b["items"])
            ),
        )
        self.expect(
            "GET /reports/communities (member) -> 403",
            self.get(cpath, "member_chen", area_id=self.ids["street_ly"], year=year),
            403,
        )
        self.expect(
            "GET /reports/communities (secretary of another community) -> 403",
            self.get(cpath, "secretary_zj", area_id=lh, year=year),
            403,
        )
        self.evaluation(year)

    @staticmethod
    def _xlsx_ok(raw: bytes, total: int) -> bool:
        from openpyxl import load_workbook

        sheet = load_workbook(io.BytesIO(raw)).active
        if sheet is None:
            return False
        header = [c.value for c in sheet[1]]
        return (
            sheet.max_row == total + 1
            and all(c.font.bold for c in sheet[1])
            and sheet.freeze_panes == "A2"
            and any("\u4e00" <= ch <= "\u9fff" for ch in "".join(str(h) for h in header))
        )

    def evaluation(self, this_year: int) -> None:
        lh = self.ids["lh"]
        self.expect(
            "POST /evaluations for this year (not ended) -> 409",
            self.post(
                "/api/v1/evaluations", {"community_id": lh, "year": this_year}, "secretary_lh"
            ),
            409,
        )
        self.expect(
            "POST /evaluations by a member -> 403",
            self.post(
                "/api/v1/evaluations", {"community_id": lh, "year": this_year - 1}, "member_chen"
            ),
            403,
        )
        self.expect(
            "POST /evaluations by another community's secretary -> 403",
            self.post(
                "/api/v1/evaluations", {"community_id": lh, "year": this_year - 1}, "secretary_zj"
            ),
            403,
        )
        self.expect(
            "POST /evaluations for a grid -> 404",
            self.post(
                "/api/v1/evaluations",
                {"community_id": self.ids["grid_lh1"], "year": this_year - 1},
                "secretary_lh",
            ),
            404,
        )
        self.expect(
            "POST /evaluations for an unknown community -> 404",
            self.post(
                "/api/v1/evaluations",
                {"community_id": self.ids["unknown_area"], "year": this_year - 1},
                "secretary_lh",
            ),
            404,
        )
        self.expect(
            "POST /evaluations with year 'last' -> 422",
            self.post("/api/v1/evaluations", {"community_id": lh, "year": "last"}, "secretary_lh"),
            422,
        )
        # last year, or (a repeated run) the latest year not yet closed
        resp, year = Resp(0, {}, b""), this_year - 1
        for year in range(this_year - 1, this_year - 26, -1):
            resp = self.post(
                "/api/v1/evaluations", {"community_id": lh, "year": year}, "secretary_lh"
            )
            if resp.status != 409:
                break
        ev = self.expect(
            f"POST /evaluations {{community_id, year: {year}}} -> 201 closed with frozen rows",
            resp,
            201,
            lambda b: (
                b["status"] == "closed"
                and b["year"] == year
                and b["closed_at"]
                and b["rows"]
                and b["objections"] == []
                and {self.ids["member_chen"], self.ids["member_liu"]}
                <= {r["user_id"] for r in b["rows"]}
            ),
        )
        e = self.need(ev, 201, "evaluation")["id"]
        self.expect(
            "POST /evaluations the same year again -> 409",
            self.post("/api/v1/evaluations", {"community_id": lh, "year": year}, "secretary_lh"),
            409,
        )
        self.expect(
            "GET /evaluations/{id} as a member before publication -> 404",
            self.get(f"/api/v1/evaluations/{e}", "member_chen"),
            404,
        )
        self.expect(
            "POST /evaluations/{id}/objections before publication -> 404 (not visible yet)",
            self.post(f"/api/v1/evaluations/{e}/objections", {"text": "早"}, "member_chen"),
            404,
        )
        self.expect(
            "POST /evaluations/{id}/publish by a member -> 404",
            self.post(f"/api/v1/evaluations/{e}/publish", {}, "member_chen"),
            404,
        )
        self.expect(
            "POST /evaluations/{id}/publish notice_days 0 -> 422",
            self.post(f"/api/v1/evaluations/{e}/publish", {"notice_days": 0}, "secretary_lh"),
            422,
        )
        self.expect(
            "POST /evaluations/{id}/publish -> in_notice",
            self.post(f"/api/v1/evaluations/{e}/publish", {"notice_days": 7}, "secretary_lh"),
            200,
            lambda b: b["status"] == "in_notice" and b["published_at"] and b["notice_ends_at"],
        )
        self.expect(
            "POST /evaluations/{id}/publish again -> 409",
            self.post(f"/api/v1/evaluations/{e}/publish", {}, "secretary_lh"),
            409,
        )
        obj = f"/api/v1/evaluations/{e}/objections"
        self.expect(
            "POST objections by a member of another community -> 404",
            self.post(obj, {"text": "外社区"}, "member_sun"),
            404,
        )
        self.expect(
            "POST objections with an empty text -> 422",
            self.post(obj, {"text": ""}, "member_chen"),
            422,
        )
        self.expect(
            "POST objections naming a user who has no row -> 422",
            self.post(obj, {"text": "书记", "user_id": self.ids["secretary_zj"]}, "member_chen"),
            422,
        )
        resp = self.expect(
            "POST objections by a member (own row) -> 201 open",
            self.post(obj, {"text": f"漏记了服务时长 {self.suffix}"}, "member_chen"),
            201,
            lambda b: b["status"] == "open" and isinstance(b["id"], int),
        )
        o1 = self.need(resp, 201, "objection")["id"]
        resp = self.post(
            obj,
            {"text": f"陈党员积分偏高 {self.suffix}", "user_id": self.ids["member_chen"]},
            "resident_wang",
        )
        self.expect("POST objections by a resident naming a row -> 201 open", resp, 201)
        o2 = self.need(resp, 201, "resident's objection")["id"]
        self.expect(
            "POST /evaluations/{id}/finalize during the notice -> 409",
            self.post(f"/api/v1/evaluations/{e}/finalize", {}, "secretary_lh"),
            409,
        )
        self.expect(
            "POST /objections/{id}/answer by a member -> 404",
            self.post(
                f"/api/v1/objections/{o1}/answer",
                {"decision": "upheld", "answer": "x", "amount": 10},
                "member_liu",
            ),
            404,
        )
        self.expect(
            "POST /objections/{id}/answer decision 'later' -> 422",
            self.post(
                f"/api/v1/objections/{o1}/answer",
                {"decision": "later", "answer": "x"},
                "secretary_lh",
            ),
            422,
        )
        resp = self.expect(
            "POST /objections/{id}/answer upheld with amount -> transaction_id",
            self.post(
                f"/api/v1/objections/{o1}/answer",
                {"decision": "upheld", "answer": f"核实补记 {self.suffix}", "amount": 10},
                "secretary_lh",
            ),
            200,
            lambda b: b["status"] == "upheld" and isinstance(b["transaction_id"], int),
        )
        tx = resp.json.get("transaction_id") if resp.status == 200 else None
        self.expect(
            "the objection's correction is in GET /users/{id}/ledger",
            self.get(
                f"/api/v1/users/{self.ids['member_chen']}/ledger", "secretary_lh", per_page=100
            ),
            200,
            lambda b: tx is not None and any(t["id"] == tx for t in b["items"]),
        )
        self.expect(
            "POST /objections/{id}/answer again -> 409",
            self.post(
                f"/api/v1/objections/{o1}/answer",
                {"decision": "dismissed", "answer": "再答"},
                "secretary_lh",
            ),
            409,
        )
        self.expect(
            "POST /objections/{id}/answer dismissed -> no transaction",
            self.post(
                f"/api/v1/objections/{o2}/answer",
                {"decision": "dismissed", "answer": f"积分无误 {self.suffix}"},
                "secretary_lh",
            ),
            200,
            lambda b: b["status"] == "dismissed" and b.get("transaction_id") is None,
        )
        chen = self.ids["member_chen"]

        def public_view(b: Any) -> bool:
            row = next(r for r in b["rows"] if r["user_id"] == chen)
            return (
                b["status"] == "in_notice"
                and b["objections"] == []
                and all("username" not in r and "home_unit" not in r for r in b["rows"])
                and row["display_name"]
                and "points_earned" in row
            )

        self.expect(
            "GET /evaluations/{id} as a member: names and figures, no username/home_unit",
            self.get(f"/api/v1/evaluations/{e}", "member_chen"),
            200,
            public_view,
        )

        def full_view(b: Any) -> bool:
            row = next(r for r in b["rows"] if r["user_id"] == chen)
            return (
                row["username"] == "member_chen"
                and row.get("correction") == 10
                and {o1, o2} <= {o["id"] for o in b["objections"]}
            )

        self.expect(
            "GET /evaluations/{id} as the officer: full rows, the correction, objections",
            self.get(f"/api/v1/evaluations/{e}", "officer_ly"),
            200,
            full_view,
        )
        self.expect(
            "GET /evaluations/{id} as an officer of another street -> 404",
            self.get(f"/api/v1/evaluations/{e}", "officer_other"),
            404,
        )
        self.expect(
            "GET /evaluations/{id} as a member of another community -> 404",
            self.get(f"/api/v1/evaluations/{e}", "member_sun"),
            404,
        )
        self.certificate(this_year)

    def certificate(self, year: int) -> None:
        chen = self.ids["member_chen"]
        path = f"/api/v1/users/{chen}/certificate"
        resp = self.get(path, "member_chen", year=year)
        self.truth(
            "GET /users/{id}/certificate (self) -> application/pdf starting %PDF",
            resp.status == 200
            and resp.header("Content-Type").startswith("application/pdf")
            and resp.raw.startswith(b"%PDF"),
            resp.excerpt()[:200],
        )
        found = re.search(rb"certificates/verify\?code=([0-9A-F]{16})", resp.raw)
        resp2 = self.get(path, "secretary_lh", year=year)
        self.truth(
            "GET /users/{id}/certificate (the member's secretary) -> PDF",
            resp2.status == 200 and resp2.raw.startswith(b"%PDF"),
            resp2.excerpt()[:200],
        )
        self.expect(
            "GET /users/{id}/certificate (another member) -> 404",
            self.get(path, "member_liu", year=year),
            404,
        )
        self.expect(
            "GET /users/{id}/certificate (another community's secretary) -> 404",
            self.get(path, "secretary_zj", year=year),
            404,
        )
        self.expect(
            "GET /users/{id}/certificate year 'x' -> 422",
            self.get(path, "member_chen", year="x"),
            422,
        )
        if not self.truth(
            "the certificate states its verification link and 16-character code",
            found,
        ):
            return
        assert found is not None
        code = found.group(1).decode()
        page = self.c.call("GET", "/certificates/verify?code=" + code)
        text = page.raw.decode("utf-8", "replace")
        self.truth(
            "GET /certificates/verify?code= (public) -> the certificate is valid",
            page.status == 200 and "证明有效" in text and "陈" in text,
            page.excerpt()[:200],
        )
        wrong = "0" * 16 if code != "0" * 16 else "1" * 16
        page = self.c.call("GET", "/certificates/verify?code=" + wrong)
        self.truth(
            "GET /certificates/verify with an unknown code -> not found, no 500",
            page.status < 500 and "证明有效" not in page.raw.decode("utf-8", "replace"),
            page.excerpt()[:200],
        )

    # ---- the run

    def main(self) -> int:
        started = time.monotonic()
        self.setup()
        self.section("(a) right to rate", self.rating_right)
        self.section("(b) no self-dealing", self.self_dealing)
        self.section("(c) appeals", self.appeals)
        self.section("(d) integrity", self.integrity)
        self.section("(e) moderation", self.moderation)
        self.section("(f) annual evaluation", self.annual)
        print(
            f"SUMMARY {self.passed} passed, {self.failed} failed, {self.skipped} skipped "
            f"in {time.monotonic() - started:.1f} s (run {self.suffix})",
            flush=True,
        )
        return 0 if self.failed == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8000")
    parser.add_argument("--password", default="demo12345", help="the demo accounts' password")
    args = parser.parse_args(argv)
    run = Run(Client(args.base_url.rstrip("/"), args.password))
    try:
        return run.main()
    except (StepFailed, OSError) as exc:  # no server, or a precondition of every step
        print(f"FAIL setup: {exc!r}")
        print(f"SUMMARY {run.passed} passed, {run.failed + 1} failed, {run.skipped} skipped")
        return 1


if __name__ == "__main__":
    sys.exit(main())
