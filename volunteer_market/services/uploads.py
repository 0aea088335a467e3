"""Uploaded images (project covers, delivery photos, reward pictures): decoded,
re-encoded without metadata, stored privately.

An upload is accepted only if Pillow decodes it completely as the PNG, JPEG or WebP its
first bytes announce, with at most :data:`MAX_IMAGE_PIXELS` pixels (the size is read
from the header before any pixel is decoded, so a decompression bomb costs nothing).
What is stored is a fresh encoding of the decoded pixels (turned upright by its EXIF
orientation first): no EXIF (GPS position, camera, time), XMP or text chunks, nothing
appended after the image (a polyglot's payload), only the pixels, the transparency and
the colour profile.

Files go to a directory outside ``static/`` (the caller passes ``instance/uploads``)
under a random name; only that name is stored in the database, and pages serve
them through views that check who may see the object.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from .errors import ValidationFailed

MAX_IMAGE_BYTES = 2 * 1024 * 1024
#: At most 40 megapixels (8000 x 5000): decoded as RGBA that is 160 MB of memory.
MAX_IMAGE_PIXELS = 40_000_000

_PIL_FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}
#: Image info kept by the re-encoding (everything else, EXIF and XMP first, is dropped).
_KEPT_INFO = ("transparency", "icc_profile")

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


def _refuse(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors={field: [message]})


def check_image(data: bytes, field: str) -> str:
    """Return the image type of ``data`` by its first bytes (see :func:`clean_image`).

    :raises ValidationFailed: empty, larger than 2 MB, or not PNG/JPEG/WebP.
    """
    if not data:
        raise _refuse(field, "The file is empty.")
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


def clean_image(data: bytes, field: str) -> tuple[str, bytes]:
    """Decode ``data`` completely and return its type and a fresh encoding without metadata.

    :raises ValidationFailed: empty, larger than 2 MB, not PNG/JPEG/WebP by its first
        bytes, more than :data:`MAX_IMAGE_PIXELS` pixels, or not decodable to the end
        as that type (truncated, corrupt, a header in front of something else).
    """
    kind = check_image(data, field)
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb check warns above 89 MP (and raises above twice that).
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[kind]]) as img:
                width, height = img.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise _too_many_pixels(field)
                img.load()
                upright = ImageOps.exif_transpose(img)
                return kind, _encode(upright, kind, img.info)
    except ValidationFailed:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(field) from None
    except Exception:  # any failure to decode untrusted bytes means "not an image"
        raise _refuse(field, "The file is not a valid PNG, JPEG or WebP image.") from None


def _too_many_pixels(field: str) -> ValidationFailed:
    return _refuse(field, "The image has more than 40 megapixels.")  # MAX_IMAGE_PIXELS


def _encode(img: Image.Image, kind: str, info: Mapping[Any, Any]) -> bytes:
    img.info = {k: info[k] for k in _KEPT_INFO if k in info}
    out = io.BytesIO()
    if kind == "jpg":
        if img.mode not in ("L", "RGB"):
            img = img.convert("RGB")
        img.save(out, "JPEG", quality=90, icc_profile=img.info.get("icc_profile"))
    elif kind == "png":
        if img.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"):
            img = img.convert("RGBA")
        img.save(out, "PNG")
    else:
        if img.mode not in ("RGB", "RGBA"):
            img = img.convert("RGBA" if "A" in img.mode or "transparency" in img.info else "RGB")
        img.save(out, "WEBP", quality=90)
    return out.getvalue()


def store_image(data: bytes, directory: str | os.PathLike[str], field: str = "file") -> str:
    """Check and re-encode ``data`` (:func:`clean_image`) and write it under ``directory``
    with a random name; return the name.

    :raises ValidationFailed: not an acceptable image.
    """
    kind, clean = clean_image(data, field)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_urlsafe(24)}.{kind}"
    path = folder / name
    with open(path, "xb") as fh:
        fh.write(clean)
    return name


def image_path(directory: str | os.PathLike[str], name: str | None) -> Path | None:
    """Return the path of a stored image, or None for a missing or malformed name."""
    if not name or not _NAME_RE.match(name):
        return None
    path = Path(directory) / name
    return path if path.is_file() else None


def remove(directory: str | os.PathLike[str], name: str | None) -> None:
    """Delete a stored image if it exists (its transaction failed, or it was replaced)."""
    path = image_path(directory, name)
    if path is not None:
        path.unlink(missing_ok=True)


def mime_type(name: str) -> str:
    return MIME_TYPES[name.rsplit(".", 1)[-1]]
