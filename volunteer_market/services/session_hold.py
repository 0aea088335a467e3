"""Areas and projects loaded in a transaction stay in the session until it ends (issue 21).

The session's identity map holds objects weakly: an area or project read for a
permission check was dropped as soon as the check returned, and the posting, the rankings
rollups, the annual rollups and the notifications of the same rating each read it again
(the community's area six times and the project's title twice per rating that settles).
Held, ``session.get(Area, id)``, ``session.get(Project, id)`` and many-to-one loads find
them without a statement.

Freshness is what it was: the identity map never refreshes a live object (only
``populate_existing`` does, and still does), and the hold ends with the outermost
transaction -- commit, rollback or close -- so the next transaction reads them again.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..models import Area, Project

HELD = "session_hold.held"
HELD_CLASSES = (Area, Project)


def _hold(instance: Any, context: Any) -> None:
    session = context.session
    if session is not None:
        session.info.setdefault(HELD, {})[(type(instance), instance.id)] = instance


for _cls in HELD_CLASSES:
    sa.event.listen(_cls, "load", _hold)


@sa.event.listens_for(Session, "after_transaction_end")
def _release(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(HELD, None)
