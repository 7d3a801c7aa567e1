"""规模性返贫风险 through the real stack (intake's API → NATS → assessment → its API): the indicators of seed §二(四)
per township and village, each a rate with a minimum count from the policy."""

from __future__ import annotations

from typing import Any

from assessment_helpers import TOWN, VILLAGE, Stack, household_body

from povguard_platform.actor import Role
from povguard_tools.testing import eventually

OTHER_TOWN = "533123102"
OTHER_VILLAGE = OTHER_TOWN + "201"


def _place(town: str, village: str) -> dict[str, str]:
    return {"county_code": "533123", "county": "盈江县", "township_code": town, "township": "某乡镇",
            "village_code": village, "village": "某村", "group_code": village + "001", "group": "一组"}


async def _register(stack: Stack, town: str, village: str) -> str:
    r = await stack.intake.post("/v1/households", json=household_body(place=_place(town, village)),
                                headers=stack.auth(org=village))
    assert r.status_code == 201, r.text
    return str(r.json()["household_id"])


async def _warn(stack: Stack, kind: str, household_id: str, ref: str) -> None:
    dept = {"受灾": "应急", "失业": "人社"}[kind]
    r = await stack.intake.post("/v1/warnings", headers=stack.auth(Role.DEPARTMENT, org="533123", dept=dept), json={
        "department": dept, "kind": kind, "household_id": household_id, "occurred_on": "2021-07-12",
        "reported_on": "2022-05-01", "source_ref": ref})
    assert r.status_code == 201, r.text


async def _scale(stack: Stack, org: str) -> list[dict[str, Any]]:
    r = await stack.assess.get("/v1/scale-risk", params={"org": org},
                               headers=stack.auth(Role.COUNTY_BUREAU, org="533123"))
    assert r.status_code == 200, r.text
    return list(r.json())


async def test_the_hit_township_alerts_and_a_lone_warning_elsewhere_does_not(stack: Stack) -> None:
    # a small township hit by a flood: 4 of 10 households affected (40%, at least 3 households)
    hit = [await _register(stack, TOWN, VILLAGE) for _ in range(10)]
    # a larger one with a single unemployment warning: 1 of 21 (4.8%, and one household is no scale)
    calm = [await _register(stack, OTHER_TOWN, OTHER_VILLAGE) for _ in range(21)]
    for i, hid in enumerate(hit[:4]):
        await _warn(stack, "受灾", hid, f"YJ-D{i}")
    await _warn(stack, "失业", calm[0], "RS-1")

    async def counted() -> bool:
        rows = {s["township_code"]: s for s in await _scale(stack, "533123")}
        return (rows.get(TOWN, {}).get("counts", {}).get("disaster") == 4
                and rows.get(OTHER_TOWN, {}).get("counts", {}).get("unemployment") == 1
                and rows[TOWN]["households"] == 10 and rows[OTHER_TOWN]["households"] == 21)

    await eventually(counted)
    rows = {s["township_code"]: s for s in await _scale(stack, "533123")}
    town, other = rows[TOWN], rows[OTHER_TOWN]
    assert town["crossed"] == ["disaster"] and town["indicators"]["disaster"] == 0.4
    assert town["thresholds"]["disaster"] == 0.05 and town["min_counts"]["disaster"] == 3
    assert [(v["village_code"], v["crossed"], v["counts"]["disaster"]) for v in town["villages"]] == [
        (VILLAGE, ["disaster"], 4)]
    assert town["raised"] == ["disaster", f"{VILLAGE}:disaster"] and town["raised_at"]
    assert other["crossed"] == [] and other["raised"] == [] and other["villages"][0]["crossed"] == []
    assert other["indicators"]["unemployment"] == 0.0476
    alerts = await stack.rows("SELECT stream_id, data FROM assessment.events WHERE type = 'ScaleRiskRaised'")
    assert [(a.stream_id, a.data["crossed"], a.data["villages"]) for a in alerts] == [
        (TOWN, ["disaster"], {VILLAGE: ["disaster"]})]
    # raised once the third household was hit (or later: a batch is checked once)
    assert alerts[0].data["counts"]["disaster"] in (3, 4) and alerts[0].data["min_counts"]["disaster"] == 3
    # a village clerk sees the township's figures and its own village only
    mine = await stack.assess.get("/v1/scale-risk", params={"org": OTHER_VILLAGE},
                                  headers=stack.auth(org=OTHER_VILLAGE))
    assert [(s["township_code"], [v["village_code"] for v in s["villages"]]) for s in mine.json()] == [
        (OTHER_TOWN, [OTHER_VILLAGE])]


async def test_a_revisit_that_moves_no_count_leaves_the_township_uncounted(stack: Stack) -> None:
    """The scale counts read a household's place, kind, risk standing and warnings: a revisit that changes none of
    them (only the visit its income stands on) does not count the township again, which would take the township's
    lock and rewrite its row on every visit; one that does change them, and a warning, still do."""
    hid = await stack.register()
    first = await stack.visit(hid, income={"wages": 30000})

    async def assessed(visit_id: str) -> bool:
        rows = await stack.rows("SELECT visit_id FROM assessment.households WHERE household_id = :h", h=hid)
        return bool(rows) and rows[0].visit_id == visit_id

    async def scale_row() -> Any:
        [row] = await stack.rows("SELECT xmin::text AS xmin, households, counts, raised FROM assessment.scale "
                                 "WHERE township_code = :t", t=TOWN)
        return row

    await eventually(lambda: assessed(first))
    before = await scale_row()
    assert before.households == 1
    again = await stack.visit(hid, income={"wages": 30000})
    await eventually(lambda: assessed(again))
    assert [e.data.get("visit_id") for e in await stack.assessed_events(hid) if e.type == "IncomeAssessed"] == [
        first, again]  # the revisit was assessed (its income event appended) ...
    assert (await scale_row()).xmin == before.xmin  # ... and the township's row was not rewritten
    await _warn(stack, "受灾", hid, "YJ-R1")

    async def warned() -> bool:
        return bool((await scale_row()).counts["disaster"] == 1)

    await eventually(warned)
