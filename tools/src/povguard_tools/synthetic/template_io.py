"""Writing a synthetic county: the registry in the import template (one row per member, household columns repeated,
.xlsx or .csv), and the campaign's visits, warnings, checks and truth as JSON lines."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Iterator
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from pydantic import BaseModel

from povguard_contracts.intake import MemberFacts
from povguard_contracts.template import COLUMNS, HEADERS, NO, SEPARATOR, YES
from povguard_tools.synthetic.model import County, Scenario, SyntheticHousehold

SHEET_TITLE = "农户家庭成员"
_HOUSEHOLD = [(i, c) for i, c in enumerate(COLUMNS) if not c.key.startswith("member.")]
_MEMBER = [(i, c.key.removeprefix("member."), c.kind) for i, c in enumerate(COLUMNS) if c.key.startswith("member.")]
_INDEX = {h: i for i, h in enumerate(HEADERS)}


Cell = str | int | float | None  # a spreadsheet cell as written


def _cell(value: Any, kind: str) -> Cell:
    if value is None:
        return None
    if kind == "bool":
        return YES if value else NO
    if kind == "date":
        assert isinstance(value, date)
        return value.isoformat()
    if kind == "enums":
        return SEPARATOR.join(str(v) for v in value) or None
    if kind == "int":
        return int(value)
    return str(value)


def _household_value(h: SyntheticHousehold, key: str) -> Any:
    scope, name = key.split(".", 1)
    return getattr(h.place if scope == "place" else h, name)


def _member_row(base: list[Cell], facts: MemberFacts) -> list[Cell]:
    row = list(base)
    for i, name, kind in _MEMBER:
        row[i] = _cell(getattr(facts, name), kind)
    return row


def registry_rows(county: County) -> Iterator[list[Cell]]:
    """The template's data rows in order, with the deliberately empty cells left empty."""
    for h in county.households:
        base: list[Cell] = [None] * len(COLUMNS)
        for i, column in _HOUSEHOLD:
            base[i] = _cell(_household_value(h, column.key), column.kind)
        for m, facts in enumerate(h.members):
            row = _member_row(base, facts)
            blank = h.truth.blank
            if blank is not None and blank.member == m:
                row[_INDEX[blank.header]] = None
            yield row


def problem_rows(county: County) -> dict[int, Scenario]:
    """Spreadsheet row numbers (header = row 1) that an import must report, with why: the incomplete rows and both
    rows carrying a duplicated ID number."""
    out: dict[int, Scenario] = {}
    row = 2
    for h in county.households:
        t = h.truth
        if t.blank is not None:
            out[row + t.blank.member] = Scenario.INCOMPLETE_FORM
        if t.duplicate is not None:
            out[row + t.duplicate.member] = Scenario.DUPLICATE_ID
        row += len(h.members)
    return out


def write_registry(county: County, path: Path) -> None:
    """The registry in the import template: .xlsx (openpyxl's write-only mode: about a minute for 300,000 rows) or
    .csv (UTF-8 with BOM; seconds), by suffix. Both give the same cells."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        wb = Workbook(write_only=True)
        ws = wb.create_sheet(SHEET_TITLE)
        ws.append(HEADERS)
        for row in registry_rows(county):
            ws.append(row)
        wb.save(path)
    elif suffix == ".csv":
        with path.open("w", encoding="utf-8-sig", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(HEADERS)
            writer.writerows(["" if v is None else v for v in row] for row in registry_rows(county))
    else:
        raise ValueError(f"registry must be .xlsx or .csv, not {path.name}")


def _plain(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _record(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _record(obj: Any, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.name not in drop}


def _write_lines(path: Path, records: Iterator[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")


def write_campaign(county: County, directory: Path, prefix: str = "") -> dict[str, Path]:
    """The campaign side as JSON lines in `directory`: visits (form 2-1 per household), department warnings (as a
    department sends them), asset-check results, and the truth (per household, plus which household each warning
    is about). Returns the paths by name."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {name: directory / f"{prefix}{name}.jsonl" for name in ("visits", "warnings", "checks", "truth")}
    _write_lines(paths["visits"], ({"household_code": h.code, "form": h.visit.model_dump(mode="json")}
                                   for h in county.households))
    _write_lines(paths["warnings"], (_record(w, drop=("household_code",)) for w in county.warnings))
    _write_lines(paths["checks"], (_record(c) for c in county.checks))

    def truth() -> Iterator[dict[str, Any]]:
        yield {"record": "county", "seed": county.seed, "households": len(county.households),
               "members": county.members, "villages": county.villages, "groups": county.groups,
               "disaster_township": county.disaster_township}
        for h in county.households:
            # the true members differ from the registry's only where misrecorded, and that member is in `misrecorded`
            yield {"record": "household", "household_code": h.code, **_record(h.truth, drop=("members",))}
        for w in county.warnings:
            yield {"record": "warning", "source_ref": w.source_ref, "household_code": w.household_code}

    _write_lines(paths["truth"], truth())
    return paths
