"""Rules of notifications outside the app: a community's group-robot webhook
(docs/notifications.md). A person's own channels need no rule: only their own."""

from __future__ import annotations

from ...models import Area, User
from .community import _runs
from .core import is_admin, rule


@rule("community.webhook_manage")
def _webhook_manage(actor: User, community: Area | None) -> bool:
    """See (masked) and set a community's webhook URL: its secretary, an officer over
    it, the admin (as the points policy)."""
    if community is None:
        return False
    return is_admin(actor) or _runs(actor, community)
