"""Where uploaded images live, how they are read from a request, kept in step with the
write transaction that stores their names (:func:`upload_transaction`), and served
(after the caller's visibility check). The checks on the bytes are in
``services/uploads.py``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Response, abort, current_app, send_file
from werkzeug.datastructures import FileStorage

from ..database import writing
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


def send_upload(name: str | None) -> Response:
    """Send a stored image (404 if missing); private caching, no sniffing."""
    path = uploads.image_path(upload_dir(), name)
    if path is None or name is None:
        abort(404)
    resp = send_file(path, mimetype=uploads.mime_type(name), max_age=300)
    resp.headers["Cache-Control"] = "private, max-age=300"
    return resp


class TransactionUploads:
    """The files one write transaction stores and the files whose names it replaces."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.stored: list[str] = []
        self.replaced: list[str] = []

    def store(self, data: bytes, field: str) -> str:
        """Check and store ``data`` (removed again if the transaction fails); return its name.

        :raises ValidationFailed: not an acceptable image.
        """
        name = uploads.store_image(data, self.directory, field)
        self.stored.append(name)
        return name

    def save(self, storage: FileStorage | None, field: str) -> str | None:
        """:meth:`store` an uploaded file; None if no file was sent."""
        if storage is None or not storage.filename:
            return None
        return self.store(read_upload(storage), field)

    def replace(self, old_name: str | None) -> None:
        """Remove the file ``old_name`` once the transaction has committed."""
        if old_name:
            self.replaced.append(old_name)


@contextmanager
def upload_transaction() -> Iterator[TransactionUploads]:
    """Keep the upload folder in step with one write transaction: use it *outside* the
    transaction, ``with upload_transaction() as files, atomic():``.

    If the block fails (the transaction was rolled back or its commit failed), the files
    it stored are deleted; once it has committed, the files it replaced are deleted (a
    replaced cover or photo used to stay on disk for ever).
    """
    if writing():
        raise RuntimeError("upload_transaction() must be entered outside atomic()")
    files = TransactionUploads(upload_dir())
    try:
        yield files
    except BaseException:
        for name in files.stored:
            uploads.remove(files.directory, name)
        raise
    for name in files.replaced:
        if name not in files.stored:
            uploads.remove(files.directory, name)
