"""Build the certificate's embedded font: a subset of Noto Serif CJK SC (SIL OFL 1.1).

    python tools/make_certificate_font.py [--source /usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc]

Run once by a developer (needs ``fonttools`` and Debian's ``fonts-noto-cjk``); the
result, ``volunteer_market/http/fonts/CertificateSerifSC.ttf``, is committed with its
licence (``OFL.txt`` beside it), so CI and production need neither: a fresh clone with
pip only renders the same certificate.

Which glyphs, and why names still render:

* ASCII and Latin-1 (codes, dates, English certificates, Latin names), general
  punctuation (– — ‘ ’ “ ” …), the CJK symbols and punctuation block, full-width forms;
* every Chinese character of GB 2312 (6,763 hanzi: level 1 and 2, the set that
  covers about 99.99 % of the characters of modern Chinese text, and of names written
  on identity documents outside rare-character cases);
* whatever the source has of Latin Extended-A, -B and Additional (pinyin with tone
  marks, some European letters);
* every character of the certificate's own text in both catalogues (checked: the
  build fails if one is missing).

A character outside the subset is handled by ``http.certificates.runs``: one that GBK
has (a rare name character such as 喆 or 堃, in GBK but not GB 2312) is drawn with
reportlab's CID font STSong-Light (Adobe-GB1, which covers GBK; the viewer supplies
it, as it did for the whole certificate before); any other (a letter such as Ł, which
neither font has) is printed as its base letter (NFKD without accents, Ł → L), else
as "?". So no character is drawn as a missing glyph of the embedded font.

reportlab embeds TrueType outlines only, and Noto CJK ships CFF (PostScript) outlines:
the subset's cubic curves are converted to quadratic ones (fontTools ``cu2qu``, max
error 1 unit of 1000), hinting and the layout tables dropped (reportlab uses neither).
reportlab then embeds, per PDF, only the glyphs that certificate uses.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fontTools import subset
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTCollection, TTFont, newTable

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "volunteer_market" / "http" / "fonts" / "CertificateSerifSC.ttf"
SOURCE = "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc"
FACE = "Noto Serif CJK SC"
FAMILY = "VM Certificate Serif SC"


def gb2312() -> list[int]:
    """Every character of GB 2312 (rows 0xA1-0xF7, cells 0xA1-0xFE)."""
    out = []
    for hi in range(0xA1, 0xF8):
        for lo in range(0xA1, 0xFF):
            try:
                out.append(ord(bytes((hi, lo)).decode("gb2312")))
            except UnicodeDecodeError:
                continue
    return out


def certificate_text() -> str:
    """The certificate's own strings (Chinese msgids and their English)."""
    from babel.messages.pofile import read_po

    po = ROOT / "volunteer_market" / "translations" / "en" / "LC_MESSAGES" / "messages.po"
    src = (ROOT / "volunteer_market" / "http" / "certificates.py").read_text("utf-8")
    with po.open("rb") as fh:
        catalog = read_po(fh)
    text = []
    for m in catalog:
        if m.id and isinstance(m.id, str) and m.id in src:
            text += [m.id, m.string or ""]
    return "".join(text)


def unicodes() -> list[int]:
    ranges = [
        range(0x20, 0x7F),
        range(0xA0, 0x100),
        range(0x2010, 0x2028),
        range(0x3000, 0x3040),
        range(0xFF01, 0xFF5F),
    ]
    wanted = {c for r in ranges for c in r} | set(gb2312())
    # what the source has of Latin Extended-A/B and Additional (pinyin with tones,
    # European names); the subsetter keeps only those it has
    wanted |= set(range(0x100, 0x250)) | set(range(0x1E00, 0x1F00))
    wanted |= {ord(ch) for ch in certificate_text() if ord(ch) >= 0x20}
    return sorted(wanted)


def to_truetype(font: TTFont) -> None:
    """Replace the CFF outlines by TrueType ones (quadratic curves)."""
    order = font.getGlyphOrder()
    glyphs = font.getGlyphSet()
    font["loca"] = newTable("loca")
    font["glyf"] = glyf = newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = {}
    for name in order:
        pen = TTGlyphPen(glyphs)
        glyphs[name].draw(Cu2QuPen(pen, 1.0, reverse_direction=True))
        glyf.glyphs[name] = pen.glyph()
    for tag in ("CFF ", "VORG"):
        if tag in font:
            del font[tag]
    glyf.compile(font)
    hmtx = font["hmtx"]
    for name, glyph in glyf.glyphs.items():
        if hasattr(glyph, "xMin"):
            hmtx[name] = (hmtx[name][0], glyph.xMin)
    font["maxp"] = maxp = newTable("maxp")
    maxp.tableVersion = 0x00010000
    for attr in (
        "maxZones",
        "maxTwilightPoints",
        "maxStorage",
        "maxFunctionDefs",
        "maxInstructionDefs",
        "maxStackElements",
        "maxSizeOfInstructions",
        "maxComponentElements",
    ):
        setattr(maxp, attr, 1 if attr == "maxZones" else 0)
    maxp.compile(font)
    post = font["post"]
    post.formatType = 3.0  # no glyph names: smaller, and none are needed
    post.extraNames = []
    post.mapping = {}
    font.sfntVersion = "\x00\x01\x00\x00"


def rename(font: TTFont) -> None:
    """A modified version gets its own family name (OFL, condition 3)."""
    names = font["name"]
    for rec in list(names.names):
        if rec.nameID in (1, 3, 4, 6, 16, 17):
            names.removeNames(nameID=rec.nameID)
    for name_id, value in (
        (1, FAMILY),
        (2, "Regular"),
        (3, f"{FAMILY.replace(' ', '')}-Regular;subset of {FACE}"),
        (4, FAMILY),
        (6, FAMILY.replace(" ", "") + "-Regular"),
    ):
        names.setName(value, name_id, 3, 1, 0x409)


def build(source: str) -> Path:
    collection = TTCollection(source)
    font = next(f for f in collection.fonts if f["name"].getDebugName(4) == FACE)
    options = subset.Options()
    options.layout_features = []
    options.hinting = False
    options.desubroutinize = True
    options.notdef_outline = True
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6, 7, 11, 13, 14]
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "BASE", "VORG", "vhea", "vmtx", "DSIG"]
    sub = subset.Subsetter(options)
    sub.populate(unicodes=unicodes())
    sub.subset(font)
    to_truetype(font)
    rename(font)
    cmap = font.getBestCmap()
    missing = [ch for ch in certificate_text() if ord(ch) >= 0x20 and ord(ch) not in cmap]
    if missing:
        raise SystemExit(f"certificate characters missing from the font: {missing}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    font.save(OUT)
    return OUT


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", default=SOURCE)
    args = ap.parse_args(argv)
    out = build(args.source)
    font = TTFont(out)
    print(f"{out}: {out.stat().st_size:,} bytes, {len(font.getBestCmap()):,} characters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
