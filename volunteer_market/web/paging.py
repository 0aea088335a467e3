"""Paged lists of the pages: the ``page`` argument and one page of a query."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import request

from ..extensions import db

#: The highest page number a page asks for (further pages are empty anyway).
MAX_PAGE = 100000


def page_arg() -> int:
    """Return the ``page`` query argument, 1 to :data:`MAX_PAGE` (1 if it is no number)."""
    try:
        return max(1, min(int(request.args.get("page", "1")), MAX_PAGE))
    except ValueError:
        return 1


def paginate(
    stmt: sa.Select[*tuple[Any, ...]], page: int, per_page: int, *, rows: bool = False
) -> dict[str, Any]:
    """Run ``stmt`` for one page and count the total; return ``{items, page, per_page,
    total}``. Items are the first column's objects (made unique, for queries with
    joined eager loads), or whole rows with ``rows=True``."""
    total = db.session.execute(
        sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())
    ).scalar_one()
    result = db.session.execute(stmt.limit(per_page).offset((page - 1) * per_page))
    items = list(result) if rows else list(result.unique().scalars())
    return {"items": items, "page": page, "per_page": per_page, "total": total}
