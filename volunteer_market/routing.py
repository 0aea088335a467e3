"""URL converters of the app (registered in :func:`volunteer_market.create_app`)."""

from __future__ import annotations

from werkzeug.routing import IntegerConverter, Map

from .schemas.common import MAX_ID


def digits_up_to(limit: int) -> str:
    """Return a regular expression matching the decimal numbers from 0 to ``limit``
    (leading zeros allowed as long as the length does not exceed ``limit``'s).

    ASCII digits only: ``\\d`` would also match other scripts' digits (``١٢``), which
    ``int()`` reads as a number -- one id would have many spellings.
    """
    top = str(limit)
    options = [f"[0-9]{{1,{len(top) - 1}}}"] if len(top) > 1 else []
    for i, digit in enumerate(top):
        if digit != "0":
            rest = len(top) - i - 1
            options.append(f"{top[:i]}[0-{int(digit) - 1}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    options.append(top)
    return "(?:" + "|".join(options) + ")"


class IdConverter(IntegerConverter):
    """The app's ``<int:...>``: 0 to :data:`~volunteer_market.schemas.common.MAX_ID`.

    A larger number matches no route (404, like any unknown id) instead of reaching SQL,
    where it would overflow the database driver (a 500). The bound is in the regular
    expression, not only in ``to_python``: werkzeug answers 405 for a path whose other
    rules differ by method when a converter rejects the value after matching. The
    OpenAPI document shows the bound as the path parameter's ``maximum``. Only ASCII
    digits match (``/projects/١`` and ``/projects/²`` are 404).
    """

    regex = digits_up_to(MAX_ID)

    def __init__(
        self,
        map: Map,  # noqa: A002  (werkzeug's names)
        fixed_digits: int = 0,
        min: int | None = None,  # noqa: A002
        max: int | None = MAX_ID,  # noqa: A002
        signed: bool = False,
    ) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)
