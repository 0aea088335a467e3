"""The list queries and the policy rules agree on who sees what (the "SQL twins")."""

from __future__ import annotations

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.services import deliveries as delivery_service
from volunteer_market.services import needs as need_service
from volunteer_market.services import permissions
from volunteer_market.services import projects as project_service

from ..factories import make_delivery, make_need, make_project


def test_project_list_matches_the_view_rule(world):
    projects = [
        make_project(world.member_a, world.community_a, status=s, title=f"A-{s}")
        for s in (
            "draft",
            "submitted",
            "changes_requested",
            "approved",
            "rejected",
            "completed",
            "cancelled",
        )
    ]
    projects.append(make_project(world.member_b, world.community_b, status="submitted", title="B"))
    with atomic():
        project_service.request_join(world.member_a2, projects[1])  # pending on a submitted project
    for user in world.users.values():
        listed = {
            p.id for p in db.session.execute(project_service.list_projects(user)).unique().scalars()
        }
        for p in projects:
            assert (p.id in listed) == permissions.may(user, "project.view", p), (
                user.username,
                p.title,
            )


def test_need_list_matches_the_view_rule(world):
    project = make_project(world.member_a, world.community_a, status="approved")
    needs = [
        make_need(world.resident_a, world.community_a),
        make_need(world.resident_a2, world.community_a),
        make_need(world.resident_b, world.community_b),
    ]
    with atomic():
        need_service.dispatch(world.secretary_a, needs[1], project_id=project.id)
    for user in world.users.values():
        listed = {
            n.id for n in db.session.execute(need_service.list_needs(user)).unique().scalars()
        }
        for n in needs:
            n = need_service.get_need(n.id)
            assert (n.id in listed) == permissions.may(user, "need.view", n), user.username


def test_delivery_list_matches_the_view_rule(world):
    project = make_project(
        world.member_a, world.community_a, status="approved", team=[world.member_a2]
    )
    other = make_project(world.member_b, world.community_b, status="approved", title="B")
    deliveries = [
        make_delivery(project, world.member_a, beneficiaries=[world.resident_a]).delivery,
        make_delivery(
            project,
            world.member_a2,
            participants=[(world.member_a2, 1)],
            hours_ago=8,
            length_hours=1,
        ).delivery,
        make_delivery(other, world.member_b, beneficiaries=[world.resident_b]).delivery,
    ]
    for user in world.users.values():
        listed = {
            d.id
            for d in db.session.execute(delivery_service.list_deliveries(user)).unique().scalars()
        }
        for d in deliveries:
            assert (d.id in listed) == permissions.may(user, "delivery.view", d), user.username
