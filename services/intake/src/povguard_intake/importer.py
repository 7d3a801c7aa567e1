"""Reading the import template (XLSX or CSV): rows → one register command per household, and every bad cell
reported with its row number, column and reason. Pure apart from reading the bytes it is given."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, BinaryIO, TypeVar

from pydantic import BaseModel, ValidationError

from povguard_contracts.intake import MemberFacts, Place
from povguard_contracts.numbers import COUNT_MAX
from povguard_contracts.template import BY_HEADER, COLUMNS, HEADERS, NO, SEPARATOR, YES, Column
from povguard_contracts.vocab import HouseholdKind, MonitoringCategory, MonitoringStatus, PriorityGroup
from povguard_intake.domain.household import Household
from povguard_intake.domain.idcard import normalise
from povguard_intake.domain.rules import member_violations
from povguard_intake.handlers import RegisterCommand
from povguard_platform.errors import Violation
from povguard_platform.problems import InvalidInput
from povguard_platform.spreadsheet import FORMULA_REFUSED, Formula, read_sheet

BY_KEY = {c.key: c for c in COLUMNS}
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class RowError:
    row: int  # as the user sees it in the sheet: the header is row 1
    column: str
    message: str
    code: str = ""


class TemplateError(ValueError):
    """The file is not in the template (unreadable, or headers missing)."""


@dataclass
class HouseholdRows:
    code: str
    rows: list[tuple[int, Row]] = field(default_factory=list)

    @property
    def row_numbers(self) -> list[int]:
        return [n for n, _ in self.rows]


Row = tuple[Any, ...]  # a member's cells in template order (HEADERS)
_POSITION = {h: i for i, h in enumerate(HEADERS)}


def cell(row: Row, header: str) -> Any:
    return row[_POSITION[header]]


def read_table(content: bytes | BinaryIO, file_name: str) -> Iterator[tuple[int, Row]]:
    """Rows of the first sheet (or the CSV) in template column order, numbered as in the file. `content` may be a
    seekable file (an import spooled to disk), read as the rows are asked for."""
    if file_name.lower().endswith(".csv"):
        yield from _read_csv(content)
    elif file_name.lower().endswith(".xlsx"):
        yield from _read_xlsx(content, file_name)
    else:
        raise TemplateError("只支持 .xlsx 或 .csv 文件")


def _check_headers(headers: Sequence[Any]) -> list[int]:
    """Where each template column is in the file (columns may come in any order; extra ones are ignored)."""
    names = [str(h).strip() if h is not None else "" for h in headers]
    missing = [h for h in HEADERS if h not in names]
    if missing:
        raise TemplateError("缺少模板列：" + "、".join(missing))
    return [names.index(h) for h in HEADERS]


def _pick(values: Sequence[Any], where: list[int]) -> Row:
    """The template's cells of one row (short rows: trailing blanks)."""
    return tuple(values[i] if i < len(values) else None for i in where)


