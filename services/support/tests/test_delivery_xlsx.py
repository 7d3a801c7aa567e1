"""A department's delivery sheet (XLSX) against the running service: a formula cell is refused by row and column
(its cached value may be stale or absent), and a zip bomb is refused before anything unpacks it."""

from __future__ import annotations

import io
import time

import httpx
from openpyxl import Workbook
from support_helpers import department, new_household

from povguard_platform.settings import Settings
from povguard_platform.spreadsheet import FORMULA_REFUSED
from povguard_tools.testing_xlsx import with_cached_values, zip_bomb


def sheet(*rows: list[object]) -> bytes:
    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["记录编号", "户ID", "措施类型", "发放日期", "金额"])
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_a_formula_cell_in_a_delivery_sheet_is_refused_by_row(client: httpx.AsyncClient,
                                                                    settings: Settings) -> None:
    dept = department(settings, "人社")
    content = with_cached_values(sheet(["RS-1", new_household(), "公益岗位帮扶", "2022-06-01", "=400*2"],
                                       ["RS-2", new_household(), "公益岗位帮扶", "2022-06-01", 600]), {"E2": "800"})
    r = await client.post("/v1/delivery-records.xlsx", headers=dept, files={"file": ("人社发放.xlsx", content)})
    assert r.status_code == 422, r.text
    [error] = r.json()["errors"]
    assert error["field"] == "body.rows.2.金额" and FORMULA_REFUSED in error["message"] and error["type"] == "formula"


async def test_a_zip_bomb_delivery_sheet_is_refused_before_it_is_unpacked(client: httpx.AsyncClient,
                                                                          settings: Settings) -> None:
    bomb = zip_bomb(sheet(["RS-1", new_household(), "公益岗位帮扶", "2022-06-01", 800]), 220 * 2**20)
    started = time.monotonic()
    r = await client.post("/v1/delivery-records.xlsx", headers=department(settings, "人社"),
                          files={"file": ("炸弹.xlsx", bomb)})
    assert time.monotonic() - started < 2
    assert r.status_code == 422, r.text
    problem = r.json()
    assert "炸弹.xlsx" in problem["detail"] and problem["errors"][0]["field"] == "body.file"
