"""Races with real threads against one database (a SQLite file, or PostgreSQL).

Each thread has its own app context, hence its own session and connection; a
barrier releases them together so their transactions overlap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import (
    Delivery,
    DeliveryParticipant,
    Need,
    Project,
    ProjectAction,
    Role,
    TeamMembership,
    TeamStatus,
    User,
    utcnow,
)
from volunteer_market.services import deliveries as delivery_service
from volunteer_market.services import needs as need_service
from volunteer_market.services import projects as project_service
from volunteer_market.services.deliveries import recording as delivery_recording
from volunteer_market.services.errors import Conflict
from volunteer_market.services.projects import lifecycle as project_lifecycle
from volunteer_market.services.projects import teams as project_teams

from ..factories import add_team_member, make_need, make_project, make_user


def race(app, jobs: list[Callable[[], object]]) -> list[str]:
    """Run ``jobs`` in threads released together; return ``ok``/``conflict`` per job."""
    barrier = threading.Barrier(len(jobs))
    results: list[str] = [""] * len(jobs)

    def run(i: int, job: Callable[[], object]) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                job()
                results[i] = "ok"
            except Conflict:
                results[i] = "conflict"
            except Exception as exc:  # noqa: BLE001 - reported to the test
                results[i] = f"error: {exc!r}"
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert all(not t.is_alive() for t in threads), "a thread hung"
    return results


def widen(monkeypatch, module, name: str, seconds: float = 0.3) -> None:
    """Make ``module.name`` pause after it runs, so racing transactions surely overlap
    between their check and their write (without the guard under test, they would
    both pass the check)."""
    import time

    original = getattr(module, name)

    def slow(*args, **kwargs):
        result = original(*args, **kwargs)
        time.sleep(seconds)
        return result

    monkeypatch.setattr(module, name, slow)


def fresh_count(stmt) -> int:
    db.session.rollback()
    return db.session.execute(stmt).scalar_one()


def extra_members(world, n: int) -> list[User]:
    return [make_user(f"extra_member_{i}", (Role.MEMBER, world.community_a)) for i in range(n)]


def test_two_members_claim_one_need_exactly_one_wins(app, world, monkeypatch):
    need = make_need(world.resident_a, world.community_a)
    widen(monkeypatch, need_service, "_view")  # after reading the need as open
    claimers = [world.member_a, world.member_a2, world.member_a3, *extra_members(world, 3)]

    def claim_as(user_id: int):
        def job():
            with atomic():
                user = db.session.get(User, user_id)
                need_service.claim(user, need_service.get_need(need.id))

        return job

    results = race(app, [claim_as(u.id) for u in claimers])
    assert sorted(results) == ["conflict"] * (len(claimers) - 1) + ["ok"], results
    db.session.rollback()
    row = db.session.execute(
        sa.select(Need.status, Need.assignee_id).where(Need.id == need.id)
    ).one()
    winner = claimers[results.index("ok")]
    assert (row.status.value, row.assignee_id) == ("claimed", winner.id)


def test_concurrent_approvals_never_exceed_capacity(app, world, monkeypatch):
    project = make_project(world.member_a, world.community_a, status="approved", capacity=3)
    applicants = [world.member_a2, world.member_a3, *extra_members(world, 4)]
    for member in applicants:
        with atomic():
            project_service.request_join(member, project)
    widen(monkeypatch, project_teams, "_pending_of")  # after reading team_size < capacity

    def approve(user_id: int):
        def job():
            with atomic():
                owner = db.session.get(User, world.member_a.id)
                p = project_service.get_project(project.id)
                project_service.approve_member(owner, p, user_id)

        return job

    results = race(app, [approve(u.id) for u in applicants])
    assert results.count("ok") == 2 and results.count("conflict") == 4, results
    assert fresh_count(sa.select(Project.team_size).where(Project.id == project.id)) == 3
    active = fresh_count(
        sa.select(sa.func.count(TeamMembership.id)).where(
            TeamMembership.project_id == project.id, TeamMembership.status == TeamStatus.ACTIVE
        )
    )
    assert active == 2


def test_concurrent_join_requests_and_approvals(app, world):
    """Joins racing each other are all recorded once; the owner's approvals stop at capacity."""
    project = make_project(world.member_a, world.community_a, status="approved", capacity=4)
    applicants = [world.member_a2, world.member_a3, *extra_members(world, 4)]

    def join(user_id: int):
        def job():
            with atomic():
                user = db.session.get(User, user_id)
                project_service.request_join(user, project_service.get_project(project.id))

        return job

    assert race(app, [join(u.id) for u in applicants]) == ["ok"] * len(applicants)
    assert race(app, [join(applicants[0].id), join(applicants[0].id)]) == ["conflict"] * 2

    def approve(user_id: int):
        def job():
            with atomic():
                owner = db.session.get(User, world.member_a.id)
                project_service.approve_member(
                    owner, project_service.get_project(project.id), user_id
                )

        return job

    results = race(app, [approve(u.id) for u in applicants])
    assert results.count("ok") == 3, results
    assert fresh_count(sa.select(Project.team_size).where(Project.id == project.id)) == 4