def _csv_encoding(source: BinaryIO) -> str:
    """UTF-8 (with or without BOM), else GBK: Excel on Chinese Windows saves CSV as GB18030/GBK. Checked a block
    at a time, so that the text of the whole file is never held at once."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    source.seek(0)
    try:
        while block := source.read(1 << 20):
            decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "gb18030"
    finally:
        source.seek(0)
    return "utf-8-sig"


def _read_csv(content: bytes | BinaryIO) -> Iterator[tuple[int, Row]]:
    source = io.BytesIO(content) if isinstance(content, bytes) else content
    text = io.TextIOWrapper(source, encoding=_csv_encoding(source), newline="")
    try:
        reader = csv.reader(text)
        try:
            where = _check_headers(next(reader))
        except StopIteration:
            raise TemplateError("文件为空") from None
        for number, values in enumerate(reader, start=2):
            if any(v.strip() for v in values):
                yield number, _pick(values, where)
    finally:
        text.detach()  # the file stays open for the next pass


def _read_xlsx(content: bytes | BinaryIO, file_name: str) -> Iterator[tuple[int, Row]]:
    try:
        rows = read_sheet(content, file_name)
        try:
            where = _check_headers(next(rows))
        except StopIteration:
            raise TemplateError("文件为空") from None
    except InvalidInput as exc:
        raise TemplateError(exc.detail) from exc
    for number, values in enumerate(rows, start=2):
        if any(v is not None and str(v).strip() for v in values):
            yield number, _pick(values, where)


def household_code(number: int, row: Row) -> str:
    return _text(cell(row, "户编号")) or f"(第{number}行无户编号)"


@dataclass(frozen=True)
class Layout:
    """What a first pass over the file learns without keeping its rows: each household's place in the order its
    户编号 first appears (rows of one household need not be adjacent), and how many rows each chunk of households
    has, so that a second pass can hand out whole chunks while it reads."""

    index: dict[str, int]
    chunk_rows: list[int]
    size: int

    @property
    def households(self) -> int:
        return len(self.index)

    @property
    def rows(self) -> int:
        return sum(self.chunk_rows)


def scan(rows: Iterable[tuple[int, Row]], size: int) -> Layout:
    index: dict[str, int] = {}
    chunk_rows: list[int] = []
    for number, row in rows:
        chunk = index.setdefault(household_code(number, row), len(index)) // size
        if chunk == len(chunk_rows):
            chunk_rows.append(0)
        chunk_rows[chunk] += 1
    return Layout(index, chunk_rows, size)


def household_chunks(rows: Iterable[tuple[int, Row]], layout: Layout, start: int = 0,
                     ) -> Generator[tuple[int, list[HouseholdRows]], None, None]:
    """The chunks from `start` on, in order, each (its index, its households in order of first appearance) as soon
    as the file has given its last row: a file whose households' rows are near each other (as every export and the
    usual sheet) is read holding one chunk or so, not the whole file."""
    remaining = list(layout.chunk_rows)
    pending: dict[int, dict[str, HouseholdRows]] = {}
    ready = start
    for number, row in rows:
        code = household_code(number, row)
        chunk = layout.index[code] // layout.size
        if chunk < start:
            continue
        pending.setdefault(chunk, {}).setdefault(code, HouseholdRows(code)).rows.append((number, row))
        remaining[chunk] -= 1
        while ready < len(remaining) and remaining[ready] == 0:
            yield ready, list(pending.pop(ready).values())
            ready += 1
    if ready < len(remaining):  # the file is read again from the job's stored bytes: it cannot have changed
        raise TemplateError(f"文件在两次读取之间发生了变化（第{ready + 1}批不完整）")


# --- cells ---------------------------------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _whole(text: str) -> int | None:
    """A whole number as a cell holds it ("3", "3.0", "2020"); not "2.5", "NaN", "inf" or "1e400"."""
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    if not number.is_finite() or number != number.to_integral_value() or abs(number) > COUNT_MAX:
        return None
    return int(number)


_DATE = re.compile(r"^(\d{4})[-/.年]?(\d{1,2})[-/.月]?(\d{1,2})日?$")


def _cell(column: Column, value: Any) -> tuple[Any, str | None]:
    """The cell as the model wants it, or why it cannot be."""
    if column.key == "member.id_number" and isinstance(value, (int, float)):
        return None, "证件号码须以文本格式填写（数值格式会丢失末位）"
    text = _text(value)
    if text is None:
        return None, (f"“{column.header}”不能为空" if column.required else None)
    match column.kind:
        case "int":
            number = _whole(text)
            return (number, None) if number is not None else (None, f"“{text}”不是整数")
        case "bool":
            if text in (YES, NO):
                return text == YES, None
            return None, f"应填“{YES}”或“{NO}”"
        case "date":
            if isinstance(value, datetime):
                return value.date(), None
            if isinstance(value, date):
                return value, None
            m = _DATE.match(text)
            if m:
                try:
                    return date(int(m[1]), int(m[2]), int(m[3])), None
                except ValueError:
                    pass
            return None, f"“{text}”不是有效日期（应为 YYYY-MM-DD）"
        case "enum" | "enums":
            allowed = _ALLOWED[column.key]
            parts = [p.strip() for p in re.split(r"[、,，;；]", text) if p.strip()]
            parts = parts if column.kind == "enums" else [text]
            bad = [p for p in parts if p not in allowed]
            if bad:
                return None, f"“{'、'.join(bad)}”不是允许的值（可选：{'、'.join(allowed)}）"
            return (parts if column.kind == "enums" else text), None
    return text, None


# --- a household ---------------------------------------------------------------------------------------------------


@dataclass
class Parsed:
    household: HouseholdRows
    command: RegisterCommand | None
    errors: list[RowError]


# each level's columns with their field name and place in a row, worked out once rather than for every cell
_LEVEL_COLUMNS = {level: [(c, c.key.partition(".")[2], _POSITION[c.header]) for c in COLUMNS
                          if c.key.partition(".")[0] == level] for level in ("place", "household", "member")}
_HOUSEHOLD_LEVEL = [(c, _POSITION[c.header]) for c in COLUMNS if c.household_level]
_ALLOWED = {c.key: [v.value for v in c.values] for c in COLUMNS if c.values is not None}


def _fields(row: Row, level: str, number: int, errors: list[RowError]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column, name, position in _LEVEL_COLUMNS[level]:
        raw = row[position]
        if isinstance(raw, Formula):
            errors.append(RowError(number, column.header, FORMULA_REFUSED, "formula"))
            continue
        value, problem = _cell(column, raw)
        if problem:
            errors.append(RowError(number, column.header, problem, "cell"))
        elif value is not None:
            out[name] = value
    return out


def _model_errors(exc: ValidationError, level: str, rows: Sequence[int]) -> list[RowError]:
    out = []
    for e in exc.errors():
        name = str(e["loc"][0]) if e["loc"] else ""
        column = BY_KEY.get(f"{level}.{name}")
        header = column.header if column else name
        if e["type"] == "missing":
            continue  # already reported as an empty required cell
        out += [RowError(n, header, f"“{header}”{_message(e)}", e["type"]) for n in rows]
    return out


def _message(error: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        return "格式不正确"
    if kind in ("greater_than_equal", "less_than_equal"):
        return f"超出允许范围（{ctx}）"
    if kind in ("string_too_long", "string_too_short"):
        return "长度不符合要求"
    return str(error.get("msg", "无效"))


def parse_household(household: HouseholdRows, today: date) -> Parsed:
    errors: list[RowError] = []
    first_number, first = household.rows[0]
    # household columns must agree across the household's rows (the first row's are read below)
    for number, row in household.rows[1:]:
        for column, position in _HOUSEHOLD_LEVEL:
            value = row[position]
            if isinstance(value, Formula):
                errors.append(RowError(number, column.header, FORMULA_REFUSED, "formula"))
            elif _text(value) != _text(first[position]):
                errors.append(RowError(number, column.header,
                                       f"同一户编号的“{column.header}”与第{first_number}行不一致", "inconsistent"))
    place_fields = _fields(first, "place", first_number, errors)
    house_fields = _fields(first, "household", first_number, errors)
    numbers = household.row_numbers
    place = _build(Place, place_fields, "place", numbers, errors)
    members = []
    for number, row in household.rows:
        facts = _build(MemberFacts, _fields(row, "member", number, errors), "member", [number], errors)
        members.append(facts)
    if errors or place is None or any(m is None for m in members):
        # refused already, but report what the rules say of the members that did parse, so that one upload
        # names every bad row
        for number, facts in zip(numbers, members, strict=True):
            if facts is not None:
                errors += [RowError(number, _header(v.field), v.message, v.code)
                           for v in member_violations(facts, "m", today)]
        return Parsed(household, None, errors)
    command = RegisterCommand(
        code=household.code, place=place, kind=HouseholdKind(house_fields["kind"]),
        lifted_year=house_fields.get("lifted_year"),
        category=MonitoringCategory(house_fields["category"]) if "category" in house_fields else None,
        status=MonitoringStatus(house_fields["status"]),
        flags=[PriorityGroup(f) for f in house_fields.get("flags", [])],
        members=[m for m in members if m is not None])
    return Parsed(household, command, errors)


def _build(model: type[M], data: dict[str, Any], level: str, rows: Sequence[int],
                         errors: list[RowError]) -> M | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors += _model_errors(exc, level, rows)
        return None


def _header(field_path: str) -> str:
    column = BY_KEY.get("member." + field_path.rsplit(".", 1)[-1])
    return column.header if column else field_path


def violation_rows(violation: Violation, household: HouseholdRows) -> list[RowError]:
    """Where a rule broken by a household shows in the sheet: members.3.x is the 4th row of the household."""
    parts = violation.field.split(".")
    numbers = household.row_numbers
    if parts[0] == "members" and len(parts) >= 3 and parts[1].isdigit():
        column = BY_KEY.get(f"member.{parts[2]}")
        return [RowError(numbers[int(parts[1])], column.header if column else parts[2], violation.message,
                         violation.code)]
    if parts[0] == "members":
        return [RowError(n, "与户主关系", violation.message, violation.code) for n in numbers]
    column = BY_KEY.get(".".join(parts[:2])) if parts[0] == "place" else BY_KEY.get(f"household.{parts[0]}")
    header = column.header if column else violation.field
    return [RowError(n, header, violation.message, violation.code) for n in numbers]


def duplicate_rows(id_numbers: Sequence[str], message: str, household: HouseholdRows,
                   command: RegisterCommand) -> list[RowError]:
    wanted = {normalise(n) for n in id_numbers}
    out = [RowError(n, "证件号码", message, "duplicate")
           for n, m in zip(household.row_numbers, command.members, strict=True) if normalise(m.id_number) in wanted]
    return out or [RowError(n, "户编号", message, "duplicate") for n in household.row_numbers]


def same_as_registered(command: RegisterCommand, state: Household) -> bool:
    """Importing the same file twice changes nothing: a household already registered with these facts."""
    def members(facts: Sequence[MemberFacts]) -> list[str]:
        return sorted(f.model_copy(update={"id_number": normalise(f.id_number)}).model_dump_json() for f in facts)

    return (command.place == state.place and command.kind == state.kind
            and command.lifted_year == state.lifted_year and command.category == state.category
            and command.status == state.status and sorted(command.flags) == sorted(state.flags)
            and members(command.members) == members(list(state.members.values())))


__all__ = ["BY_HEADER", "SEPARATOR", "Layout", "Parsed", "RowError", "TemplateError", "household_chunks",
           "parse_household", "read_table", "scan"]
