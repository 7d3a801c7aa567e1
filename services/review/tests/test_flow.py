"""Cases opened by assessment's proposals (through the bus), a whole village from proposal to county decision through
the API alone, and the printable notice that never shows personal data."""

from __future__ import annotations

import io
import re
from typing import Any

import httpx
from openpyxl import load_workbook
from review_helpers import (
    APPRAISAL,
    TOWN,
    VILLAGE,
    cases_of,
    committee,
    county,
    events,
    household_id,
    proposal,
    propose,
    registration,
    step,
    walk,
)
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from povguard_assessment.service import SERVICE as ASSESSMENT
from povguard_contracts.intake import HouseholdRegistered
from povguard_contracts.vocab import HouseholdKind
from povguard_intake.service import SERVICE as INTAKE
from povguard_platform.actor import SYSTEM_ACTOR
from povguard_platform.envelope import Metadata, NewEvent, StreamRef
from povguard_platform.service import ServiceRuntime
from povguard_platform.settings import Settings
from povguard_review.projections import save_households
from povguard_review.service import SERVICE as REVIEW
from povguard_tools.testing import eventually, running

ID_NUMBER, PHONE, BANK = "533123197503090011", "13812345678", "6228480012345678901"


def registered(hid: str, head: str) -> HouseholdRegistered:
    member = {"name": head, "id_number": ID_NUMBER, "sex": "男", "birth_date": "1975-03-09", "relation": "户主",
              "education": "初中", "health": ["患有大病"], "labour_skill": "普通劳动力",
              "medical_insurance": "城乡居民基本医疗保险", "phone": PHONE}
    return HouseholdRegistered.model_validate({
        "household_id": hid, "code": f"C{hid}", "kind": "一般农户", "status": "未纳入监测", "flags": [],
        "place": {"county_code": "533123", "county": "盈江县", "township_code": TOWN, "township": "旧城镇",
                  "village_code": VILLAGE, "village": "古里卡村", "group_code": VILLAGE + "001", "group": "一组"},
        "members": [{"member_id": "m1", "facts": member}], "source": f"手工登记 银行账号{BANK}"})


async def register(intake: ServiceRuntime, *households: HouseholdRegistered) -> None:
    async with intake.engine.begin() as conn:
        for h in households:
            stream = StreamRef("household", h.household_id)
            await intake.store.append(conn, [NewEvent(stream, TOWN, h)], {stream: 0}, Metadata(actor=SYSTEM_ACTOR))


async def test_proposals_open_update_or_are_recorded(client: httpx.AsyncClient, settings: Settings) -> None:
    a, b, c, d = household_id(), household_id(), household_id(), household_id()
    async with running(ASSESSMENT, settings) as assessment:
        await propose(assessment, proposal(a), proposal(b, "无变化"),
                      proposal(c, held=True, hold_reason="未签授权承诺书"), proposal(d, "万元以下户户增收帮扶对象"))

        async def opened() -> bool:
            return len(await cases_of(client, a)) == 1 and len(await cases_of(client, d)) == 1

        await eventually(opened)
        assert await cases_of(client, b) == [] and await cases_of(client, c) == []
        # c signs the authorisation: the next proposal opens the case
        await propose(assessment, proposal(c))
        await eventually(lambda: _count(client, c, 1))
        # a changed proposal before the appraisal updates the case
        await propose(assessment, proposal(a, category="突发严重困难户"))
        await eventually(lambda: _field(client, a, "category", "突发严重困难户"))
        [case] = await cases_of(client, a)
        await step(client, f"/v1/cases/{case['case_id']}/appraisal", APPRAISAL, committee(settings))
        # after it: recorded for the reviewers, the case keeps its proposal
        await propose(assessment, proposal(a, "识别不精准整户清退"))
        await eventually(lambda: _field(client, a, "proposal_changes", None, changes=1))
        [case] = await cases_of(client, a)
        assert case["outcome"] == "新识别监测对象" and case["proposal_changes"][0]["outcome"] == "识别不精准整户清退"
        assert case["collector"] == "张采集" and case["lead_date"] == "2022-05-08"
    opened_events = await events(client, "CaseOpened")
    assert {e["household_id"] for e in opened_events} == {a, c, d}
    assert {e["income_increase_target"] for e in opened_events if e["household_id"] == d} == {True}


async def _count(client: httpx.AsyncClient, hid: str, n: int) -> bool:
    return len(await cases_of(client, hid)) == n


async def _field(client: httpx.AsyncClient, hid: str, name: str, value: Any, changes: int = 0) -> bool:
    cases = await cases_of(client, hid)
    if not cases:
        return False
    if changes:
        return len(cases[0]["proposal_changes"]) == changes
    return bool(cases[0][name] == value)


