"""Domain errors raised by services; the app maps each to one HTTP status."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base class: a business rule refused the request."""

    status = 400
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: dict[str, list[str]] | None = None,
        keep_writes: bool = False,
        **extra: Any,
    ):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        #: Commit what the transaction wrote before refusing (``database.atomic``): a
        #: refusal that must leave a trace, e.g. a counted wrong pickup code.
        self.keep_writes = keep_writes
        self.extra = extra


class AuthenticationFailed(DomainError):
    status = 401
    title = "Unauthorized"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Conflict(DomainError):
    """Wrong state, taken, duplicate, or not enough balance/stock."""

    status = 409
    title = "Conflict"


class ValidationFailed(DomainError):
    """Input that is well-formed but breaks a rule; carries field errors."""

    status = 422
    title = "Unprocessable entity"


class TooManyAttempts(DomainError):
    """Refused for a while after too many failed tries (429 with ``Retry-After``)."""

    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, **kwargs: Any):
        super().__init__(detail, **kwargs)
        self.retry_after = retry_after


class InsufficientPoints(Conflict):
    """A member's available or held balance would go below zero (409)."""


class AlreadyReversed(Conflict):
    """A ledger transaction can be reversed only once (409)."""
