"""Which evaluations a user sees listed (the lifecycle pages).

* staff: :func:`evaluations_in` -- every evaluation of the communities of an area's
  subtree (``evaluation.list``: the community's secretary, an officer over it, admin);
* members and residents: :func:`published_for` -- the published lists (in notice or
  final) of their communities, what ``evaluation.view`` lets them read;
* :func:`objections_visible` -- an evaluation's objections as the viewer may read them:
  all of them for the secretary and officers, only their own for anyone else.
"""

from __future__ import annotations

import sqlalchemy as sa

from ...extensions import db
from ...models import Area, Evaluation, EvaluationStatus, Objection, Role, User
from .. import permissions


def evaluations_in(actor: User, area: Area) -> list[Evaluation]:
    """Return the evaluations of ``area``'s communities, newest year first.

    :raises Forbidden: the actor may not list the area's evaluations.
    """
    permissions.require(actor, "evaluation.list", area)
    return list(
        db.session.scalars(
            sa.select(Evaluation)
            .join(Area, Area.id == Evaluation.community_id)
            .where(Area.path.startswith(area.path, autoescape=True))
            .order_by(Evaluation.year.desc(), Area.path)
        )
    )


def published_for(actor: User) -> list[Evaluation]:
    """Return the published evaluations of the communities where ``actor`` is a member
    or a resident, newest year first."""
    ids = permissions.communities_of(actor, [Role.MEMBER, Role.RESIDENT])
    if not ids:
        return []
    return list(
        db.session.scalars(
            sa.select(Evaluation)
            .where(
                Evaluation.community_id.in_(sorted(ids)),
                Evaluation.status != EvaluationStatus.CLOSED,
            )
            .order_by(Evaluation.year.desc(), Evaluation.community_id)
        )
    )


def objections_visible(actor: User, evaluation: Evaluation) -> list[Objection]:
    """Return the objections of ``evaluation`` the actor may read, oldest first."""
    stmt = sa.select(Objection).where(Objection.evaluation_id == evaluation.id)
    if not permissions.may(actor, "evaluation.view_full", evaluation):
        stmt = stmt.where(Objection.filed_by_id == actor.id)
    return list(db.session.scalars(stmt.order_by(Objection.id)))