def test_overlapping_deliveries_for_one_member_at_most_one(app, world, monkeypatch):
    shared = world.member_a2
    p1 = make_project(world.member_a, world.community_a, status="approved", team=[shared])
    p2 = make_project(
        world.member_a3, world.community_a, status="approved", team=[shared], title="健康义诊"
    )
    widen(monkeypatch, delivery_recording, "_overlapping")  # between the check and the insert
    now = utcnow()
    start = now - timedelta(hours=4)

    def record(recorder_id: int, project_id: int, others: list[int], offset_min: int):
        def job():
            with atomic():
                recorder = db.session.get(User, recorder_id)
                s = start + timedelta(minutes=offset_min)
                delivery_service.record_delivery(
                    recorder,
                    project_id=project_id,
                    started_at=s,
                    ended_at=s + timedelta(hours=2),
                    participants=[(uid, 60) for uid in others],
                    beneficiaries=[],
                    now=now,
                )

        return job

    # A first, unrelated delivery: whatever is set up lazily on the first recording of a
    # community (e.g. its points policy row) must not serialise the racers below.
    record(world.member_a3.id, p2.id, [world.member_a3.id], -20 * 60)()
    jobs = [
        record(world.member_a.id, p1.id, [world.member_a.id, shared.id], 0),
        record(world.member_a3.id, p2.id, [shared.id, world.member_a3.id], 30),
        record(shared.id, p1.id, [shared.id], 15),
        record(shared.id, p2.id, [shared.id], 45),
    ]
    results = race(app, jobs)
    assert results.count("ok") == 1 and results.count("conflict") == 3, results
    count = fresh_count(
        sa.select(sa.func.count(DeliveryParticipant.id)).where(
            DeliveryParticipant.user_id == shared.id
        )
    )
    assert count == 1
    assert fresh_count(sa.select(sa.func.count(Delivery.id))) == 2


def test_concurrent_reviews_one_decision_wins(app, world, monkeypatch):
    from ..factories import make_user as mk

    second_secretary = mk("secretary_a_two", (Role.SECRETARY, world.community_a))
    project = make_project(world.member_a, world.community_a, status="submitted")
    # after both read the state "submitted"
    widen(monkeypatch, project_lifecycle, "allowed_transition")

    def decide(user_id: int, action: ProjectAction, comment: str | None):
        def job():
            with atomic():
                user = db.session.get(User, user_id)
                project_service.transition(
                    user, project_service.get_project(project.id), action, comment
                )

        return job

    results = race(
        app,
        [
            decide(world.secretary_a.id, ProjectAction.APPROVE, None),
            decide(second_secretary.id, ProjectAction.REJECT, "重复项目"),
        ],
    )
    assert sorted(results) == ["conflict", "ok"], results
    from volunteer_market.models import ProjectTransition

    assert (
        fresh_count(
            sa.select(sa.func.count(ProjectTransition.id)).where(
                ProjectTransition.project_id == project.id,
                ProjectTransition.from_status == "submitted",
            )
        )
        == 1
    )


def test_team_member_helper_is_thread_safe_enough(world):
    """add_team_member is used by other suites; keep it honest here."""
    project = make_project(world.member_a, world.community_a, status="approved")
    add_team_member(project, world.member_a2)
    assert project_service.get_project(project.id).team_size == 2
