"""The printable 公示名单 of a village: an XLSX workbook and an HTML page. Built from an allow-list of columns, so
that ID numbers, phone numbers, bank accounts and health facts (including 因病/因残 risk types) can never appear."""

from __future__ import annotations

import html
import io
from dataclasses import dataclass
from datetime import date

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font

from povguard_platform.spreadsheet import text_cells

COLUMNS = ["序号", "村民小组", "户主姓名", "家庭人口", "拟调整类型", "监测对象类别", "公示期"]


@dataclass(frozen=True)
class NoticeRow:
    group: str
    head_name: str
    members: int | None
    outcome: str
    category: str
    period: tuple[date, date]

    def cells(self, number: int) -> list[str | int]:
        return [number, self.group, self.head_name, self.members if self.members is not None else "",
                self.outcome, self.category, f"{self.period[0]:%Y年%m月%d日}至{self.period[1]:%Y年%m月%d日}"]


@dataclass(frozen=True)
class Notice:
    township: str
    village: str
    village_code: str
    rows: list[NoticeRow]
    working_days: int

    @property
    def title(self) -> str:
        return f"{self.township}{self.village}拟动态调整防止返贫监测对象名单公示"

    @property
    def text(self) -> str:
        return (f"经农户申请（或干部排查、部门预警）、入户核实、村民及党员公开评议、村两委研究，现将拟动态调整的"
                f"监测对象名单在村委会和村民小组公开场所公示{self.working_days}个工作日。如有异议，请在公示期内"
                f"向村委会或乡镇人民政府反映。（万元以下户户增收帮扶对象不在公示之列。）")


def to_xlsx(notice: Notice) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "公示名单"
    # names come from the registry as people typed them: text_cells keeps "=…" a text
    ws.append(text_cells(ws, [notice.title]))
    ws["A1"].font = Font(bold=True, size=14)
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(COLUMNS))
    ws.append(text_cells(ws, [notice.text]))
    ws.merge_cells(start_row=2, start_column=1, end_row=2, end_column=len(COLUMNS))
    ws["A2"].alignment = Alignment(wrap_text=True)
    ws.row_dimensions[2].height = 48
    ws.append(COLUMNS)
    for cell in ws[3]:
        cell.font = Font(bold=True)
    for i, row in enumerate(notice.rows, 1):
        ws.append(text_cells(ws, row.cells(i)))
    for col, width in zip("ABCDEFG", (6, 12, 12, 10, 22, 16, 30), strict=True):
        ws.column_dimensions[col].width = width
    ws.append([])
    ws.append(text_cells(ws, [f"{notice.village}村民委员会"]))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def to_html(notice: Notice) -> str:
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in row.cells(i)) + "</tr>"
                   for i, row in enumerate(notice.rows, 1))
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{e(notice.title)}</title>
<style>
body {{ font-family: "SimSun", "Songti SC", serif; margin: 2cm; }}
h1 {{ text-align: center; font-size: 20pt; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border: 1px solid #000; padding: 4px 6px; text-align: center; }}
.sign {{ text-align: right; margin-top: 2em; }}
@media print {{ body {{ margin: 1cm; }} }}
</style></head>
<body>
<h1>{e(notice.title)}</h1>
<p>{e(notice.text)}</p>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<p class="sign">{e(notice.village)}村民委员会</p>
</body></html>
"""
