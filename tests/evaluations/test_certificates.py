"""GET /api/v1/users/{id}/certificate: a PDF whose text states the figures and the
verification code, rendered to PNG by pdftoppm; the public verification page;
permissions and bad input."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader

from volunteer_market.services import evaluations

from ..conftest import login
from ..factories import bearer
from .conftest import rows_of_report


def _text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    return reader.pages[0].extract_text()


def test_certificate_states_the_figures_and_verifies(generated, client, tmp_path):
    g = generated
    w = g.world
    row = next(r for r in rows_of_report(client, w.secretary_a, w.community_a, g.year)
               if r["user_id"] == w.member_a.id)  # fmt: skip
    resp = client.get(
        f"/api/v1/users/{w.member_a.id}/certificate?year={g.year}", headers=bearer(w.member_a)
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    assert resp.mimetype == "application/pdf"
    assert resp.data.startswith(b"%PDF")
    # the embedded TrueType subset, and no fallback needed for these names
    assert b"/FontFile2" in resp.data and b"VMCertificateSerifSC" in resp.data
    assert b"STSong-Light" not in resp.data
    text = _text(resp.data)
    compact = "".join(text.split())
    assert "服务证明" in compact
    assert "member_a" in compact and "区卫健局" in compact and "龙湖东岸社区" in compact
    assert f"{row['hours']}小时" in compact
    assert f"服务{row['deliveries']}次" in compact
    assert f"获得积分{row['points_earned']}分" in compact
    code = compact.split("验证码：")[1][:16]
    assert evaluations.normalise_code(code) == code
    # Issued again: the same content, the same code.
    again = client.get(
        f"/api/v1/users/{w.member_a.id}/certificate?year={g.year}", headers=bearer(w.secretary_a)
    )
    assert "".join(_text(again.data).split()).split("验证码：")[1][:16] == code
    # The public page confirms it, name masked, no login needed.
    page = client.get(f"/certificates/verify?code={code.lower()[:8]}-{code.lower()[8:]}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "证明有效" in html and "m*******" in html and str(row["points_earned"]) in html
    assert "区卫健局" not in html and "13900000001" not in html
    wrong = client.get("/certificates/verify?code=0000000000000000").get_data(as_text=True)
    assert "未找到该证明" in wrong
    bad = client.get("/certificates/verify?code=xyz").get_data(as_text=True)
    assert "验证码格式不对" in bad
    # Render the page to PNG (looked at by hand: set VM_CERTIFICATE_DIR to keep it).
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed: apt-get install -y poppler-utils")
    artifacts = Path(os.environ.get("VM_CERTIFICATE_DIR") or tmp_path)
    artifacts.mkdir(exist_ok=True)
    pdf_path = artifacts / "certificate.pdf"
    pdf_path.write_bytes(resp.data)
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-r",
            "60",
            "-f",
            "1",
            "-l",
            "1",
            str(pdf_path),
            str(artifacts / "certificate"),
        ],
        check=True,
        timeout=60,
    )
    png = next(artifacts.glob("certificate-*1.png"))
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 5000


def _fonts(pdf: bytes) -> dict[str, bool]:
    """The page's fonts: base name -> whether its font program is embedded."""
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    out = {}
    for ref in page["/Resources"]["/Font"].values():
        font = ref.get_object()
        descriptor = font.get("/FontDescriptor")
        if descriptor is None and "/DescendantFonts" in font:
            descriptor = font["/DescendantFonts"][0].get_object().get("/FontDescriptor")
        embedded = descriptor is not None and any(
            k in descriptor.get_object() for k in ("/FontFile", "/FontFile2", "/FontFile3")
        )
        out[str(font["/BaseFont"])] = embedded
    return out


def test_the_font_is_embedded_and_covers_gb2312(app):
    """Every GB 2312 character and every character of the certificate's text is in the
    embedded font (a real glyph, not .notdef); a rare character is drawn in the CID
    fallback."""
    from volunteer_market.http import certificates

    covered = certificates._covered()
    gb = []
    for hi in range(0xA1, 0xF8):
        for lo in range(0xA1, 0xFF):
            with contextlib.suppress(UnicodeDecodeError):
                gb.append(bytes((hi, lo)).decode("gb2312"))
    assert len(gb) > 7000
    assert [c for c in gb if ord(c) not in covered] == []
    assert certificates.runs("张伟 Zhang Wei，2025年") == [
        (certificates.FONT, "张伟 Zhang Wei，2025年")
    ]
    assert certificates.runs("欧阳喆堃") == [
        (certificates.FONT, "欧阳"),
        (certificates.FALLBACK, "喆堃"),
    ]
    # pinyin with tones is embedded; letters neither font has print as a base letter
    assert certificates.runs("Lǚ Xiǎomíng") == [(certificates.FONT, "Lǚ Xiǎomíng")]
    assert certificates.runs("Łukasz Ŵ😀") == [(certificates.FONT, "Lukasz W?")]
    size = certificates.FONT_FILE.stat().st_size
    assert size < 3_500_000  # the subset, not the 20 MB collection
    licence = certificates.FONT_FILE.with_name("OFL.txt").read_text("utf-8")
    assert "SIL OPEN FONT LICENSE Version 1.1" in licence


