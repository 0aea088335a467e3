"""Writing a generated section of docs/benchmarks.md between its two markers."""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def replace_section(begin: str, end: str, section: str, *, before: str | None = None) -> None:
    """Put ``section`` (which starts with ``begin`` and ends with ``end``) into the doc:
    in place of the current one, else before the marker ``before``, else at the end."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    elif before and before in text:
        head, rest = text.split(before, 1)
        text = head + section + "\n\n" + before + rest
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOC.write_text(text)
