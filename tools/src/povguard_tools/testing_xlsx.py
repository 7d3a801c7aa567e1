"""XLSX files as a spreadsheet program sees them, for tests: the cells as the sheet XML holds them (a formula is an
<f> element, whatever openpyxl makes of it on reading), and files built to attack whoever reads them."""

from __future__ import annotations

import io
import re
import struct
import zipfile
from dataclasses import dataclass
from xml.etree import ElementTree

_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
SHEET = "xl/worksheets/sheet1.xml"


@dataclass(frozen=True)
class XmlCell:
    part: str  # the sheet's part, e.g. xl/worksheets/sheet1.xml
    ref: str  # e.g. C2
    type: str  # the t attribute: inlineStr, s, str, n, b, ...
    formula: str | None  # the <f> element's text, if the cell has one
    text: str | None  # the string (inline or shared) or the <v> value
    quote_prefix: bool  # the cell's style tells Excel to keep it a text when edited


def xml_cells(content: bytes) -> list[XmlCell]:
    """Every cell of every sheet of an XLSX, read from its XML."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        names = archive.namelist()
        shared = []
        if "xl/sharedStrings.xml" in names:
            root = ElementTree.fromstring(archive.read("xl/sharedStrings.xml"))
            shared = ["".join(t.text or "" for t in si.iter(f"{_NS}t")) for si in root.iter(f"{_NS}si")]
        quoted: list[bool] = []
        if "xl/styles.xml" in names:
            xfs = ElementTree.fromstring(archive.read("xl/styles.xml")).find(f"{_NS}cellXfs")
            quoted = [xf.get("quotePrefix") in ("1", "true") for xf in (xfs if xfs is not None else [])]
        out = []
        for name in names:
            if not re.fullmatch(r"xl/worksheets/[^/]+\.xml", name):
                continue
            for c in ElementTree.fromstring(archive.read(name)).iter(f"{_NS}c"):
                kind = c.get("t", "n")
                f, v = c.find(f"{_NS}f"), c.findtext(f"{_NS}v")
                if kind == "inlineStr":
                    text: str | None = "".join(t.text or "" for t in c.iter(f"{_NS}t"))
                elif kind == "s" and v is not None:
                    text = shared[int(v)]
                else:
                    text = v
                style = int(c.get("s", "0"))
                out.append(XmlCell(name, c.get("r", ""), kind, None if f is None else (f.text or ""), text,
                                   style < len(quoted) and quoted[style]))
        return out


def assert_text_cells(content: bytes, *texts: str) -> None:
    """No cell of the workbook is a formula, and each text is in exactly one string cell that stays a text when a
    user edits it (the quote prefix)."""
    cells = xml_cells(content)
    formulas = [c for c in cells if c.formula is not None]
    assert not formulas, f"formula cells: {formulas}"
    for wanted in texts:
        found = [c for c in cells if c.text == wanted]
        assert len(found) == 1, f"{wanted!r} in {len(found)} cells"
        assert found[0].type in ("inlineStr", "s", "str") and found[0].quote_prefix, found[0]


def with_cached_values(content: bytes, cached: dict[str, str]) -> bytes:
    """The XLSX with the value a spreadsheet last computed stored beside each named formula cell of its first
    sheet ({"C3": "岳老三"}), as Excel saves them; openpyxl writes formulas without one."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        xml = archive.read(SHEET).decode()
    for ref, value in cached.items():
        xml, n = re.subn(rf'<c r="{ref}"([^>]*)><f>(.*?)</f><v\s*/>',
                         rf'<c r="{ref}"\1 t="str"><f>\2</f><v>{value}</v>', xml)
        assert n == 1, f"no formula cell {ref}"
    return replace_part(content, SHEET, xml.encode())


def replace_part(content: bytes, name: str, data: bytes) -> bytes:
    """The XLSX with one part's bytes replaced (the others copied as they are)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, data if info.filename == name else source.read(info.filename))
    return out.getvalue()


def zip_bomb(content: bytes, unpacked: int, declared: int | None = None) -> bytes:
    """The XLSX `content` with its first sheet padded (whitespace inside <sheetData>, so still valid XML) until it
    unpacks to `unpacked` bytes, deflated to about a thousandth of that. With `declared`, the zip's central directory
    claims that size for the sheet instead: sizes that lie."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename != SHEET:
                target.writestr(info.filename, data)
                continue
            head, tail = data.split(b"<sheetData>", 1)
            head += b"<sheetData>"
            sheet = zipfile.ZipInfo(SHEET)
            sheet.compress_type = zipfile.ZIP_DEFLATED
            with target.open(sheet, "w") as part:
                part.write(head)
                left = unpacked - len(head) - len(tail)
                block = b" " * (1 << 20)
                while left > 0:
                    part.write(block[:left])
                    left -= len(block)
                part.write(tail)
    packed = bytearray(out.getvalue())
    if declared is not None:
        at = struct.unpack_from("<L", packed, packed.rfind(b"PK\x05\x06") + 16)[0]  # where the directory starts
        while True:
            length, extra, comment = struct.unpack_from("<3H", packed, at + 28)
            if packed[at + 46:at + 46 + length].decode() == SHEET:
                struct.pack_into("<L", packed, at + 24, declared)  # its uncompressed size
                break
            at += 46 + length + extra + comment
    return bytes(packed)
