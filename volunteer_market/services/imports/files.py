"""Reading an uploaded CSV or XLSX file into rows, and the downloadable templates.

CSV is read as UTF-8 (with or without the BOM Excel writes for "CSV UTF-8") and, when
that fails, as GB18030 (what Excel on Chinese Windows writes for plain "CSV"); XLSX
through openpyxl (the first sheet, values not formulas). The header row names the
columns in Chinese or English (:data:`COLUMNS`); the rows are numbered from 1 after it.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ...models import MAX_IMPORT_ROWS, ImportKind
from ..errors import ValidationFailed

#: Column -> the header names that mean it (Chinese first: the template's).
COLUMNS: dict[str, tuple[str, ...]] = {
    "display_name": ("姓名", "display_name", "name"),
    "phone": ("手机号", "手机", "手机号码", "联系电话", "phone"),
    "grid": ("网格", "grid"),
    "address": ("住址", "地址", "address"),
    "household_tags": ("家庭标签", "户情标签", "household_tags"),
    "home_unit": ("工作单位", "单位", "home_unit"),
}
REQUIRED_COLUMNS = ("display_name", "phone")
#: The template's columns per kind (residents have no work unit, members no tags).
TEMPLATE_COLUMNS: dict[ImportKind, tuple[str, ...]] = {
    ImportKind.RESIDENTS: ("display_name", "phone", "grid", "address", "household_tags"),
    ImportKind.MEMBERS: ("display_name", "phone", "grid", "home_unit"),
}
TEMPLATE_EXAMPLES: dict[ImportKind, tuple[str, ...]] = {
    ImportKind.RESIDENTS: ("张桂英", "13800138000", "第一网格", "3 栋 401", "空巢,独居"),
    ImportKind.MEMBERS: ("李明", "13900139000", "第一网格", "区卫健局"),
}
_BY_HEADER = {name.lower(): column for column, names in COLUMNS.items() for name in names}
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Sheet:
    """The columns found in the header and the data rows (row number, values)."""

    columns: list[str | None]
    rows: list[tuple[int, dict[str, str]]]


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed(message, errors={"file": [message]})


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone number typed into a number cell
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise _refuse("Not a CSV file in UTF-8 or GB18030.") from None


def _csv_rows(data: bytes) -> list[list[str]]:
    text = _decode(data)
    if "\x00" in text:
        raise _refuse("Not a CSV file in UTF-8 or GB18030.")
    try:
        return [[c.strip() for c in row] for row in csv.reader(io.StringIO(text))]
    except csv.Error:
        raise _refuse("Not a readable CSV file.") from None


def _xlsx_rows(data: bytes) -> list[list[str]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError):
        raise _refuse("Not a readable XLSX file.") from None
    try:
        sheet = book.worksheets[0]
        out = []
        for values in sheet.iter_rows(values_only=True):
            out.append([_cell(v).replace("\x00", "") for v in values])
            if len(out) > MAX_IMPORT_ROWS + 1:
                break
        return out
    finally:
        book.close()


def read_sheet(data: bytes, filename: str) -> Sheet:
    """Return the header's columns and the data rows of an uploaded file.

    :raises ValidationFailed: (field ``file``) not CSV/XLSX, unreadable, no header,
        a required column missing, a column named twice, no rows, too many rows.
    """
    name = filename.lower()
    if name.endswith(".xlsx") or data.startswith(b"PK\x03\x04"):
        raw = _xlsx_rows(data)
    elif name.endswith((".csv", ".txt")) or not name.rpartition(".")[1]:
        raw = _csv_rows(data)
    else:
        raise _refuse("Upload a CSV or XLSX file.")
    while raw and not any(raw[0]):
        raw.pop(0)  # blank lines above the header
    if not raw:
        raise _refuse("The file is empty.")
    columns = [_BY_HEADER.get(h.strip().lower()) for h in raw[0]]
    found = [c for c in columns if c is not None]
    if len(found) != len(set(found)):
        raise _refuse("A column is named twice in the header row.")
    missing = [c for c in REQUIRED_COLUMNS if c not in found]
    if missing:
        raise _refuse("The header row needs the columns 姓名 (display_name) and 手机号 (phone).")
    rows: list[tuple[int, dict[str, str]]] = []
    for number, values in enumerate(raw[1:], start=1):
        if not any(v.strip() for v in values):
            continue  # blank lines (Excel often leaves some at the end)
        row = {
            c: (values[i].strip() if i < len(values) else "") for i, c in enumerate(columns) if c
        }
        rows.append((number, row))
    if not rows:
        raise _refuse("The file has no data rows.")
    if len(rows) > MAX_IMPORT_ROWS:
        raise _refuse(f"At most {MAX_IMPORT_ROWS} rows per file.")
    return Sheet(columns=columns, rows=rows)


def template(kind: ImportKind, fmt: str) -> tuple[bytes, str, str]:
    """Return ``(content, mimetype, filename)`` of the template for ``kind`` (``csv``
    in UTF-8 with a BOM, which Excel opens correctly, or ``xlsx``)."""
    headers = [COLUMNS[c][0] for c in TEMPLATE_COLUMNS[kind]]
    example = list(TEMPLATE_EXAMPLES[kind])
    base = "居民导入模板" if kind == ImportKind.RESIDENTS else "党员导入模板"
    if fmt == "xlsx":
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        assert sheet is not None  # a new workbook has one sheet
        sheet.append(headers)
        sheet.append(example)
        for column in sheet.columns:  # phone numbers as text, never 1.38E+10
            for cell in column:
                cell.number_format = "@"
        out = io.BytesIO()
        book.save(out)
        return out.getvalue(), XLSX_MIME, f"{base}.xlsx"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers)
    writer.writerow(example)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8"), "text/csv", f"{base}.csv"