async def test_a_whole_village_from_proposal_to_county_decision_through_the_api(
        client: httpx.AsyncClient, settings: Settings) -> None:
    outcomes = ["新识别监测对象", "新识别监测对象", "万元以下户户增收帮扶对象", "拟风险消除", "风险消除不稳定回退",
                "无变化"]
    households = [household_id() for _ in outcomes]
    heads = [f"岳{i}哥" for i in range(len(outcomes))]
    async with running(INTAKE, settings) as intake, running(ASSESSMENT, settings) as assessment:
        await register(intake, *[registered(h, n) for h, n in zip(households, heads, strict=True)])
        runtime = client.app.state.runtime  # type: ignore[attr-defined]

        async def registry_seen() -> bool:
            async with runtime.engine.connect() as conn:
                from sqlalchemy import text

                n = await conn.execute(text("SELECT count(*) FROM review.households"))
                return int(n.scalar_one()) == len(households)

        await eventually(registry_seen)
        await propose(assessment, *[proposal(h, o, category=None if o == "万元以下户户增收帮扶对象" else "边缘易致贫户")
                                    for h, o in zip(households, outcomes, strict=True)])

        async def all_open() -> bool:
            r = await client.get("/v1/queue", headers=committee(settings))
            return bool(r.json()["count"] == len(outcomes) - 1)

        await eventually(all_open)
    queue = (await client.get("/v1/queue", headers=committee(settings))).json()["data"]
    ids = [c["case_id"] for c in queue]
    for c in queue:
        noticed = c["outcome"] != "万元以下户户增收帮扶对象"
        await walk(client, settings, c["case_id"], until="公示中" if noticed else "乡镇审核")
    # the printable notice while the notice runs: names and groups, never ID numbers, phones, banks or health
    page = await client.get(f"/v1/notices/{VILLAGE}", headers=committee(settings))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    xlsx = await client.get(f"/v1/notices/{VILLAGE}", params={"format": "xlsx"}, headers=committee(settings))
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    cells = " ".join(str(v) for row in sheet.iter_rows(values_only=True) for v in row if v is not None)
    for text_ in (html, cells):
        assert "古里卡村" in text_ and "一组" in text_
        assert sum(n in text_ for n in heads) == 4  # 户户增收 and 无变化 are not noticed
        assert heads[2] not in text_ and heads[5] not in text_
        for secret in (ID_NUMBER, PHONE, BANK, "患有大病", "因病", ID_NUMBER[-4:] + "</"):
            assert secret not in text_
        assert not re.search(r"\d{15,}", text_) and not re.search(r"1\d{10}", text_)
    # the same notices as a cursor-paged list, two a page
    listed, cursor = [], None
    while True:
        page_ = (await client.get("/v1/notices", params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                                  headers=committee(settings))).json()
        listed += page_["data"]
        cursor = page_["next_cursor"]
        if not cursor:
            break
    assert sorted(n["head_name"] for n in listed) == sorted(h for h in heads if h in html)
    assert all(n["village_code"] == VILLAGE and n["ends_on"] >= n["starts_on"] for n in listed)
    assert not re.search(r"\d{15,}", str(listed))
    for case_id in ids:
        await walk(client, settings, case_id)
    decided = {e["household_id"]: e for e in await events(client, "CountyDecided")}
    assert set(decided) == set(households[:5])
    statuses = [(decided[h]["kind"], decided[h]["status"]) for h in households[:5]]
    assert statuses == [("监测对象", "风险未消除"), ("监测对象", "风险未消除"), ("一般农户", "未纳入监测"),
                        ("监测对象", "风险已消除"), ("监测对象", "风险未消除")]
    assert decided[households[3]]["elimination_method"] == "帮扶消除"
    counts = (await client.get("/v1/stats/stages", headers=county(settings))).json()
    assert counts["townships"][0]["stages"] == {"已审定": 5}


async def test_a_batch_of_proposals_is_consumed_in_a_few_statements(settings: Settings) -> None:
    """Proposals waiting on the bus reach review's consumer as one batch (one partition): it opens, updates and
    records exactly as one at a time would (a household proposed twice sees the case its first proposal opened; the
    registry gives what the household was), reading the cases once per batch, not once or twice per proposal."""
    settings = settings.model_copy(update={"partitions": 1})
    a, b, c, lifted = household_id(), household_id(), household_id(), household_id()
    # the schema, and the registry as intake's consumer writes it
    async with running(REVIEW, settings) as review, review.engine.begin() as conn:
        await save_households(conn, [registration(a), registration(lifted).model_copy(
            update={"kind": HouseholdKind.LIFTED, "lifted_year": 2020})])
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "FROM review.cases" in statement:
            statements.append(statement)

    async with running(ASSESSMENT, settings) as assessment:
        await propose(assessment, proposal(a), proposal(b), proposal(a, category="突发严重困难户"),
                      proposal(c, "无变化"), proposal(b, held=True, hold_reason="未签授权承诺书"),
                      proposal(lifted, "新识别监测对象", category="突发严重困难户"))

        async def published() -> bool:
            async with assessment.engine.connect() as conn:
                row = await conn.execute(text("SELECT (SELECT position FROM assessment.relay_checkpoint) "
                                              ">= (SELECT max(position) FROM assessment.events)"))
                return bool(row.scalar())

        await eventually(published)
        event.listen(Engine, "before_cursor_execute", seen)
        try:
            async with running(REVIEW, settings) as review:
                async def consumed() -> bool:
                    async with review.engine.connect() as conn:
                        n = await conn.execute(text("SELECT count(*) FROM review.events "
                                                    "WHERE data->>'household_id' = ANY(:h)"), {"h": [a, b, c, lifted]})
                        return n.scalar() == 5  # a: opened, updated; b: opened, change recorded; lifted: opened

                await eventually(consumed)
        finally:
            event.remove(Engine, "before_cursor_execute", seen)
    async with running(REVIEW, settings) as review, review.engine.connect() as conn:
        rows = await conn.execute(text("SELECT household_id, state FROM review.cases WHERE household_id = ANY(:h)"),
                                  {"h": [a, b, c, lifted]})
        cases = {r[0]: r[1] for r in rows}
    assert set(cases) == {a, b, lifted}  # 无变化 opens nothing
    assert cases[a]["category"] == "突发严重困难户" and cases[a]["version"] == 2  # opened, then updated
    assert cases[b]["category"] == "边缘易致贫户" and [p["held"] for p in cases[b]["proposal_changes"]] == [True]
    assert cases[lifted]["kind_before"] == "脱贫户" and cases[lifted]["kind_before_monitoring"] == "脱贫户"
    reads = [s for s in statements if "household_id" in s and "FROM review.cases WHERE" in s]
    assert len(reads) <= 2, reads  # open cases and last closed outcomes, for the whole batch
