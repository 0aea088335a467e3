"""The service certificate (服务证明) as a one-page A4 PDF (reportlab).

The text is set in an embedded TrueType font, ``fonts/CertificateSerifSC.ttf``: a
subset of Noto Serif CJK SC (SIL Open Font License 1.1, ``fonts/OFL.txt``) with ASCII,
Latin-1, the CJK and full-width punctuation and every character of GB 2312, built by
``tools/make_certificate_font.py`` (which documents the choice). reportlab embeds only
the glyphs a certificate uses (``/FontFile2``), so the PDF renders on any viewer,
Chinese fonts installed or not, and stays small.

Fallback (:func:`runs`), for a character the embedded font lacks: one that GBK has (a
rare name character outside GB 2312, say 喆 or 堃) is drawn in reportlab's built-in CID
font ``STSong-Light`` (Adobe-GB1, which covers GBK; not embedded: the viewer supplies
it, as every Chinese PDF viewer does); any other (a letter neither font has, such as Ł)
is printed as its base letter (NFKD without the accents, or :data:`BASE_LETTERS`), else
as ``?``. So no character is ever drawn as a missing glyph.

The page states the community, the member, the home unit, the period, hours,
deliveries and points, and the verification code with the public page where anyone
can check it.
"""

from __future__ import annotations

import io
import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

from flask import url_for
from flask_babel import gettext as _
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

FONT = "CertificateSerifSC"
FONT_FILE = Path(__file__).parent / "fonts" / "CertificateSerifSC.ttf"
FALLBACK = "STSong-Light"


@cache
def _covered() -> frozenset[int]:
    """Register both fonts once; return the code points the embedded font has."""
    font = TTFont(FONT, str(FONT_FILE))
    pdfmetrics.registerFont(font)
    pdfmetrics.registerFont(UnicodeCIDFont(FALLBACK))
    return frozenset(font.face.charToGlyph)


#: Letters without a decomposition, printed as their base letter.
BASE_LETTERS = {"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ħ": "H", "ħ": "h", "ı": "i"}


def _in_gbk(ch: str) -> bool:
    try:
        ch.encode("gbk")
    except UnicodeEncodeError:
        return False
    return True


def _glyphs(ch: str, covered: frozenset[int]) -> tuple[str, str]:
    """The font and the text that print ``ch`` (see the module's fallback)."""
    if ord(ch) in covered:
        return FONT, ch
    if _in_gbk(ch):
        return FALLBACK, ch
    base = BASE_LETTERS.get(ch) or "".join(
        c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c)
    )
    if base and all(ord(c) in covered for c in base):
        return FONT, base
    return FONT, "?"


def runs(text: str) -> list[tuple[str, str]]:
    """Split ``text`` into ``(font, text)`` runs: the embedded font where it has the
    character, the CID fallback for the other GBK characters, a base letter or ``?``
    for the rest."""
    covered = _covered()
    out: list[tuple[str, str]] = []
    for ch in text:
        font, part = _glyphs(ch, covered)
        if out and out[-1][0] == font:
            out[-1] = (font, out[-1][1] + part)
        else:
            out.append((font, part))
    return out


def _width(text: str, size: float) -> float:
    return sum(pdfmetrics.stringWidth(t, f, size) for f, t in runs(text))


def _draw(pdf: canvas.Canvas, x: float, y: float, text: str, size: float) -> None:
    for font, part in runs(text):
        pdf.setFont(font, size)
        pdf.drawString(x, y, part)
        x += pdfmetrics.stringWidth(part, font, size)


def certificate_pdf(content: dict[str, Any], code: str, verify_url: str) -> bytes:
    """Return the certificate as PDF bytes."""
    _covered()
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4, pageCompression=0)
    pdf.setTitle(_("服务证明"))
    width, height = A4
    title = _("服务证明")
    _draw(pdf, (width - _width(title, 26)) / 2, height - 40 * mm, title, 26)
    y = height - 65 * mm
    lines = [
        _(
            "兹证明 %(name)s 同志（工作单位：%(unit)s）",
            name=content["display_name"],
            unit=content["home_unit"] or _("未填写"),
        ),  # fmt: skip
        _(
            "于 %(period)s 在%(community)s参加志愿服务：",
            period=content["period"],
            community=content["community"],
        ),  # fmt: skip
        _(
            "服务时长 %(hours)s 小时，服务 %(deliveries)s 次，获得积分 %(points)s 分。",
            hours=content["hours"],
            deliveries=content["deliveries"],
            points=content["points"],
        ),  # fmt: skip
        _("特此证明。"),
    ]
    for line in lines:
        _draw(pdf, 25 * mm, y, line, 13)
        y -= 11 * mm
    right = width - 25 * mm
    signer = _("%(community)s党委", community=content["community"])
    _draw(pdf, right - _width(signer, 13), y - 15 * mm, signer, 13)
    issued = content["issued_on"]
    _draw(pdf, right - _width(issued, 13), y - 26 * mm, issued, 13)
    _draw(pdf, 25 * mm, 40 * mm, _("验证码：%(code)s", code=code), 11)
    _draw(pdf, 25 * mm, 32 * mm, _("验证网址：%(url)s", url=verify_url), 11)
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


def verify_link(code: str) -> str:
    """Return the absolute link of the public verification page for ``code``."""
    return url_for("web_evaluations.verify", code=code, _external=True)
