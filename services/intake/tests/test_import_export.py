"""Bulk import (XLSX and CSV in the template) and export, against the running service: bad rows named by row,
column and reason, a household with any bad row refused and the others registered, a second import of the same
file changing nothing, and the registry exported back in the same template."""

from __future__ import annotations

import hashlib
import io
import tracemalloc
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from intake_helpers import (
    TOWN,
    VILLAGE,
    auth,
    csv_bytes,
    household_body,
    make_id,
    member,
    template_rows,
    xlsx_bytes,
)
from sqlalchemy import text
from starlette.datastructures import UploadFile

from povguard_contracts.template import COLUMNS, ERROR_HEADER, HEADERS
from povguard_intake import bulk
from povguard_intake.handlers import Intake
from povguard_intake.importer import read_table
from povguard_platform.actor import Actor, Role
from povguard_platform.ids import uuid7
from povguard_platform.policy import load_policy
from povguard_platform.settings import Settings
from povguard_tools.synthetic.county import generate_county
from povguard_tools.synthetic.template_io import write_registry
from povguard_tools.testing import eventually

ID_COL = HEADERS.index("证件号码")
KIND_COL = HEADERS.index("户类型")
NAME_COL = HEADERS.index("姓名")


async def upload(client: httpx.AsyncClient, settings: Settings, name: str, content: bytes,
                 role: Role = Role.COUNTY_BUREAU, org: str = "533123") -> dict[str, Any]:
    r = await client.post("/v1/imports", files={"file": (name, content)}, headers=auth(settings, role, org))
    assert r.status_code == 202, r.text
    import_id = r.json()["import_id"]
    result: dict[str, Any] = {}

    async def finished() -> bool:
        nonlocal result
        result = (await client.get(f"/v1/imports/{import_id}", headers=auth(settings, role, org))).json()
        return bool(result["status"] != "running")

    await eventually(finished, within=60)
    assert result["status"] == "done", result
    return result


async def count_events(client: httpx.AsyncClient) -> int:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM intake.events"))).scalar_one())


def county_file() -> tuple[list[list[Any]], dict[str, int]]:
    """Three good households and one whose rows hold three kinds of mistakes; returns rows and where they are."""
    rows: list[list[Any]] = []
    for _ in range(3):
        rows += template_rows(household_body())
    bad = template_rows(household_body())
    first_bad = len(rows) + 2  # the header is row 1
    bad[1][ID_COL] = bad[1][ID_COL][:-1] + ("1" if bad[1][ID_COL][-1] != "1" else "2")
    bad[2][NAME_COL] = None
    bad[0][KIND_COL] = "外来户"
    for r in bad[1:]:
        r[KIND_COL] = "外来户"
    rows += bad
    return rows, {"bad_id": first_bad + 1, "no_name": first_bad + 2, "bad_kind": first_bad}


async def test_csv_import_reports_every_bad_row_and_imports_the_rest(client: httpx.AsyncClient,
                                                                   settings: Settings) -> None:
    rows, where = county_file()
    result = await upload(client, settings, "county.csv", csv_bytes(rows))
    assert (result["households"], result["imported"], result["refused"], result["rows"]) == (4, 3, 1, 12)
    found = {(e["row"], e["column"]) for e in result["errors"]}
    assert (where["bad_id"], "证件号码") in found
    assert (where["no_name"], "姓名") in found
    assert (where["bad_kind"], "户类型") in found
    assert any("校验码" in e["message"] for e in result["errors"])
    listed = await client.get("/v1/households", params={"org": VILLAGE}, headers=auth(settings))
    assert len(listed.json()["data"]) == 3

    sheet = await client.get(result["errors_xlsx"], headers=auth(settings, Role.COUNTY_BUREAU, "533123"))
    book = openpyxl.load_workbook(io.BytesIO(sheet.content), read_only=True)
    values = list(book.worksheets[0].iter_rows(values_only=True))
    assert values[0][-1] == ERROR_HEADER and len(values) == 13
    assert "证件号码" in values[where["bad_id"] - 1][-1] and values[1][-1] in (None, "")


