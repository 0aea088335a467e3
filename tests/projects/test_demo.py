"""The demo of projects: every project state, teams, needs, deliveries; idempotent."""

from __future__ import annotations

import sqlalchemy as sa

from volunteer_market.demo import people
from volunteer_market.demo import projects as demo_projects
from volunteer_market.extensions import db
from volunteer_market.models import Delivery, Need, Project, ProjectStatus, TeamMembership


def test_projects_demo_loads_once(app):
    people.load()
    demo_projects.load()
    demo_projects.load()  # idempotent
    statuses = set(db.session.scalars(sa.select(Project.status)))
    assert statuses == set(ProjectStatus)
    assert db.session.scalar(sa.select(sa.func.count(Project.id))) == len(demo_projects.PROJECTS)
    assert db.session.scalar(sa.select(sa.func.count(Delivery.id))) == 4
    assert db.session.scalar(sa.select(sa.func.count(TeamMembership.id))) == 5
    needs = {n.title: n.status.value for n in db.session.scalars(sa.select(Need))}
    assert needs == {
        "代买降压药": "closed",
        "修理漏水的水龙头": "open",
        "陪同去医院复查": "claimed",
        "代买药": "dispatched",
    }
