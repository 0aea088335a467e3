"""Where uploaded images live and how they are read from a request and served (after
the caller's visibility check). The checks on the bytes are in ``services/uploads.py``."""

from __future__ import annotations

from pathlib import Path

from flask import Response, abort, current_app, send_file
from werkzeug.datastructures import FileStorage

from ..services import uploads


def upload_dir() -> Path:
    """Return the private upload folder (``UPLOAD_FOLDER`` or ``instance/uploads``)."""
    configured = current_app.config.get("UPLOAD_FOLDER")
    return Path(configured) if configured else Path(current_app.instance_path) / "uploads"


def read_upload(storage: FileStorage | None) -> bytes:
    """Return the bytes of an uploaded file (at most 2 MB + 1 byte are read)."""
    if storage is None:
        return b""
    return storage.stream.read(uploads.MAX_IMAGE_BYTES + 1)


def save_upload(storage: FileStorage | None, field: str) -> str | None:
    """Check and store an uploaded image; return its stored name (None if no file was sent).

    :raises ValidationFailed: too large or not PNG/JPEG/WebP.
    """
    if storage is None or not storage.filename:
        return None
    return uploads.store_image(read_upload(storage), upload_dir(), field)


def send_upload(name: str | None) -> Response:
    """Send a stored image (404 if missing); private caching, no sniffing."""
    path = uploads.image_path(upload_dir(), name)
    if path is None or name is None:
        abort(404)
    resp = send_file(path, mimetype=uploads.mime_type(name), max_age=300)
    resp.headers["Cache-Control"] = "private, max-age=300"
    return resp
