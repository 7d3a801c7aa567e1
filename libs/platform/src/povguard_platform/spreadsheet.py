"""Spreadsheets that cannot attack their reader or the service. Written: every text is a string cell, never a
formula a spreadsheet would evaluate. Read: a formula cell comes back as `Formula` (what it says, not the value a
spreadsheet last cached for it), and an XLSX whose parts would unpack beyond a bound is refused before openpyxl
opens it."""

from __future__ import annotations

import io
import re
import struct
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from povguard_platform.problems import FieldError, InvalidInput

# A text that starts with one of these becomes a formula when a user edits the cell (+ - @ as well as =): such texts
# are written as string cells with Excel's quote prefix, so that the cell stays text even then.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# Yingjiang's registry (70,000 households, 291,139 member rows) as openpyxl writes it is 41 MB that unpacks to 462 MB,
# the sheet at 12:1 (Excel's shared strings make it smaller). The bounds leave room for a larger county and refuse
# the 1,000:1 of a zip bomb; parts under 100 KB unpacked are not held to the ratio.
MAX_UNPACKED = 1024 * 1024 * 1024
MAX_RATIO = 100
MAX_ENTRIES = 10_000
_EOCD = struct.Struct("<4s4H2LH")  # the zip's end-of-central-directory record


def text_cells(sheet: Any, values: Iterable[Any]) -> list[Any]:
    """A row for `sheet.append` (ordinary or write-only sheet) in which no text can become a formula. openpyxl
    stores a string starting with "=" as a formula: such texts go in as cells typed as strings with the quote
    prefix. Everything else passes unchanged (openpyxl already types it), which keeps big exports fast."""
    return [_text_cell(sheet, v) if isinstance(v, str) and v.startswith(FORMULA_START) else v for v in values]


def _text_cell(sheet: Any, value: str) -> Any:
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value)
    cell.data_type = "s"
    cell.quotePrefix = True
    return cell


FORMULA_REFUSED = "单元格含公式，请粘贴为数值/文本"  # its cached value may be stale or absent: type the value in


@dataclass(frozen=True, slots=True)
class Formula:
    """A formula cell of an uploaded sheet, e.g. "=A1+1"."""

    text: str

    def __str__(self) -> str:
        return self.text


def _opened(content: bytes | BinaryIO) -> BinaryIO:
    """The file to read: bytes as they are, or a seekable file (a spooled upload), from its start."""
    if isinstance(content, bytes):
        return io.BytesIO(content)
    content.seek(0)
    return content


def check_xlsx(content: bytes | BinaryIO, file_name: str, field: str = "body.file") -> None:
    """Refuse (422, naming the file) an XLSX that is no zip, or whose parts would unpack beyond the bounds.
    The declared sizes bound what is actually unpacked: Python's zipfile stops each part at its declared size
    (a longer stream fails its CRC), and parts may only be stored or deflated, whose decompression zipfile
    feeds in bounded steps (bzip2 and lzma it would inflate a whole read at once)."""

    def refuse(reason: str) -> InvalidInput:
        return _refused(file_name, field, reason)

    # the entry count before zipfile builds an object per entry of the central directory
    source = _opened(content)
    source.seek(max(0, source.seek(0, io.SEEK_END) - 65_557))
    tail = source.read()
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or len(tail) < end + _EOCD.size:
        raise refuse("不是有效的 XLSX 文件（无法按 zip 读取）")
    entries = _EOCD.unpack_from(tail, end)[4]  # total entries (0xFFFF: zip64, refused too)
    if entries > MAX_ENTRIES:
        raise refuse(f"文件含 {entries} 个部件，超过上限 {MAX_ENTRIES}")
    try:
        with zipfile.ZipFile(_opened(source)) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise refuse(f"不是有效的 XLSX 文件（{exc}）") from exc
    if len(parts) > MAX_ENTRIES:
        raise refuse(f"文件含 {len(parts)} 个部件，超过上限 {MAX_ENTRIES}")
    unpacked = 0
    for part in parts:
        if part.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise refuse(f"部件 {part.filename} 的压缩方式不受支持")
        if part.file_size > MAX_RATIO * max(part.compress_size, 1024):
            raise refuse(f"部件 {part.filename} 的压缩比超过 {MAX_RATIO}:1（疑似压缩炸弹）")
        unpacked += part.file_size
    if unpacked > MAX_UNPACKED:
        raise refuse(f"解压后 {unpacked // 2**20} MB，超过上限 {MAX_UNPACKED // 2**20} MB（疑似压缩炸弹）")


def _refused(file_name: str, field: str, reason: str) -> InvalidInput:
    return InvalidInput(f"{file_name}：{reason}", [FieldError(field=field, message=reason, type="xlsx")],
                        file_name=file_name)


def read_sheet(content: bytes | BinaryIO, file_name: str, field: str = "body.file") -> Iterator[tuple[Any, ...]]:
    """The rows of the first sheet, checked by `check_xlsx` first: values as typed in the file, formula cells as
    `Formula`. Refuses (422, naming the file) a file openpyxl cannot open. `content` may be a seekable file, which
    read-only openpyxl reads a part at a time instead of the whole upload held in memory."""
    import openpyxl

    check_xlsx(content, file_name, field)
    try:
        formulas = _has_formulas(content)
        # without formulas, data_only spares openpyxl a search for <f> in every cell
        book = openpyxl.load_workbook(_opened(content), read_only=True, data_only=not formulas)
        sheet = book.worksheets[0]
    except Exception as exc:
        raise _refused(file_name, field, f"无法读取 XLSX 文件：{exc}") from exc
    try:
        if formulas:  # each cell with its type, a quarter slower than values alone
            for row in sheet.iter_rows():
                yield tuple(_formula(c.value) if c.data_type == "f" else c.value for c in row)
        else:
            yield from sheet.iter_rows(values_only=True)
    finally:
        book.close()


_FORMULA_TAG = re.compile(rb"<(?:\w+:)?f[\s/>]")  # <f>, <f t="shared" …/>, <x:f>; "<" in text is escaped


def _has_formulas(content: bytes | BinaryIO) -> bool:
    """Whether any part holds a formula element: a scan of the raw XML (a few seconds for a county's registry)
    so that the usual file, without formulas, is read at openpyxl's fastest."""
    with zipfile.ZipFile(_opened(content)) as archive:
        for name in archive.namelist():
            with archive.open(name) as part:
                tail = b""
                while chunk := part.read(1 << 20):
                    if _FORMULA_TAG.search(tail + chunk):
                        return True
                    tail = chunk[-8:]
    return False


def _formula(value: Any) -> Formula:
    text = value if isinstance(value, str) else getattr(value, "text", None)  # array formulas carry .text
    return Formula(text or "=")
