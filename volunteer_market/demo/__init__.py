"""The Hanyang demo data set (汉阳区), loaded through the services.

``flask --app wsgi demo load`` (and ``demo serve``) call :func:`load_demo`, the one
public entry. The parts, in the order they load:

``people``    the area tree and one account of every role (``common.DEMO_PASSWORD``)
``ledger``    the default points policy and two secretary adjustments
``projects``  projects in every state, teams, needs and deliveries of the last days
``ratings``   ratings (own, proxy, reply) and settlements, the 24-point example
``rewards``   rewards of the community and partner units, redemptions in every state
``sessions``  two sessions of 义务理发: one past with attendance, one to come

Each part is idempotent on its own (it finds what it made, or uses fixed idempotency
keys) and opens its own ``atomic()`` blocks, so a second load changes nothing. The
parts share only ``demo.common``; this module imports the parts, never the reverse.
"""

from __future__ import annotations

from collections.abc import Callable

from . import ledger, people, projects, ratings, rewards, sessions
from .common import DEMO_PASSWORD, demo_user
from .people import HANYANG, PEOPLE, demo_logins

__all__ = [
    "DEMO_PASSWORD",
    "HANYANG",
    "LOADERS",
    "PEOPLE",
    "demo_logins",
    "demo_user",
    "load_demo",
]

#: The parts' loaders, in dependency order (each needs the ones before it).
LOADERS: tuple[Callable[[], None], ...] = (
    people.load,
    ledger.load,
    projects.load,
    ratings.load,
    rewards.load,
    sessions.load,
)


def load_demo() -> list[tuple[str, str, str]]:
    """Load whatever part of the demo is missing; return ``(username, role, where)`` logins."""
    for load in LOADERS:
        load()
    return demo_logins()
