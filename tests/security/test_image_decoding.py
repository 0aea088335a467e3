"""Uploaded images are decoded, bounded and re-encoded (issue 20, item 7).

Before: an upload was checked by its first bytes only -- a PNG signature in front of
anything was stored and served as ``image/png``, a truncated file was accepted, a
decompression bomb's header was not looked at, and a photo kept its EXIF GPS position.
"""

from __future__ import annotations

import io
import os
import struct
import zlib

import pytest
from PIL import ExifTags, Image, PngImagePlugin

from volunteer_market.models import Project
from volunteer_market.services import uploads
from volunteer_market.services.errors import ValidationFailed

from ..conftest import csrf_token, login
from ..factories import bearer, image_bytes, make_project


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(width: int, height: int) -> bytes:
    """A valid grey PNG of ``width`` x ``height`` pixels, all zero: kilobytes on disk."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def header_only_png(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (beyond Pillow's own bomb limit)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b"")


def gps_exif(orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyPhone"
    exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (30.0, 33.0, 7.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (114.0, 16.0, 2.5)
    return exif.tobytes()


@pytest.fixture
def folder(app, tmp_path):
    path = tmp_path / "uploads"
    app.config["UPLOAD_FOLDER"] = str(path)
    return path


@pytest.fixture
def cover(client, world, folder):
    """PUT bytes as a draft's cover through the API; return (response, project id)."""
    project = make_project(world.member_a, world.community_a)
    headers = bearer(world.member_a)

    def put(data: bytes, filename: str = "x.png"):
        return client.put(
            f"/api/v1/projects/{project.id}/cover",
            data={"file": (io.BytesIO(data), filename)},
            content_type="multipart/form-data",
            headers=headers,
        )

    def served() -> bytes:
        got = client.get(f"/api/v1/projects/{project.id}/cover", headers=headers)
        assert got.status_code == 200
        data = got.data
        got.close()
        return data

    put.served = served  # type: ignore[attr-defined]
    return put


def _refused(resp, folder, words: str) -> None:
    assert resp.status_code == 422, resp.get_json()
    body = resp.get_json()
    assert words in " ".join(body["errors"]["file"])
    assert not folder.is_dir() or os.listdir(folder) == []


@pytest.mark.parametrize("kind", ["png", "jpg", "webp"])
def test_a_truncated_image_is_refused(cover, folder, kind):
    whole = image_bytes(kind, size=(64, 48))
    _refused(cover(whole[: len(whole) // 2]), folder, "not a valid")


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n" + b"<script>alert(1)</script>" * 20,  # PNG header + garbage
        b"\xff\xd8\xff\xe0" + b"\x00" * 64,  # JPEG marker + zeros
        b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 64,  # WebP header + zeros
        image_bytes("jpg")[:3] + image_bytes("png"),  # a JPEG marker in front of a PNG
    ],
    ids=["png-garbage", "jpeg-zeros", "webp-zeros", "jpeg-marker-png"],
)
def test_a_header_in_front_of_something_else_is_refused(cover, folder, data):
    _refused(cover(data), folder, "not a valid")


def test_bytes_after_the_image_are_not_stored(cover, folder):
    payload = b"PK\x03\x04<html><script>alert(1)</script></html>"
    resp = cover(image_bytes("png") + payload)
    assert resp.status_code == 200
    assert payload not in cover.served()


def test_a_decompression_bomb_is_refused_before_decoding(cover, folder):
    bomb = bomb_png(8000, 6000)  # 48 MP of zeros in about 50 KB
    assert len(bomb) < 100_000
    _refused(cover(bomb), folder, "40 megapixels")
    # a header beyond Pillow's own limit (179 MP, where it raises) is a 422 as well
    _refused(cover(header_only_png(20000, 20000)), folder, "40 megapixels")


def test_a_large_but_allowed_image_is_accepted():
    kind, clean = uploads.clean_image(bomb_png(2000, 1500), "file")  # 3 MP
    assert kind == "png"
    with Image.open(io.BytesIO(clean)) as img:
        assert img.size == (2000, 1500)


def test_exif_gps_is_stripped_and_the_photo_turned_upright(cover):
    uploaded = image_bytes("jpg", size=(40, 30), exif=gps_exif(orientation=6))
    with Image.open(io.BytesIO(uploaded)) as before:  # the fixture really carries GPS
        assert before.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert cover(uploaded, "photo.jpg").status_code == 200
    stored = cover.served()
    with Image.open(io.BytesIO(stored)) as img:
        assert img.format == "JPEG"
        assert not img.getexif() and "exif" not in img.info
        assert img.size == (30, 40)  # orientation 6: rotated, then the tag dropped
    assert b"SpyPhone" not in stored and b"GPS" not in stored


@pytest.mark.parametrize("kind", ["png", "webp"])
def test_metadata_is_stripped_from_png_and_webp(kind):
    extra: dict = {"exif": gps_exif()}
    if kind == "png":
        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", "home: 3 栋 401")
        extra["pnginfo"] = info
    uploaded = image_bytes(kind, size=(8, 8), **extra)
    assert b"SpyPhone" in uploaded
    got_kind, clean = uploads.clean_image(uploaded, "file")
    assert got_kind == kind and b"SpyPhone" not in clean
    with Image.open(io.BytesIO(clean)) as img:
        assert not img.getexif() and "Comment" not in img.info and img.size == (8, 8)


def test_transparency_survives(tmp_path):
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    out = io.BytesIO()
    img.save(out, "PNG")
    _kind, clean = uploads.clean_image(out.getvalue(), "file")
    with Image.open(io.BytesIO(clean)) as back:
        assert back.mode == "RGBA" and back.getpixel((0, 0))[3] == 0


def test_service_refusal_names_the_field():
    with pytest.raises(ValidationFailed) as caught:
        uploads.clean_image(b"\x89PNG\r\n\x1a\n" + b"x" * 10, "cover")
    assert list(caught.value.errors) == ["cover"]


def test_the_page_form_refuses_a_polyglot_in_chinese(client, world, folder):
    from volunteer_market.extensions import db

    project = make_project(world.member_a, world.community_a)
    login(client, "member_a")
    page = f"/projects/{project.id}/edit"
    resp = client.post(
        page,
        data={
            "csrf_token": csrf_token(client, page),
            "title": project.title,
            "cover": (io.BytesIO(b"\x89PNG\r\n\x1a\n<svg onload=alert(1)>"), "x.png"),
        },
        content_type="multipart/form-data",
    )
    assert resp.status_code == 422
    assert "不是有效的 PNG、JPEG 或 WebP 图片" in resp.get_data(as_text=True)
    db.session.rollback()
    assert db.session.get(Project, project.id, populate_existing=True).cover_path is None
    assert not folder.is_dir() or os.listdir(folder) == []