def test_an_uncommon_name_renders(world, client, tmp_path):
    """A member named with characters outside GB 2312: the PDF embeds the subset for the
    rest, draws the rare Chinese ones in the CID fallback, a letter neither font has as
    its base letter, and its text reads back."""
    from volunteer_market.database import atomic
    from volunteer_market.extensions import db
    from volunteer_market.models import User

    w = world
    name = "欧阳喆堃·Łukasz"
    with atomic():
        member = db.session.get(User, w.member_a.id)
        member.display_name = name
        member.home_unit = "区卫健局（昇平路）"
    resp = client.get(
        f"/api/v1/users/{w.member_a.id}/certificate?year=2025", headers=bearer(w.secretary_a)
    )
    assert resp.status_code == 200
    fonts = _fonts(resp.data)
    embedded = [f for f, e in fonts.items() if e]
    assert len(embedded) == 1 and embedded[0].endswith("+VMCertificateSerifSC-Regular")
    assert fonts.get("/STSong-Light") is False  # the fallback, for 喆堃 only
    compact = "".join(_text(resp.data).split())
    assert "欧阳喆堃·Lukasz" in compact and "区卫健局（昇平路）" in compact  # Ł → L
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed: apt-get install -y poppler-utils")
    artifacts = Path(os.environ.get("VM_CERTIFICATE_DIR") or tmp_path)
    artifacts.mkdir(exist_ok=True)
    (artifacts / "uncommon.pdf").write_bytes(resp.data)
    done = subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(artifacts / "uncommon.pdf"),
         str(artifacts / "uncommon")],
        check=True, timeout=60, capture_output=True, text=True,
    )  # fmt: skip
    # poppler reads the embedded font without complaint (whether it finds a system font
    # for the two STSong-Light characters depends on the machine, not on the PDF)
    assert "VMCertificateSerifSC" not in done.stderr
    assert next(artifacts.glob("uncommon-*1.png")).read_bytes().startswith(b"\x89PNG")


def test_web_download_and_report_link(generated, client):
    g = generated
    w = g.world
    login(client, "secretary_a")
    page = client.get(f"/reports/annual?area_id={w.community_a.id}&year={g.year}").get_data(
        as_text=True
    )
    assert f"/users/{w.member_a.id}/certificate?year={g.year}" in page
    pdf = client.get(f"/users/{w.member_a.id}/certificate?year={g.year}")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert client.get(f"/users/{w.member_a.id}/certificate").status_code == 404
    assert client.get(f"/users/{w.member_b.id}/certificate?year={g.year}").status_code == 404


@pytest.mark.parametrize(
    "who", ["member_a2", "resident_a", "secretary_b", "officer_other", "grid_a1"]
)
def test_others_get_404(world, client, who):
    w = world
    resp = client.get(
        f"/api/v1/users/{w.member_a.id}/certificate?year=2026", headers=bearer(getattr(w, who))
    )
    assert resp.status_code == 404


@pytest.mark.parametrize("who", ["member_a", "secretary_a", "officer_street", "officer_district"])
def test_allowed(world, client, who):
    w = world
    resp = client.get(
        f"/api/v1/users/{w.member_a.id}/certificate?year=2026", headers=bearer(getattr(w, who))
    )
    assert resp.status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        "",
        "year=abc",
        "year=1999",
        "year=10000",
        "year=2026&community_id=x",
        "year=2026&community_id=0",
    ],
)
def test_bad_input_is_422(world, client, query):
    resp = client.get(
        f"/api/v1/users/{world.member_a.id}/certificate?{query}", headers=bearer(world.member_a)
    )
    assert resp.status_code == 422


def test_unknown_user_or_community_404(world, client):
    h = bearer(world.secretary_a)
    assert client.get("/api/v1/users/999999/certificate?year=2026", headers=h).status_code == 404
    other = client.get(
        f"/api/v1/users/{world.member_a.id}/certificate?year=2026&community_id={world.community_b.id}",
        headers=h,
    )
    assert other.status_code == 404
