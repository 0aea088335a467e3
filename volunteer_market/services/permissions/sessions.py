"""Rules of project sessions: scheduling, sign-up, attendance, the delivery from it.

A session is seen by whoever may see its project; it is run (created, cancelled, its
check-in code shown, attendance marked, its delivery made) by the project's owner while
still a member of the community; members of the project's community sign up and check
in (residents and staff who are not members never take a place).
"""

from __future__ import annotations

from ...extensions import db
from ...models import Project, ProjectSession, Role, User
from .core import may, rule
from .projects import in_community


def _project(session: ProjectSession) -> Project:
    project = db.session.get(Project, session.project_id)
    assert project is not None
    return project


@rule("session.create")
def _session_create(actor: User, project: Project) -> bool:
    return may(actor, "project.own", project)


@rule("session.view")
def _session_view(actor: User, session: ProjectSession) -> bool:
    return may(actor, "project.view", _project(session))


@rule("session.manage")
def _session_manage(actor: User, session: ProjectSession) -> bool:
    """The owner of the session's project (check-in code, attendance, cancel, delivery)."""
    return may(actor, "project.own", _project(session))


@rule("session.signup")
def _session_signup(actor: User, session: ProjectSession) -> bool:
    return in_community(actor, Role.MEMBER, session.community_id)


@rule("session.attend")
def _session_attend(actor: User, session: ProjectSession) -> bool:
    """A member of the community checks themself in (with the code)."""
    return in_community(actor, Role.MEMBER, session.community_id)
