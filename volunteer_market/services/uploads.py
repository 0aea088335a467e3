"""Uploaded images (project covers, delivery photos): checked by content, stored privately.

Files go to a directory outside ``static/`` (the caller passes ``instance/uploads``)
under a random name; only that name is stored in the database, and pages serve
them through views that check who may see the object.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from .errors import ValidationFailed

MAX_IMAGE_BYTES = 2 * 1024 * 1024

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{20,64}\.(png|jpg|webp)$")

MIME_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}


def sniff_image(data: bytes) -> str | None:
    """Return ``png``, ``jpg`` or ``webp`` from the file's magic bytes, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def check_image(data: bytes, field: str) -> str:
    """Return the image type of ``data``.

    :raises ValidationFailed: empty, larger than 2 MB, or not PNG/JPEG/WebP.
    """
    if not data:
        raise ValidationFailed("The file is empty.", errors={field: ["The file is empty."]})
    if len(data) > MAX_IMAGE_BYTES:
        raise ValidationFailed(
            "The image is too large.", errors={field: ["The image must be at most 2 MB."]}
        )
    kind = sniff_image(data)
    if kind is None:
        raise ValidationFailed(
            "Unsupported image type.", errors={field: ["Only PNG, JPEG or WebP images."]}
        )
    return kind


def store_image(data: bytes, directory: str | os.PathLike[str], field: str = "file") -> str:
    """Check ``data`` and write it under ``directory`` with a random name; return the name."""
    kind = check_image(data, field)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_urlsafe(24)}.{kind}"
    path = folder / name
    with open(path, "xb") as fh:
        fh.write(data)
    return name


def image_path(directory: str | os.PathLike[str], name: str | None) -> Path | None:
    """Return the path of a stored image, or None for a missing or malformed name."""
    if not name or not _NAME_RE.match(name):
        return None
    path = Path(directory) / name
    return path if path.is_file() else None


def remove(directory: str | os.PathLike[str], name: str | None) -> None:
    """Delete a stored image if it exists (used when its transaction fails)."""
    path = image_path(directory, name)
    if path is not None:
        path.unlink(missing_ok=True)


def mime_type(name: str) -> str:
    return MIME_TYPES[name.rsplit(".", 1)[-1]]
