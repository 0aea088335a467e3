"""Input of ratings: the score, the comment or reply text, and the one generic refusal
of a rating code or QR token that does not open a rating.
"""

from __future__ import annotations

import re
from typing import Any

from ...models.ratings import COMMENT_MAX
from ..errors import ValidationFailed
from ..points_policy import MAX_SCORE, MIN_SCORE

CODE_RE = re.compile(r"^\d{6}$")
#: One message for a wrong, used or expired code/token: it must not tell which.
INVALID_CODE_MESSAGE = "This rating code is not valid: it may be mistyped, already used or expired."


class InvalidRatingCode(ValidationFailed):
    """A code or token that does not open a rating (wrong, used, expired): 422."""

    def __init__(self, field: str = "code") -> None:
        super().__init__(INVALID_CODE_MESSAGE, errors={field: [INVALID_CODE_MESSAGE]})


def clean_score(score: Any) -> int:
    """Return the score as an int 1..5.

    :raises ValidationFailed: anything else (bools, fractions, strings).
    """
    if isinstance(score, bool) or not isinstance(score, int) or not MIN_SCORE <= score <= MAX_SCORE:
        raise ValidationFailed(
            "The score must be a whole number from 1 to 5.",
            errors={"score": [f"A whole number from {MIN_SCORE} to {MAX_SCORE}."]},
        )
    return score


def clean_text(text: Any, field: str = "comment", *, required: bool = False) -> str | None:
    """Return the stripped text (None when empty and optional).

    :raises ValidationFailed: missing when required, not a string, or too long.
    """
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise ValidationFailed("Invalid text.", errors={field: ["Must be text."]})
    text = text.strip()
    if not text:
        if required:
            raise ValidationFailed("Text is required.", errors={field: ["Required."]})
        return None
    if len(text) > COMMENT_MAX:
        raise ValidationFailed(
            "The text is too long.", errors={field: [f"At most {COMMENT_MAX} characters."]}
        )
    return text
