"""The registry through its HTTP API against real PostgreSQL and NATS: registration with every rule, duplicates
across households, natural changes as events, visits and corrections, history and past states, masking and the
audit of personal-data reads, and the scope of each role."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
from intake_helpers import GROUP, TOWN, VILLAGE, auth, household_body, make_id, member, visit_form
from sqlalchemy import text

from povguard_intake.projections import rebuild
from povguard_platform.actor import Role
from povguard_platform.settings import Settings


async def register(client: httpx.AsyncClient, settings: Settings, body: dict[str, Any] | None = None,
                   **kw: Any) -> httpx.Response:
    return await client.post("/v1/households", json=body or household_body(**kw), headers=auth(settings))


async def events_of(client: httpx.AsyncClient, sql: str, **params: Any) -> list[Any]:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.engine.connect() as conn:
        return list(await conn.execute(text(sql), params))


async def test_register_and_read_back_masked(client: httpx.AsyncClient, settings: Settings) -> None:
    body = household_body()
    r = await register(client, settings, body)
    assert r.status_code == 201, r.text
    h = r.json()
    assert r.headers["etag"] == '"1"' and r.headers["location"] == f"/v1/households/{h['household_id']}"
    assert h["kind"] == "脱贫户" and h["flags"] == ["2020年脱贫户"] and len(h["members"]) == 3
    head = h["members"][0]["facts"]
    real = body["members"][0]["id_number"]
    assert head["id_number"] == real[:6] + "********" + real[-4:]
    assert head["phone"] == "138****5678" and head["health"] == ["***"]
    assert h["personal_data"] == "masked"
    got = await client.get(f"/v1/households/{h['household_id']}", headers=auth(settings))
    assert got.json() == h


async def test_every_bad_field_is_named_and_nothing_is_written(client: httpx.AsyncClient, settings: Settings) -> None:
    good = make_id(date(1975, 3, 9), True)
    bad_id = good[:-1] + ("1" if good[-1] != "1" else "2")  # wrong check character
    body = household_body(members=[
        member(id_number=bad_id),
        member("户主", birth=date(1980, 2, 2), male=False, sex="男", school_status="小学", migrant_months=5),
    ], lifted_year=None)
    r = await register(client, settings, body)
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"body.lifted_year", "body.members", "body.members.0.id_number", "body.members.1.sex",
                      "body.members.1.education", "body.members.1.migrant_place"}
    r2 = await register(client, settings, household_body(kind="外来户", members=[member(relation="邻居")]))
    assert r2.status_code == 422
    assert {"body.kind", "body.members.0.relation"} <= {e["field"] for e in r2.json()["errors"]}
    assert await events_of(client, "SELECT * FROM intake.events") == []


async def test_the_same_id_number_cannot_be_active_in_two_households(client: httpx.AsyncClient,
                                                                     settings: Settings) -> None:
    first = household_body()
    r1 = await register(client, settings, first)
    second = household_body(members=[member(name="冒名", id_number=first["members"][1]["id_number"],
                                            birth=date(1978, 5, 1), male=False)])
    r2 = await register(client, settings, second)
    assert r2.status_code == 409
    problem = r2.json()
    assert problem["duplicates"][0]["household_id"] == r1.json()["household_id"]
    assert problem["duplicates"][0]["code"] == first["code"]
    assert first["code"] in problem["detail"]
    # once the person has left the first household (婚出), the second may register them
    hid = r1.json()["household_id"]
    wife = next(m for m in r1.json()["members"] if m["facts"]["relation"] == "配偶")
    out = await client.post(f"/v1/households/{hid}/members/{wife['member_id']}/removal",
                            headers={**auth(settings), "If-Match": "*"},
                            json={"reason": "婚出", "effective": "2022-03-01"})
    assert out.status_code == 200, out.text
    assert (await register(client, settings, second)).status_code == 201


async def test_same_code_twice_is_a_conflict(client: httpx.AsyncClient, settings: Settings) -> None:
    body = household_body()
    assert (await register(client, settings, body)).status_code == 201
    again = household_body(code=body["code"])
    r = await register(client, settings, again)
    assert r.status_code == 409 and body["code"] in r.json()["detail"]


async def test_natural_changes_are_events_with_reasons_not_overwrites(client: httpx.AsyncClient,
                                                                      settings: Settings) -> None:
    h = (await register(client, settings)).json()
    hid = h["household_id"]
    baby = member("之孙子", birth=date(2022, 1, 5), education=None, school_status="学龄前儿童",
                  labour_skill="无劳动力", phone=None, name="岳小小")
    r = await client.post(f"/v1/households/{hid}/members", headers={**auth(settings), "If-Match": '"1"'},
                          json={"facts": baby, "reason": "新生儿", "effective": "2022-01-05"})
    assert r.status_code == 201, r.text
    assert r.headers["etag"] == '"2"' and len(r.json()["members"]) == 4
    stale = await client.post(f"/v1/households/{hid}/members", headers={**auth(settings), "If-Match": '"1"'},
                              json={"facts": member("之孙女", birth=date(2022, 2, 2), male=False, education=None,
                                                    school_status="学龄前儿童", labour_skill="无劳动力"),
                                    "reason": "新生儿", "effective": "2022-02-02"})
    assert stale.status_code == 412  # the If-Match precondition failed (RFC 9110 §13.1.1)
    assert stale.json()["type"].endswith("/precondition-failed") and stale.json()["actual_version"] == 2
    head = h["members"][0]["member_id"]
    blind = await client.post(f"/v1/households/{hid}/members/{head}/removal", headers=auth(settings),
                              json={"reason": "死亡", "effective": "2022-03-01"})
    assert blind.status_code == 428 and blind.json()["errors"][0]["field"] == "header.if-match"
    refused = await client.post(f"/v1/households/{hid}/members/{head}/removal",
                                headers={**auth(settings), "If-Match": '"2"'},
                                json={"reason": "死亡", "effective": "2022-03-01"})
    assert refused.status_code == 422 and "户主" in refused.json()["detail"]
    wrong_reason = await client.post(f"/v1/households/{hid}/members", headers=auth(settings),
                                     json={"facts": baby, "reason": "死亡", "effective": "2022-01-05"})
    assert wrong_reason.status_code == 422
    history = (await client.get(f"/v1/households/{hid}/history", headers=auth(settings))).json()
    assert [e["type"] for e in history] == ["HouseholdRegistered", "MemberAdded"]
    assert history[1]["data"]["reason"] == "新生儿" and history[1]["actor"]["user"] == "王文书"
    assert "****" in history[1]["data"]["member"]["facts"]["id_number"]
    before = await client.get(f"/v1/households/{hid}", params={"version": 1}, headers=auth(settings))
    assert len(before.json()["members"]) == 3


async def test_visit_and_correction_keep_both_records(client: httpx.AsyncClient, settings: Settings) -> None:
    hid = (await register(client, settings)).json()["household_id"]
    r = await client.post(f"/v1/households/{hid}/visits", headers=auth(settings, Role.COLLECTOR),
                          json={"form": visit_form()})
    assert r.status_code == 201, r.text
    visit_id = r.json()["visits"][0]["visit_id"]
    late = await client.post(f"/v1/households/{hid}/visits", headers=auth(settings, Role.COLLECTOR),
                             json={"form": visit_form(visit_date="2023-01-01")})
    assert late.status_code == 422 and late.json()["errors"][0]["field"] == "body.form.visit_date"
    fix = await client.post(f"/v1/households/{hid}/visits/{visit_id}/corrections",
                            headers=auth(settings, Role.COLLECTOR),
                            json={"form": visit_form(income={"wages": 9000}), "reason": "工资收入录入错误"})
    assert fix.status_code == 201, fix.text
    visits = (await client.get(f"/v1/households/{hid}/visits", headers=auth(settings))).json()
    old, new = sorted(visits, key=lambda v: v["visit_id"])
    assert old["superseded_by"] == new["visit_id"] and new["corrects"] == old["visit_id"]
    assert new["form"]["income"]["wages"] == 9000 and old["form"]["income"]["wages"] == 18000
    assert new["reason"] == "工资收入录入错误"


async def test_a_collectors_synced_forms_are_each_checked_on_their_own(client: httpx.AsyncClient,
                                                                      settings: Settings) -> None:
    """采集终端同步: a form with a bad field is refused and named by item, a stale version is refused, the rest are
    recorded; nothing of a refused item is written."""
    hids = [(await register(client, settings)).json()["household_id"] for _ in range(3)]
    collector = auth(settings, Role.COLLECTOR)
    items = [{"household_id": hids[0], "form": visit_form(), "expected_version": 1},
             {"household_id": hids[1], "form": visit_form(visit_date="2023-01-01")},
             {"household_id": hids[2], "form": visit_form(), "expected_version": 7},
             {"household_id": "没有这一户", "form": visit_form()}]
    r = await client.post("/v1/batches/visits", json={"items": items}, headers=collector)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["recorded"] == 1 and answer["data"][0]["household_id"] == hids[0]
    assert answer["data"][0]["version"] == 2
    failed = {f["index"]: f["problem"] for f in answer["failed"]}
    assert failed[1]["status"] == 422 and failed[1]["errors"][0]["field"] == "body.items.1.form.visit_date"
    assert failed[2]["status"] == 409 and failed[2]["actual_version"] == 1
    assert failed[3]["status"] == 404
    visits = {hid: (await client.get(f"/v1/households/{hid}/visits", headers=auth(settings))).json() for hid in hids}
    assert [len(visits[h]) for h in hids] == [1, 0, 0]
    assert visits[hids[0]][0]["visit_id"] == answer["data"][0]["visit_id"]
    first = answer["data"][0]["visit_id"]
    fixes = [{"household_id": hids[0], "form": visit_form(income={"wages": 9000}), "corrects": first,
              "reason": "工资收入录入错误"},
             {"household_id": hids[0], "form": visit_form(), "corrects": first}]
    fixed = (await client.post("/v1/batches/visits", json={"items": fixes}, headers=collector)).json()
    assert fixed["recorded"] == 1 and fixed["data"][0]["version"] == 3
    # the second names the record the first just replaced, and gives no reason: both are named
    assert {e["field"] for e in fixed["failed"][0]["problem"]["errors"]} == {"body.items.1.reason",
                                                                            "body.items.1.corrects"}
    old, new = sorted((await client.get(f"/v1/households/{hids[0]}/visits", headers=auth(settings))).json(),
                      key=lambda v: v["visit_id"])
    assert old["superseded_by"] == new["visit_id"] == fixed["data"][0]["visit_id"] and new["corrects"] == first
    elsewhere = await client.post("/v1/batches/visits", json={"items": items[:1]},
                                  headers=auth(settings, Role.COLLECTOR, "533123102201"))
    assert elsewhere.json()["failed"][0]["problem"]["status"] in (403, 404)
    empty = await client.post("/v1/batches/visits", json={"items": []}, headers=collector)
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "body.items"


async def test_personal_data_shown_only_to_roles_that_need_it_and_every_read_audited(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    body = household_body()
    hid = (await register(client, settings, body)).json()["household_id"]
    url = f"/v1/households/{hid}"
    shown = await client.get(url, params={"include_personal": "true", "purpose": "入户核实"},
                             headers=auth(settings, Role.TOWNSHIP_REVIEWER, TOWN, "乡审核"))
    assert shown.status_code == 200
    assert shown.json()["members"][0]["facts"]["id_number"] == body["members"][0]["id_number"]
    assert shown.json()["personal_data"] == "shown"
    work_team = await client.get(url, params={"include_personal": "true"},
                                 headers=auth(settings, Role.WORK_TEAM, VILLAGE))
    assert work_team.status_code == 403
    found = await client.post("/v1/households/search", json={"id_number": body["members"][2]["id_number"]},
                              headers=auth(settings, Role.INSPECTOR, "533123", "纪检"))
    assert found.json()["household_id"] == hid
    reads = await events_of(client, "SELECT actor, data FROM intake.events WHERE type = 'PersonalDataRead' "
                                    "ORDER BY position")
    assert [(r.actor["user"], r.data["purpose"]) for r in reads] == [
        ("乡审核", "入户核实"), ("纪检", "按身份证号码查找")]
    listed = await client.get("/v1/households", params={"org": VILLAGE}, headers=auth(settings, Role.COUNTY_BUREAU,
                                                                                      "533123"))
    assert "****" in listed.json()["data"][0]["members"][0]["facts"]["id_number"]


async def test_each_role_sees_only_its_org_unit(client: httpx.AsyncClient, settings: Settings) -> None:
    hid = (await register(client, settings)).json()["household_id"]
    other_village = auth(settings, Role.VILLAGE_CLERK, TOWN + "202")
    assert (await client.get(f"/v1/households/{hid}", headers=other_village)).status_code == 403
    assert (await client.get("/v1/households", params={"org": VILLAGE}, headers=other_village)).status_code == 403
    other_town = auth(settings, Role.TOWNSHIP_REVIEWER, "533123102")
    assert (await client.get(f"/v1/households/{hid}", headers=other_town)).status_code == 403
    own_town = auth(settings, Role.TOWNSHIP_REVIEWER, TOWN)
    assert (await client.get(f"/v1/households/{hid}", headers=own_town)).status_code == 200
    collector_elsewhere = auth(settings, Role.COLLECTOR, TOWN + "202")
    r = await client.post(f"/v1/households/{hid}/visits", headers=collector_elsewhere, json={"form": visit_form()})
    assert r.status_code == 403
    inspector = auth(settings, Role.INSPECTOR, "533123")
    assert (await client.post(f"/v1/households/{hid}/visits", headers=inspector,
                              json={"form": visit_form()})).status_code == 403


async def test_list_filters_and_cursor(client: httpx.AsyncClient, settings: Settings) -> None:
    for i in range(5):
        await register(client, settings, kind="一般农户" if i % 2 else "脱贫户",
                       lifted_year=None if i % 2 else 2019, flags=[] if i % 2 else ["2020年脱贫户"])
    h = auth(settings)
    page1 = (await client.get("/v1/households", params={"org": GROUP, "limit": 2}, headers=h)).json()
    page2 = (await client.get("/v1/households", params={"org": GROUP, "limit": 2, "cursor": page1["next_cursor"]},
                              headers=h)).json()
    assert len(page1["data"]) == 2 and len(page2["data"]) == 2
    assert not {x["household_id"] for x in page1["data"]} & {x["household_id"] for x in page2["data"]}
    ordinary = (await client.get("/v1/households", params={"org": VILLAGE, "kind": "一般农户"}, headers=h)).json()
    assert len(ordinary["data"]) == 2
    flagged = (await client.get("/v1/households", params={"org": VILLAGE, "flag": "2020年脱贫户"}, headers=h)).json()
    assert len(flagged["data"]) == 3


async def test_read_models_rebuild_identically_from_events(client: httpx.AsyncClient, settings: Settings) -> None:
    hid = (await register(client, settings)).json()["household_id"]
    await client.post(f"/v1/households/{hid}/visits", headers=auth(settings), json={"form": visit_form()})
    await client.put(f"/v1/households/{hid}/flags", headers=auth(settings),
                     json={"flags": ["农村低保对象"], "reason": "新纳入低保"})
    before = await events_of(client, "SELECT household_id, state, version FROM intake.households ORDER BY 1")
    index_before = await events_of(client, "SELECT * FROM intake.member_index ORDER BY 1")
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.engine.begin() as conn:
        assert await rebuild(conn, runtime.store) == 1
    assert await events_of(client, "SELECT household_id, state, version FROM intake.households ORDER BY 1") == before
    assert await events_of(client, "SELECT * FROM intake.member_index ORDER BY 1") == index_before


async def test_povguard_replay_rebuilds_the_registry_from_events(client: httpx.AsyncClient,
                                                                 settings: Settings) -> None:
    import asyncio
    import os
    import subprocess
    import sys

    hid = (await register(client, settings)).json()["household_id"]
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.engine.begin() as conn:
        await conn.execute(text("TRUNCATE intake.households, intake.member_index"))
    assert (await client.get(f"/v1/households?org={VILLAGE}", headers=auth(settings))).json()["data"] == []
    env = {**os.environ, "DATABASE_URL": settings.database_url_for("intake")}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "povguard_tools.cli", "replay", "intake"],
                                   env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "rebuilt 1" in done.stderr
    listed = (await client.get(f"/v1/households?org={VILLAGE}", headers=auth(settings))).json()["data"]
    assert [h["household_id"] for h in listed] == [hid]


async def test_full_width_id_numbers_are_the_same_number(client: httpx.AsyncClient, settings: Settings) -> None:
    """An ID number typed in full-width mode (全角：５３３１…Ｘ) is the same number to the national system: accepted
    and stored half-width, so it matches the same person typed half-width; digits of other scripts are refused as
    not digits, never as a wrong check character."""
    first = household_body()
    half = first["members"][0]["id_number"]
    first["members"][0]["id_number"] = half.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
    r1 = await register(client, settings, first)
    assert r1.status_code == 201, r1.text
    assert r1.json()["members"][0]["facts"]["id_number"] == half[:6] + "********" + half[-4:]
    again = household_body(members=[member(id_number=half)])
    r2 = await register(client, settings, again)
    assert r2.status_code == 409 and r2.json()["duplicates"][0]["household_id"] == r1.json()["household_id"]
    arabic = household_body(members=[member(id_number=half[:17].translate(
        str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")) + half[-1])])
    r3 = await register(client, settings, arabic)
    assert r3.status_code == 422
    assert [(e["field"], e["message"]) for e in r3.json()["errors"]] == [
        ("body.members.0.id_number", "身份证号码前17位应为数字")]


def test_member_facts_are_masked_by_the_flat_mask_exactly_as_by_the_walk() -> None:
    """List pages and masked reads mask member facts with `mask_record` (a copy and four lookups), which equals
    `mask_personal` only while no field of MemberFacts nests another object: every field, each way it can be."""
    from povguard_contracts.intake import MemberFacts
    from povguard_platform.personal import PERSONAL_FIELDS, mask_personal, mask_record

    everything = MemberFacts.model_validate(member(
        health=["长期慢性病", "残疾"], disability_category="视力残疾", migrant_months=6, migrant_place="省内县外",
        public_welfare_job=True, dibao=True)).model_dump(mode="json")
    assert set(everything) == set(MemberFacts.model_fields) and set(PERSONAL_FIELDS) <= set(everything)
    for value in everything.values():  # scalars, or a list of them: nothing further down to mask
        assert not isinstance(value, dict) and not (isinstance(value, list) and any(
            isinstance(v, (dict, list)) for v in value))
    sparse = MemberFacts.model_validate(member(phone=None)).model_dump(mode="json")
    for facts in (everything, sparse, {**sparse, "health": []}):
        masked = mask_record(facts)
        assert masked == mask_personal(facts) and masked is not facts
    assert "*" in mask_record(everything)["id_number"] and mask_record(everything)["health"] == ["***"]
    assert mask_record(everything)["disability_category"] == "***" and "****" in mask_record(everything)["phone"]
