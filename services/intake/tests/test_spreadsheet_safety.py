"""Spreadsheets that cannot attack their reader, against the running service: names that look like formulas leave
as text in every XLSX (the sheet XML holds no <f>), a formula cell in an upload is a row error and nothing of its
household is written, and a zip bomb is refused before anything unpacks it."""

from __future__ import annotations

import io
import time
from typing import Any

import httpx
import openpyxl
from intake_helpers import TOWN, VILLAGE, auth, csv_bytes, household_body, template_rows
from sqlalchemy import text
from test_import_export import count_events, upload

from povguard_contracts.template import HEADERS
from povguard_platform.actor import Role
from povguard_platform.settings import Settings
from povguard_platform.spreadsheet import FORMULA_REFUSED
from povguard_tools.testing import eventually
from povguard_tools.testing_xlsx import assert_text_cells, with_cached_values, zip_bomb

NAMES = ["=1+2", '=HYPERLINK("http://x","y")', "@SUM(1,2)"]
COUNTY = {"role": Role.COUNTY_BUREAU, "org": "533123"}


def formula_household() -> dict[str, Any]:
    body = household_body()
    for m, name in zip(body["members"], NAMES, strict=True):
        m["name"] = name
    return body


async def test_names_that_look_like_formulas_are_exported_as_text(client: httpx.AsyncClient,
                                                                  settings: Settings) -> None:
    r = await client.post("/v1/households", json=formula_household(), headers=auth(settings))
    assert r.status_code == 201, r.text
    exported = await client.get("/v1/exports/registry.xlsx", params={"org": TOWN}, headers=auth(settings, **COUNTY))
    assert exported.status_code == 200
    assert_text_cells(exported.content, *NAMES)
    values = [v for row in openpyxl.load_workbook(io.BytesIO(exported.content)).worksheets[0].values for v in row]
    assert all(name in values for name in NAMES)

    # the error report echoes the upload: a CSV's "=…" cells are texts there too
    bad = formula_household()
    bad["kind"] = "外来户"
    result = await upload(client, settings, "names.csv", csv_bytes(template_rows(bad)), **COUNTY)
    assert result["refused"] == 1
    report = await client.get(result["errors_xlsx"], headers=auth(settings, **COUNTY))
    assert_text_cells(report.content, *NAMES)


def template_xlsx(rows: list[list[Any]], formulas: dict[str, str] | None = None) -> bytes:
    """The template with `rows`; the cells named in `formulas` ("C3": "=A1") hold those formulas instead."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADERS)
    for row in rows:
        sheet.append(row)
    for ref, formula in (formulas or {}).items():
        sheet[ref] = formula
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def column(header: str) -> str:
    return openpyxl.utils.get_column_letter(HEADERS.index(header) + 1)


async def test_a_formula_cell_in_an_upload_is_a_row_error_and_nothing_of_its_household_is_written(
        client: httpx.AsyncClient, settings: Settings) -> None:
    good, named, grouped = household_body(), household_body(), household_body()
    rows = template_rows(good) + template_rows(named) + template_rows(grouped)
    name_cell = f"{column('姓名')}6"  # the header is row 1: the second member of the second household
    group_cell = f"{column('村民小组')}9"  # a household column on the last household's second row
    content = with_cached_values(
        template_xlsx(rows, {name_cell: '=CONCAT("岳","老三")', group_cell: f"={column('村民小组')}8"}),
        {name_cell: "岳老三", group_cell: "一组"})  # as Excel saves them: imported as they were, before the fix
    before = await count_events(client)
    result = await upload(client, settings, "county.xlsx", content, **COUNTY)
    assert (result["imported"], result["refused"]) == (1, 2), result
    errors = {(e["row"], e["column"], e["message"], e["code"]) for e in result["errors"]}
    assert errors == {(6, "姓名", FORMULA_REFUSED, "formula"), (9, "村民小组", FORMULA_REFUSED, "formula")}
    listed = await client.get("/v1/households", params={"org": VILLAGE}, headers=auth(settings))
    assert [h["code"] for h in listed.json()["data"]] == [good["code"]]
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.engine.connect() as conn:
        streams = (await conn.execute(text("SELECT DISTINCT stream_id FROM intake.events WHERE position > :p"),
                                      {"p": before})).scalars().all()
    assert len(streams) == 1  # the good household's; the import writes nothing else
    # the error report shows the formulas as texts, not as live formulas
    report = await client.get(result["errors_xlsx"], headers=auth(settings, **COUNTY))
    assert_text_cells(report.content, '=CONCAT("岳","老三")')


async def test_a_zip_bomb_is_refused_before_it_is_unpacked(client: httpx.AsyncClient, settings: Settings) -> None:
    content = template_xlsx(template_rows(household_body()))
    bomb = zip_bomb(content, 220 * 2**20)  # 220 MB in about 220 KB
    assert len(bomb) < 300_000
    started = time.monotonic()
    r = await client.post("/v1/imports", files={"file": ("炸弹.xlsx", bomb)}, headers=auth(settings, **COUNTY))
    assert time.monotonic() - started < 2
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert "炸弹.xlsx" in problem["detail"] and problem["errors"][0]["field"] == "body.file"
    assert "压缩" in problem["errors"][0]["message"]
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM intake.imports"))).scalar_one() == 0

    # sizes that lie: the zip claims 5 KB for the sheet; reading stops there, and the import fails on that file
    liar = zip_bomb(content, 220 * 2**20, declared=5000)
    r = await client.post("/v1/imports", files={"file": ("说谎.xlsx", liar)}, headers=auth(settings, **COUNTY))
    assert r.status_code == 202
    status: dict[str, Any] = {}

    async def failed() -> bool:
        nonlocal status
        status = (await client.get(f"/v1/imports/{r.json()['import_id']}", headers=auth(settings, **COUNTY))).json()
        return bool(status["status"] == "failed")

    await eventually(failed, within=5)
    assert "说谎.xlsx" in status["message"] and status["imported"] == 0
