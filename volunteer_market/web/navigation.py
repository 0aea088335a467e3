"""The phone-first navigation: a bottom bar of four items per role, plus "更多".

Each role has its own bar (:data:`BARS`): the pages that person opens most, each shown
only where the policy allows it (``permissions.may``); a person with several roles gets
the bar of the highest role he holds (:data:`ROLE_ORDER`). "更多" (More) opens every
page the person may reach (``templates/_nav.html``), the profile and sign-out, so
"退出" sits at the bottom of that menu, far from the language switch in the top bar.

The large-text mode (大字, 适老化) is page chrome too: :func:`large_text` says whether
this page is drawn large (the signed-in person's stored choice, else the
:data:`TEXT_COOKIE` of an anonymous visitor, e.g. on ``/rate``); ``base.html`` then
sets ``class="large-text"`` on ``<html>`` and ``style.css`` scales the root font-size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from ..models import Role, User
from ..services import permissions

#: The cookie that remembers the large-text mode of a browser (``large`` or ``normal``).
TEXT_COOKIE = "vm_text"

#: The most items a bar holds before "更多" (five slots of 72 px on a 360 px phone: the
#: English labels need that width; the brief allows at most five).
MAX_ITEMS = 4


@dataclass(frozen=True)
class Item:
    endpoint: str
    label: Any  # a lazy translated string
    action: str | None = None  # the policy action that must allow it (None: everyone)


HOME = Item("web_main.home", _l("首页"))
#: "消息" rather than "通知": "Notifications" is too long for a 72 px slot in English.
NOTIFICATIONS = Item("web_notifications.notifications", _l("消息"))
PROJECTS = Item("web_projects.projects", _l("项目广场"))
NEEDS = Item("web_needs.needs", _l("需求"))
RANKINGS = Item("web_rankings.leaderboard", _l("排行榜"))

#: The bar of each role, in order (HOME first, NOTIFICATIONS last).
BARS: dict[Role | None, tuple[Item, ...]] = {
    Role.ADMIN: (
        HOME,
        Item("web_admin.users", _l("用户"), "user.create"),
        Item("web_admin.areas", _l("区域"), "area.create"),
        NOTIFICATIONS,
    ),
    Role.OFFICER: (
        HOME,
        Item("web_evaluations.annual", _l("年度考核"), "reports.annual_page"),
        RANKINGS,
        NOTIFICATIONS,
    ),
    Role.SECRETARY: (
        HOME,
        Item("web_projects.review_queue", _l("项目审核"), "project.review_queue"),
        Item("web_ratings.queue", _l("待结算"), "settlement.queue"),
        NOTIFICATIONS,
    ),
    Role.GRID_WORKER: (HOME, NEEDS, PROJECTS, NOTIFICATIONS),
    Role.MEMBER: (
        HOME,
        PROJECTS,
        Item("web_ledger.my_points", _l("我的积分"), "ledger.wallet"),
        NOTIFICATIONS,
    ),
    Role.RESIDENT: (
        HOME,
        Item("web_ratings.inbox", _l("评价"), "rating.inbox"),
        NEEDS,
        NOTIFICATIONS,
    ),
    None: (HOME, PROJECTS, NEEDS, NOTIFICATIONS),
}

#: Whose bar a person with several roles gets: the first role of this order he holds.
ROLE_ORDER = (
    Role.ADMIN,
    Role.SECRETARY,
    Role.OFFICER,
    Role.GRID_WORKER,
    Role.MEMBER,
    Role.RESIDENT,
)


def bar_role(user: User) -> Role | None:
    """Return the role whose bar ``user`` sees (None: no role yet)."""
    held = {g.role for g in user.grants}
    return next((role for role in ROLE_ORDER if role in held), None)


def bar_items(user: User) -> list[dict[str, Any]]:
    """Return the bottom bar of ``user``: at most :data:`MAX_ITEMS` allowed pages."""
    items = []
    for item in BARS[bar_role(user)]:
        if item.action is not None and not permissions.may(user, item.action):
            continue
        href = url_for(item.endpoint)
        items.append(
            {
                "href": href,
                "label": item.label,
                "current": request.path == href,
                "endpoint": item.endpoint,
            }
        )
    return items[:MAX_ITEMS]


def large_text() -> bool:
    """Return True if this page is drawn in the large-text mode."""
    if current_user.is_authenticated:
        return bool(current_user.large_text)
    return request.cookies.get(TEXT_COOKIE) == "large"


def register(app: Flask) -> None:
    """Make ``bottom_nav()`` and ``large_text()`` template globals."""

    @app.context_processor
    def _navigation() -> dict[str, Any]:
        def bottom_nav() -> list[dict[str, Any]]:
            return bar_items(current_user) if current_user.is_authenticated else []

        return {"bottom_nav": bottom_nav, "large_text": large_text}
