"""Reading deliveries: get one (people loaded), the SQL twin of ``delivery.view`` for
lists, a project's deliveries, and the two reads ratings and settlement share: the
delivery row locked ``FOR UPDATE`` and the scores given for it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from ...extensions import db
from ...models import (
    Area,
    Delivery,
    DeliveryBeneficiary,
    DeliveryNoShow,
    DeliveryParticipant,
    Project,
    Rating,
    Role,
    TeamMembership,
    TeamStatus,
    User,
)
from .. import permissions
from ..errors import NotFound


def get_delivery(delivery_id: int) -> Delivery:
    """Return the delivery with participants, beneficiaries and no-shows loaded."""
    delivery = db.session.execute(
        sa.select(Delivery)
        .where(Delivery.id == delivery_id)
        .options(
            selectinload(Delivery.participants).joinedload(DeliveryParticipant.user),
            selectinload(Delivery.beneficiaries).joinedload(DeliveryBeneficiary.user),
            selectinload(Delivery.no_shows).joinedload(DeliveryNoShow.user),
            joinedload(Delivery.project),
        )
    ).scalar_one_or_none()
    if delivery is None:
        raise NotFound("Delivery not found.")
    return delivery


def get_visible_delivery(actor: User, delivery_id: int, *, with_people: bool = True) -> Delivery:
    """Return the delivery if ``actor`` may see it, else raise :class:`NotFound`.

    ``with_people=False``: the delivery row alone, without its participants,
    beneficiaries, no-shows (with their users) and project -- for a write handler that
    presents none of them (rating, settling): the service locks and reads what it needs,
    and the unloaded relationships raise rather than load by surprise.
    """
    found = (
        get_delivery(delivery_id)
        if with_people
        else db.session.execute(
            sa.select(Delivery).where(Delivery.id == delivery_id)
        ).scalar_one_or_none()
    )
    if found is None:
        raise NotFound("Delivery not found.")
    delivery: Delivery = found
    if not permissions.may(actor, "delivery.view", delivery):
        raise NotFound("Delivery not found.")
    return delivery


def visible_condition(actor: User) -> sa.ColumnElement[bool]:
    """Return the SQL twin of the ``delivery.view`` rule for lists."""
    if permissions.is_admin(actor):
        return sa.true()
    conds: list[sa.ColumnElement[bool]] = [
        Delivery.recorded_by_id == actor.id,
        Delivery.project_id.in_(
            sa.select(Project.id).where(
                sa.or_(
                    Project.owner_id == actor.id,
                    Project.id.in_(
                        sa.select(TeamMembership.project_id).where(
                            TeamMembership.user_id == actor.id,
                            TeamMembership.status == TeamStatus.ACTIVE,
                        )
                    ),
                )
            )
        ),
        Delivery.id.in_(
            sa.select(DeliveryParticipant.delivery_id).where(
                DeliveryParticipant.user_id == actor.id
            )
        ),
        Delivery.id.in_(
            sa.select(DeliveryBeneficiary.delivery_id).where(
                DeliveryBeneficiary.user_id == actor.id
            )
        ),
    ]
    staff = permissions.communities_of(actor, [Role.SECRETARY, Role.GRID_WORKER])
    if staff:
        conds.append(Delivery.community_id.in_(staff))
    officer_areas = permissions.grant_areas(actor, [Role.OFFICER])
    if officer_areas:
        conds.append(
            Delivery.community_id.in_(
                sa.select(Area.id).where(
                    sa.or_(*[Area.path.startswith(a.path, autoescape=True) for a in officer_areas])
                )
            )
        )
    return sa.or_(*conds)


def list_deliveries(
    actor: User, *, project_id: int | None = None, community_id: int | None = None
) -> sa.Select[Delivery]:
    """Return a SELECT of the deliveries ``actor`` may see, newest first (people loaded)."""
    stmt = (
        sa.select(Delivery)
        .where(visible_condition(actor))
        .options(
            selectinload(Delivery.participants).joinedload(DeliveryParticipant.user),
            selectinload(Delivery.beneficiaries).joinedload(DeliveryBeneficiary.user),
            selectinload(Delivery.no_shows),
        )
        .order_by(Delivery.started_at.desc(), Delivery.id.desc())
    )
    if project_id is not None:
        stmt = stmt.where(Delivery.project_id == project_id)
    if community_id is not None:
        stmt = stmt.where(Delivery.community_id == community_id)
    return stmt


def deliveries_of(project: Project) -> list[Delivery]:
    """Return the project's deliveries, newest first, participants loaded (no N+1)."""
    return list(
        db.session.execute(
            sa.select(Delivery)
            .where(Delivery.project_id == project.id)
            .options(
                selectinload(Delivery.participants).joinedload(DeliveryParticipant.user),
                selectinload(Delivery.beneficiaries),
                selectinload(Delivery.no_shows),
            )
            .order_by(Delivery.started_at.desc(), Delivery.id.desc())
        ).scalars()
    )


def lock_delivery(delivery_id: int) -> Delivery:
    """Lock the delivery row (``FOR UPDATE``) and return it freshly read.

    :raises NotFound: no such delivery.
    """
    delivery = db.session.execute(
        sa.select(Delivery)
        .where(Delivery.id == delivery_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if delivery is None:
        raise NotFound("Delivery not found.")
    return delivery


def project_title(delivery: Delivery) -> str:
    """Return the title of the delivery's project (the project the request's checks
    loaded is held for the transaction: ``services/session_hold``)."""
    project = db.session.get(Project, delivery.project_id)
    assert project is not None  # a foreign key
    return project.title


def scores_of(delivery_id: int) -> list[int]:
    """Return the scores given for the delivery, in id order."""
    return list(
        db.session.scalars(
            sa.select(Rating.score).where(Rating.delivery_id == delivery_id).order_by(Rating.id)
        )
    )
