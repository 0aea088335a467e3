"""The service certificate (服务证明) as a one-page A4 PDF (reportlab).

Chinese text uses reportlab's built-in CID font ``STSong-Light`` (Adobe-GB1): the
PDF names the font and the reader supplies the glyphs, so no font file is embedded
or downloaded. The page states the community, the member, the home unit, the
period, hours, deliveries and points, and the verification code with the public page
where anyone can check it.
"""

from __future__ import annotations

import io
from typing import Any

from flask import url_for
from flask_babel import gettext as _
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

FONT = "STSong-Light"


def _font() -> str:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


def certificate_pdf(content: dict[str, Any], code: str, verify_url: str) -> bytes:
    """Return the certificate as PDF bytes."""
    font = _font()
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4, pageCompression=0)
    pdf.setTitle(_("服务证明"))
    width, height = A4
    pdf.setFont(font, 26)
    pdf.drawCentredString(width / 2, height - 40 * mm, _("服务证明"))
    pdf.setFont(font, 13)
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
        pdf.drawString(25 * mm, y, line)
        y -= 11 * mm
    pdf.drawRightString(
        width - 25 * mm, y - 15 * mm, _("%(community)s党委", community=content["community"])
    )
    pdf.drawRightString(width - 25 * mm, y - 26 * mm, content["issued_on"])
    pdf.setFont(font, 11)
    pdf.drawString(25 * mm, 40 * mm, _("验证码：%(code)s", code=code))
    pdf.drawString(25 * mm, 32 * mm, _("验证网址：%(url)s", url=verify_url))
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


def verify_link(code: str) -> str:
    """Return the absolute link of the public verification page for ``code``."""
    return url_for("web_evaluations.verify", code=code, _external=True)