async def test_an_import_is_read_inside_the_uploaders_org_unit_and_its_file_only_audited(
        client: httpx.AsyncClient, settings: Settings) -> None:
    """The errors file is the upload as it came (every ID number and phone): the roles that may export the
    registry read it inside the uploader's org unit, and each download is recorded like an export."""
    rows, _ = county_file()
    result = await upload(client, settings, "village.csv", csv_bytes(rows), Role.VILLAGE_CLERK, VILLAGE)
    status, errors = f"/v1/imports/{result['import_id']}", result["errors_xlsx"]
    for role, org in ((Role.VILLAGE_CLERK, TOWN + "202"), (Role.COUNTY_BUREAU, "110101"),
                      (Role.INSPECTOR, "110101")):
        assert (await client.get(status, headers=auth(settings, role, org))).status_code == 403, (role, org)
        assert (await client.get(errors, headers=auth(settings, role, org))).status_code == 403, (role, org)
    # a collector of the village sees how the import went, not the file with everyone's ID numbers
    assert (await client.get(status, headers=auth(settings, Role.COLLECTOR, VILLAGE))).status_code == 200
    assert (await client.get(errors, headers=auth(settings, Role.COLLECTOR, VILLAGE))).status_code == 403
    assert await exports_recorded(client) == []
    sheet = await client.get(errors, headers=auth(settings, Role.TOWNSHIP_REVIEWER, TOWN, "乡镇审核"))
    assert sheet.status_code == 200
    [recorded] = await exports_recorded(client)
    assert recorded.actor["user"] == "乡镇审核" and recorded.data["org"] == VILLAGE
    assert result["import_id"] in recorded.data["purpose"] and recorded.data["households"] == 4
    assert recorded.data["sha256"] == hashlib.sha256(sheet.content).hexdigest()


async def exports_recorded(client: httpx.AsyncClient) -> list[Any]:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.engine.connect() as conn:
        return list(await conn.execute(text("SELECT actor, data FROM intake.events "
                                            "WHERE type = 'PersonalDataExported' ORDER BY position")))


async def test_importing_the_same_file_twice_changes_nothing(client: httpx.AsyncClient, settings: Settings) -> None:
    rows, _ = county_file()
    content = csv_bytes(rows)
    await upload(client, settings, "county.csv", content)
    events = await count_events(client)
    again = await upload(client, settings, "county.csv", content)
    assert (again["imported"], again["unchanged"], again["refused"]) == (0, 3, 1)
    assert await count_events(client) == events


async def test_duplicate_id_numbers_within_the_file_and_against_the_registry(client: httpx.AsyncClient,
                                                                            settings: Settings) -> None:
    shared = make_id(date(1966, 6, 6), male=True)
    a = household_body(members=[member(id_number=shared, birth=date(1966, 6, 6))])
    b = household_body(members=[member(id_number=shared, birth=date(1966, 6, 6), name="重号")])
    result = await upload(client, settings, "dup.csv", csv_bytes(template_rows(a) + template_rows(b)))
    assert (result["imported"], result["refused"]) == (1, 1)
    [error] = result["errors"]
    assert (error["row"], error["column"], error["code"]) == (3, "证件号码", "duplicate")
    c = household_body(members=[member(id_number=shared, birth=date(1966, 6, 6), name="又重号")])
    later = await upload(client, settings, "dup2.csv", csv_bytes(template_rows(c)))
    assert later["refused"] == 1 and a["code"] in later["errors"][0]["message"]


async def test_a_village_clerk_imports_only_their_village(client: httpx.AsyncClient, settings: Settings) -> None:
    own = household_body()
    other = household_body()
    other["place"] = {**other["place"], "village_code": TOWN + "202", "group_code": TOWN + "202001"}
    result = await upload(client, settings, "mixed.csv", csv_bytes(template_rows(own) + template_rows(other)),
                          Role.VILLAGE_CLERK, VILLAGE)
    assert (result["imported"], result["refused"]) == (1, 1)
    assert result["errors"][0]["column"] == "村民小组代码"


