"""The plan's statistics in the layout a county submits: 附件3 防止返贫监测帮扶集中排查情况统计表 (counts per village
with township subtotals and the total) and 附件2-2 集中排查工作台账 (one row per screened household), as XLSX with
Chinese headers, merged header cells and a 截至 line; and every table as CSV rows."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_contracts.vocab import IncomeBand, Outcome
from povguard_reporting.domain.household import HouseholdState, missing
from povguard_reporting.policy import ReportingPolicy
from povguard_reporting.queries import CHINA, Scope, names

OUTCOMES = [o.value for o in Outcome if o != Outcome.NO_CHANGE]
BANDS = [IncomeBand.B7000_8000.value, IncomeBand.B8000_9000.value, IncomeBand.B9000_10000.value]


@dataclass(frozen=True)
class Group:
    title: str
    columns: list[tuple[str, str]]  # (header, key)


STATISTICS = [
    Group("", [("序号", "no"), ("乡镇", "township"), ("行政村", "village")]),
    Group("排查情况", [("农户户数", "households"), ("农户人数", "persons"), ("重点排查户数", "priority"),
                       ("入户调查户数", "visited"), ("研判户数", "assessed")]),
    *[Group(o, [("户数", f"{o}:户"), ("人数", f"{o}:人")]) for o in OUTCOMES],
    *[Group(f"人均纯收入{b}", [("户数", f"{b}:户"), ("人数", f"{b}:人")]) for b in BANDS],
    Group("帮扶情况", [("帮扶计划户数", "plans"), ("帮扶措施项数", "measures"), ("缺什么补什么未覆盖户数", "missing"),
                       ("一兜了之户数", "safety_net_only")]),
]
STATISTICS_KEYS = [key for g in STATISTICS for _, key in g.columns]

LEDGER = [
    Group("基本情况", [("序号", "no"), ("乡镇", "township"), ("行政村", "village"), ("村民小组", "group"),
                       ("户编号", "code"), ("户主姓名", "head"), ("证件号码", "id_number"), ("户类型", "kind"),
                       ("监测状态", "status"), ("家庭人口", "persons")]),
    Group("收入情况", [("人均纯收入（元）", "per_capita"), ("收入分段", "band")]),
    Group("风险情况", [("返贫致贫风险", "risks"), ("三保障和饮水安全问题", "gaps")]),
    Group("排查结果", [("研判结果", "proposal"), ("审定结果", "decided"), ("监测对象类别", "category")]),
    Group("帮扶情况", [("帮扶措施", "measures"), ("缺什么补什么未覆盖", "missing"), ("帮扶责任人", "cadre")]),
]
LEDGER_KEYS = [key for g in LEDGER for _, key in g.columns]


# --- the figures ---------------------------------------------------------------------------------------------------


def _statistics_sql(scope: Scope) -> str:
    parts = ["count(*) FILTER (WHERE registered) AS households",
             "coalesce(sum(persons) FILTER (WHERE registered), 0) AS persons",
             "count(*) FILTER (WHERE priority) AS priority", "count(*) FILTER (WHERE visited) AS visited",
             "count(*) FILTER (WHERE assessed) AS assessed",
             "count(*) FILTER (WHERE plan_open) AS plans",
             "coalesce(sum(cardinality(measure_kinds)) FILTER (WHERE plan_open), 0) AS measures",
             "count(*) FILTER (WHERE plan_open AND missing <> '{}') AS missing",
             "count(*) FILTER (WHERE plan_open AND safety_net_only) AS safety_net_only"]
    for i, o in enumerate(OUTCOMES):
        parts += [f'count(*) FILTER (WHERE :o{i} = ANY(decided)) AS "{o}:户"',
                  f'coalesce(sum(persons) FILTER (WHERE :o{i} = ANY(decided)), 0) AS "{o}:人"']
    for i, b in enumerate(BANDS):
        parts += [f'count(*) FILTER (WHERE band = :b{i}) AS "{b}:户"',
                  f'coalesce(sum(assessed_persons) FILTER (WHERE band = :b{i}), 0) AS "{b}:人"']
    return f"""
        SELECT township_code, village_code, GROUPING(township_code) AS all_, GROUPING(village_code) AS town_,
               {", ".join(parts)}
        FROM reporting.households WHERE {scope.valid()} AND village_code LIKE :org
        GROUP BY ROLLUP (township_code, village_code) ORDER BY township_code NULLS FIRST, village_code NULLS FIRST"""


async def statistics_rows(conn: AsyncConnection, scope: Scope) -> list[dict[str, Any]]:
    """附件3's rows: the total (合计) first, then each township's subtotal (小计) followed by its villages."""
    params = {**scope.params, **{f"o{i}": o for i, o in enumerate(OUTCOMES)},
              **{f"b{i}": b for i, b in enumerate(BANDS)}}
    rows = (await conn.execute(text(_statistics_sql(scope)), params)).all()
    places = await names(conn, sorted({c for r in rows for c in (r.township_code, r.village_code) if c}))
    out: list[dict[str, Any]] = []
    n = 0
    for r in rows:
        values = {k: int(v) for k, v in r._mapping.items() if k in STATISTICS_KEYS}
        if r.all_:
            out.append({"no": "", "township": "合计", "village": "", **values})
        elif r.town_:
            out.append({"no": "", "township": places.get(r.township_code, r.township_code), "village": "小计",
                        **values})
        else:
            n += 1
            out.append({"no": n, "township": places.get(r.township_code, r.township_code),
                        "village": places.get(r.village_code, r.village_code), **values})
    if not out:
        out.append({"no": "", "township": "合计", "village": "", **dict.fromkeys(STATISTICS_KEYS[3:], 0)})
    return out


async def ledger_rows(conn: AsyncConnection, scope: Scope, policy: ReportingPolicy,
                      personal: bool) -> list[dict[str, Any]]:
    """附件2-2's rows: every screened household (visited, or with a case) in township → village → group order, with
    a subtotal row per township. ID numbers only when `personal` (the caller audits it), masked otherwise."""
    rows = (await conn.execute(text(f"""
        SELECT township_code, village_code, per_capita, band, state FROM reporting.households
        WHERE {scope.valid()} AND village_code LIKE :org AND (visited OR case_stages <> '{{}}')
        ORDER BY village_code, state->>'group_code', state->>'code', household_id"""), scope.params)).all()
    places = await names(conn, sorted({c for r in rows for c in (r.township_code, r.village_code)}))
    out: list[dict[str, Any]] = []
    town, count, persons, n = None, 0, 0, 0

    def subtotal() -> None:
        out.append({"no": "", "township": places.get(town or "", town), "village": "小计",
                    "group": f"{count}户", "persons": persons})

    for r in rows:
        if town is not None and r.township_code != town:
            subtotal()
            count = persons = 0
        town = r.township_code
        s = HouseholdState.model_validate(r.state)
        decided = [c for c in s.cases.values() if c.decided_on]
        last = decided[-1] if decided else None
        count, persons, n = count + 1, persons + s.persons, n + 1
        out.append({
            "no": n,
            "township": places.get(r.township_code, r.township_code),
            "village": places.get(r.village_code, r.village_code), "group": s.group_name or "", "code": s.code or "",
            "head": s.head or "", "id_number": (s.head_id or "") if personal else mask_id(s.head_id),
            "kind": s.kind or "", "status": s.status or "", "persons": s.persons,
            "per_capita": round(float(r.per_capita), 2) if r.per_capita is not None else "",
            "band": r.band or "", "risks": "、".join(s.risks), "gaps": "、".join(s.gaps),
            "proposal": s.proposal or "",
            "decided": ("不予认定" if last.refused else last.decided or "") if last else "",
            "category": (last.category if last else None) or s.category or "",
            "measures": "、".join(dict.fromkeys(m.kind for m in s.measures.values())),
            "missing": "、".join(missing(s, policy.catalogue)) if s.plan else "", "cadre": s.cadre or "",
        })
    if town is not None:
        subtotal()
    total = [o for o in out if isinstance(o["no"], int)]
    out.append({"no": "", "township": "合计", "group": f"{len(total)}户",
                "persons": sum(int(o["persons"]) for o in total)})
    return out


def mask_id(number: str | None) -> str:
    """The region and the last four only, as notices print them."""
    if not number:
        return ""
    return number[:6] + "*" * (len(number) - 10) + number[-4:] if len(number) > 10 else "*" * len(number)


# --- XLSX ------------------------------------------------------------------------------------------------------------

_THIN = Side(style="thin", color="808080")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_HEAD = PatternFill("solid", fgColor="DDEBF7")
_TOTAL = PatternFill("solid", fgColor="F2F2F2")


def _cell(ws: WriteOnlyWorksheet, value: object, *, bold: bool = False, fill: PatternFill | None = None,
          size: int = 10, center: bool = True) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=value)
    cell.font = Font(name="宋体", bold=bold, size=size)
    cell.alignment = Alignment(horizontal="center" if center else "left", vertical="center", wrap_text=True)
    if fill is not None or bold or size == 10:
        cell.border = _BORDER
    if fill is not None:
        cell.fill = fill
    return cell


def _sheet(title: str, groups: Sequence[Group], rows: Iterable[dict[str, Any]], unit: str, as_of: date,
           data_time: datetime | None, widths: dict[str, int]) -> bytes:
    keys = [key for g in groups for _, key in g.columns]
    width = len(keys)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title[:31])
    for i, key in enumerate(keys, start=1):
        ws.column_dimensions[get_column_letter(i)].width = widths.get(key, 9)
    ws.freeze_panes = "A5"
    last = get_column_letter(width)
    ws.append([_cell(ws, title, bold=True, size=16)] + [_cell(ws, None, size=16) for _ in range(width - 1)])
    ws.merged_cells.add(f"A1:{last}1")
    line = f"填报单位：{unit}" + " " * 8 + f"截至：{as_of.year}年{as_of.month}月{as_of.day}日"
    if data_time is not None:  # the last event counted: what "as of" the figures really are
        line += f"（数据截至{data_time.astimezone(CHINA):%Y-%m-%d %H:%M:%S}）"
    ws.append([_cell(ws, line, size=11, center=False)] + [_cell(ws, None, size=11) for _ in range(width - 1)])
    ws.merged_cells.add(f"A2:{last}2")
    top, second = [], []
    col = 1
    for g in groups:
        span = len(g.columns)
        for j, (header, _) in enumerate(g.columns):
            if g.title:
                top.append(_cell(ws, g.title if j == 0 else None, bold=True, fill=_HEAD))
                second.append(_cell(ws, header, bold=True, fill=_HEAD))
            else:  # a column without a group: one header over both header rows
                top.append(_cell(ws, header, bold=True, fill=_HEAD))
                second.append(_cell(ws, None, bold=True, fill=_HEAD))
                ws.merged_cells.add(f"{get_column_letter(col + j)}3:{get_column_letter(col + j)}4")
        if g.title and span > 1:
            ws.merged_cells.add(f"{get_column_letter(col)}3:{get_column_letter(col + span - 1)}3")
        col += span
    ws.append(top)
    ws.append(second)
    for row in rows:
        summary = row.get("no") == ""
        ws.append([_cell(ws, row.get(key, ""), bold=summary, fill=_TOTAL if summary else None,
                         center=key not in ("risks", "gaps", "measures", "missing")) for key in keys])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def statistics_xlsx(rows: list[dict[str, Any]], unit: str, as_of: date, data_time: datetime | None) -> bytes:
    widths = {"no": 5, "township": 10, "village": 12}
    return _sheet("防止返贫监测帮扶集中排查情况统计表", STATISTICS, rows, unit, as_of, data_time, widths)


def ledger_xlsx(rows: list[dict[str, Any]], unit: str, as_of: date, data_time: datetime | None) -> bytes:
    widths = {"no": 6, "township": 10, "village": 12, "group": 12, "code": 16, "head": 8, "id_number": 20,
              "kind": 9, "status": 10, "persons": 6, "per_capita": 10, "band": 14, "risks": 16, "gaps": 16,
              "proposal": 16, "decided": 16, "category": 12, "measures": 24, "missing": 14, "cadre": 10}
    return _sheet("防止返贫监测集中排查工作台账", LEDGER, rows, unit, as_of, data_time, widths)


def headers(groups: Sequence[Group]) -> list[str]:
    """CSV headers: each column under its group, e.g. 新识别监测对象-户数."""
    return [f"{g.title}-{h}" if g.title else h for g in groups for h, _ in g.columns]
