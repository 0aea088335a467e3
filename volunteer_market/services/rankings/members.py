"""What the rankings need to know of a member: suspended or not, and their member grants.

:class:`MemberState` answers whether a member may be ranked on an area's boards
(:meth:`MemberState.eligible_in`) and on which grids of a community a posting counts
(:meth:`MemberState.grids_at`); :func:`member_states` reads it for many members in
one query. Used by the posting hook, the eligibility flags and the rebuild.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ...extensions import db
from ...models import Area, AreaKind, Role, RoleGrant, User
from ..transaction_memo import TransactionMemo


@dataclass(frozen=True)
class MemberGrant:
    """One member grant of a member, with its area's path, parent and kind."""

    area_id: int
    path: str
    parent_id: int | None
    kind: AreaKind
    granted_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class MemberState:
    """What the rankings need of a member: suspended or not, and their member grants."""

    active: bool
    grants: tuple[MemberGrant, ...] = ()

    def eligible_in(self, path: str) -> bool:
        """May the member be ranked on the boards of the area at ``path``?

        No if suspended, or if their member role there has ended: an ended member
        grant on the area's subtree or on an ancestor, and no active one there (a
        member who moved from community A to C stays ranked in the district over
        both, but not in A or A's street unless C is in it)."""
        if not self.active:
            return False
        related = [g for g in self.grants if g.path.startswith(path) or path.startswith(g.path)]
        ended = any(g.revoked_at is not None for g in related)
        return not ended or any(g.revoked_at is None for g in related)

    def grids_at(self, community_id: int, at: datetime) -> tuple[int, ...]:
        """The grids of the community where the member held a member grant at ``at``."""
        return tuple(
            sorted(
                {
                    g.area_id
                    for g in self.grants
                    if g.kind == AreaKind.GRID
                    and g.parent_id == community_id
                    and g.granted_at <= at
                    and (g.revoked_at is None or g.revoked_at > at)
                }
            )
        )


@functools.cache
def _member_states_statement() -> sa.Select[Any]:
    """Users (``ids``, expanding) with each of their member grants and its area."""
    users, grants, areas = User.__table__, RoleGrant.__table__, Area.__table__
    granted = grants.join(areas, areas.c.id == grants.c.area_id)
    return (
        sa.select(
            users.c.id,
            users.c.is_active,
            grants.c.area_id,
            areas.c.path,
            areas.c.parent_id,
            areas.c.kind,
            grants.c.granted_at,
            grants.c.revoked_at,
        )
        .select_from(
            users.outerjoin(
                granted, sa.and_(grants.c.user_id == users.c.id, grants.c.role == Role.MEMBER)
            )
        )
        .where(users.c.id.in_(sa.bindparam("ids", expanding=True)))
    )


def _changes_member_state(obj: Any) -> bool:
    """A user whose ``is_active`` changed, or any role grant written, changes states."""
    if isinstance(obj, User):
        return sa.inspect(obj).attrs.is_active.history.has_changes()
    return True


#: Member states read once per user and transaction (issue 21: every posting of a
#: settlement read its member's, one statement each). Forgotten when a flush writes a
#: role grant or a user's ``is_active``, on any rollback, at the end of the transaction
#: (:mod:`..transaction_memo`); eligibility's refresh after such a flush reads afresh.
_STATES: TransactionMemo[MemberState | None] = TransactionMemo(
    "rankings.member_states", (User, RoleGrant), _changes_member_state
)


def member_states(user_ids: Iterable[int]) -> dict[int, MemberState]:
    """Return ``{user_id: MemberState}`` for existing users among ``user_ids`` (one query
    for those not read yet in this transaction)."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    found = _STATES.get_many(ids, _read_member_states, None)
    return {u: state for u, state in found.items() if state is not None}


def _read_member_states(ids: list[int]) -> dict[int, MemberState | None]:
    active: dict[int, bool] = {}
    grants: dict[int, list[MemberGrant]] = defaultdict(list)
    for r in db.session.connection().execute(_member_states_statement(), {"ids": ids}):
        active[r.id] = bool(r.is_active)
        if r.area_id is not None:
            grants[r.id].append(
                MemberGrant(
                    r.area_id,
                    r.path,
                    r.parent_id,
                    AreaKind(r.kind),
                    r.granted_at,
                    r.revoked_at,
                )
            )
    return {u: MemberState(a, tuple(grants.get(u, ()))) for u, a in active.items()}


def area_paths(community: Area, grid_ids: Iterable[int]) -> dict[int, str]:
    """Paths of the community's ancestors (inclusive) and of its grids ``grid_ids``."""
    ids = community.ancestor_ids()
    paths = {a: "/" + "/".join(map(str, ids[: i + 1])) + "/" for i, a in enumerate(ids)}
    for g in grid_ids:
        paths[g] = f"{community.path}{g}/"
    return paths