async def test_xlsx_import_then_export_gives_the_same_rows(client: httpx.AsyncClient, settings: Settings) -> None:
    bodies = [household_body() for _ in range(3)]
    rows = [r for b in bodies for r in template_rows(b)]
    result = await upload(client, settings, "county.xlsx", xlsx_bytes(rows))
    assert result["imported"] == 3, result["errors"]

    exported = await client.get("/v1/exports/registry.xlsx", params={"org": TOWN},
                                headers=auth(settings, Role.COUNTY_BUREAU, "533123"))
    assert exported.status_code == 200
    values = list(openpyxl.load_workbook(io.BytesIO(exported.content), read_only=True).worksheets[0]
                  .iter_rows(values_only=True))
    assert list(values[0]) == HEADERS

    bools = [i for i, c in enumerate(COLUMNS) if c.kind == "bool"]

    def norm(row: Any) -> list[str]:  # blank yes/no cells are exported as 否; trailing blanks are not read back
        cells = ["" if v is None else str(v) for v in row] + [""] * (len(HEADERS) - len(row))
        return [("否" if i in bools and not v else v) for i, v in enumerate(cells)]

    assert sorted(norm(r) for r in values[1:]) == sorted(norm(r) for r in rows)
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.engine.connect() as conn:
        audit = (await conn.execute(text("SELECT data FROM intake.events WHERE type = 'PersonalDataExported'"))).one()
    assert audit.data["households"] == 3 and audit.data["members"] == 9
    work_team = await client.get("/v1/exports/registry.xlsx", params={"org": VILLAGE},
                                 headers=auth(settings, Role.WORK_TEAM, VILLAGE))
    assert work_team.status_code == 403


async def test_template_and_bad_files(client: httpx.AsyncClient, settings: Settings) -> None:
    t = await client.get("/v1/imports/template.xlsx", headers=auth(settings))
    book = openpyxl.load_workbook(io.BytesIO(t.content))
    assert [c.value for c in book.worksheets[0][1]] == HEADERS
    assert book.worksheets[1]["A2"].value == "户编号"
    r = await client.post("/v1/imports", files={"file": ("x.pdf", b"%PDF")}, headers=auth(settings))
    assert r.status_code == 422
    r = await client.post("/v1/imports", files={"file": ("x.csv", "姓名,证件号码\n".encode())}, headers=auth(settings))
    assert r.status_code == 202
    result: dict[str, Any] = {}

    async def failed() -> bool:
        nonlocal result
        result = (await client.get(f"/v1/imports/{r.json()['import_id']}", headers=auth(settings))).json()
        return bool(result["status"] == "failed")

    await eventually(failed)
    assert "缺少模板列" in result["message"]


async def test_households_whose_rows_are_scattered_import_whole_across_chunks(
        client: httpx.AsyncClient, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The importer reads the file chunk by chunk: a household whose rows lie far apart (here across every chunk
    of two households) is still parsed whole, its errors named on the right rows, each household once."""
    monkeypatch.setattr(bulk, "CHUNK", 2)
    rows, where = county_file()  # households of three rows: 0-2, 3-5, 6-8 good, 9-11 bad
    order = [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]  # every household's rows in three places
    scattered = [rows[i] for i in order]
    moved = {order.index(i) + 2: i + 2 for i in range(len(rows))}  # new row number → old
    result = await upload(client, settings, "scattered.csv", csv_bytes(scattered))
    assert (result["households"], result["imported"], result["refused"], result["rows"]) == (4, 3, 1, 12)
    found = {(moved[e["row"]], e["column"]) for e in result["errors"]}
    assert {(where["bad_id"], "证件号码"), (where["no_name"], "姓名"), (where["bad_kind"], "户类型")} <= found
    listed = (await client.get("/v1/households", params={"org": VILLAGE}, headers=auth(settings))).json()["data"]
    assert len(listed) == 3 and all(len(h["members"]) == 3 for h in listed), listed
    again = await upload(client, settings, "scattered.csv", csv_bytes(scattered))
    assert (again["imported"], again["unchanged"], again["refused"]) == (0, 3, 1)


async def test_a_resumed_import_starts_at_its_next_chunk(client: httpx.AsyncClient, settings: Settings,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A job taken up again (its process died after committing chunk 0) reads only the chunks after it."""
    monkeypatch.setattr(bulk, "CHUNK", 2)
    bodies = [household_body() for _ in range(5)]
    content = csv_bytes([r for b in bodies for r in template_rows(b)])
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    intake = Intake(runtime.store, load_policy(settings.campaign), runtime.clock)
    actor = Actor(user="县局", role=Role.COUNTY_BUREAU, org="533123")
    import_id = str(uuid7())
    await bulk.start_import(runtime.engine, import_id, "county.csv", content, actor)
    async with runtime.engine.begin() as conn:  # as if chunk 0 had committed before a crash
        await conn.execute(text("UPDATE intake.imports SET next_chunk = 1, processed = 2, imported = 2 "
                                "WHERE import_id = :i"), {"i": import_id})
    progress = await bulk.run_import(runtime.engine, intake, import_id)
    assert progress is not None
    assert (progress.households, progress.processed, progress.imported) == (5, 5, 5)
    async with runtime.engine.connect() as conn:
        codes = set((await conn.execute(text("SELECT code FROM intake.households"))).scalars())
    assert codes == {b["code"] for b in bodies[2:]}  # chunk 0 (the first two) was not read again


async def test_an_import_holds_one_chunk_of_the_file_not_all_of_it(
        client: httpx.AsyncClient, settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A county's file (70,000 households, 100 MB of CSV) must not sit in the importer's memory: between chunks,
    what the process holds beyond what it held before is a small part of the file's rows (tracemalloc)."""
    monkeypatch.setattr(bulk, "CHUNK", 50)
    registry = tmp_path / "registry.csv"
    write_registry(generate_county(600, 5), registry)
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    intake = Intake(runtime.store, load_policy(settings.campaign), runtime.clock)
    actor = Actor(user="县局", role=Role.COUNTY_BUREAU, org="533123")

    async def imported(content: bytes, name: str, on_progress: Any = None) -> None:
        import_id = str(uuid7())
        await bulk.start_import(runtime.engine, import_id, name, content, actor)
        assert await bulk.run_import(runtime.engine, intake, import_id, on_progress) is not None

    await imported(csv_bytes([r for b in (household_body(), household_body()) for r in template_rows(b)]),
                   "warm.csv")  # statement caches and the like, filled once per process
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        rows = list(read_table(registry.read_bytes(), registry.name))
        file_rows = tracemalloc.get_traced_memory()[0] - before
        del rows
        held: list[int] = []
        before = tracemalloc.get_traced_memory()[0]
        await imported(registry.read_bytes(), registry.name,
                       lambda _: held.append(tracemalloc.get_traced_memory()[0] - before))
    finally:
        tracemalloc.stop()
    assert len(held) == 12 and file_rows > 1_000_000
    # the middle figure, since buffers of the service's other work come and go; holding the rows would be >= 1
    assert sorted(held)[len(held) // 2] < file_rows / 2 and max(held) < file_rows, (held, file_rows)


@pytest.mark.parametrize("name", ["county.csv", "county.xlsx"])
async def test_an_upload_is_stored_and_read_back_a_slice_at_a_time(
        client: httpx.AsyncClient, settings: Settings, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """The upload goes from the spooled request file into the job's row in slices, and from the row onto disk in
    slices (neither side holds a county's file whole): with slices far smaller than the file, the stored bytes are
    the upload's, byte for byte, and every household is imported."""
    monkeypatch.setattr(bulk, "SPOOL_SLICE", 1000)

    async def whole(*_: Any) -> bytes:
        raise AssertionError("the upload was read whole into memory")

    monkeypatch.setattr(UploadFile, "read", whole)
    bodies = [household_body() for _ in range(6)]
    rows = [r for b in bodies for r in template_rows(b)]
    content = csv_bytes(rows) if name.endswith(".csv") else xlsx_bytes(rows)
    assert len(content) > 3 * 1000
    result = await upload(client, settings, name, content)
    assert result["imported"] == 6, result["errors"]
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT content, sha256 FROM intake.imports WHERE import_id = :i"),
                                     {"i": result["import_id"]})).one()
    assert bytes(stored.content) == content
    assert stored.sha256 == hashlib.sha256(content).hexdigest()
