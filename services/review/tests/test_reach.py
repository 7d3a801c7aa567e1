"""Reach through the HTTP API: a case's org unit is the registry's (never the request's), and every role, county
roles, departments, inspectors and administrators included, reaches its own org unit only."""

from __future__ import annotations

import httpx
from review_helpers import (
    APPRAISAL,
    COUNTY,
    OTHER_TOWN,
    VILLAGE,
    auth,
    committee,
    county,
    department,
    household_id,
    known,
    new_case,
    open_case,
    step,
    walk,
)

from povguard_platform.actor import Role
from povguard_platform.settings import Settings

ELSEWHERE = "110101"  # a county that is not this campaign's
ELSEWHERE_VILLAGE = OTHER_TOWN + "201"


async def test_a_case_is_opened_for_a_registered_household_in_the_registry_village(
        client: httpx.AsyncClient, settings: Settings) -> None:
    theirs = household_id()
    await known(client, theirs, ELSEWHERE_VILLAGE)  # a household of another township
    clerk = auth(settings, Role.VILLAGE_CLERK, VILLAGE, "本村数据员")
    # the clerk's own village code in the request does not make the household theirs
    r = await open_case(client, settings, household_id=theirs, village_code=VILLAGE, headers=clerk, registered=False)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["body.village_code"]
    r = await open_case(client, settings, household_id=theirs, headers=clerk, registered=False)
    assert r.status_code == 403 and r.json()["code"] == "org_scope"
    # a household the registry does not know is refused
    r = await open_case(client, settings, household_id="hh-nobody", village_code=VILLAGE, headers=clerk,
                        registered=False)
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["body.household_id"]
    # nothing was opened: the household's own village opens its case, in the registry's village
    r = await open_case(client, settings, household_id=theirs, headers=committee(settings, ELSEWHERE_VILLAGE),
                        registered=False)
    assert r.status_code == 201, r.text
    assert r.json()["village_code"] == ELSEWHERE_VILLAGE and r.json()["township_code"] == OTHER_TOWN


async def test_county_roles_departments_inspectors_and_admins_reach_their_own_county_only(
        client: httpx.AsyncClient, settings: Settings) -> None:
    case_id = await new_case(client, settings)
    base = f"/v1/cases/{case_id}"
    outsiders = {role: auth(settings, role, ELSEWHERE, f"外县{role.value}")
                 for role in (Role.COUNTY_BUREAU, Role.INSPECTOR, Role.ADMIN)}
    for role, headers in outsiders.items():
        assert (await client.get(base, headers=headers)).status_code == 403, role
        assert (await client.get("/v1/cases", headers=headers)).json()["data"] == [], role
        assert (await client.get("/v1/lists/overdue", params={"as_of": "2022-07-01"},
                                 headers=headers)).json()["count"] == 0, role
        assert (await client.get("/v1/stats/stages", headers=headers)).json()["townships"] == [], role
        assert (await client.get(f"/v1/notices/{VILLAGE}", headers=headers)).status_code == 403, role
    r = await client.post(f"{base}/appraisal", json=APPRAISAL, headers=outsiders[Role.ADMIN])
    assert r.status_code == 403 and r.json()["code"] == "org_scope"
    await walk(client, settings, case_id, until="县级审定")
    r = await client.post(f"{base}/department-checks", json={"acted_on": "2022-05-24"},
                          headers=department(settings, "公安", org=ELSEWHERE))
    assert r.status_code == 403 and r.json()["code"] == "org_scope"
    r = await client.post(f"{base}/decision", json={"acted_on": "2022-05-25", "lead_department": "人社"},
                          headers=outsiders[Role.COUNTY_BUREAU])
    assert r.status_code == 403 and r.json()["code"] == "org_scope"
    # the county's own: the inspector reads, the department answers
    assert (await client.get(base, headers=auth(settings, Role.INSPECTOR, COUNTY, "纪检"))).status_code == 200
    await step(client, f"{base}/department-checks", {"acted_on": "2022-05-24"}, department(settings, "公安"))
    assert (await client.get(base, headers=county(settings))).json()["checks"].keys() == {"公安"}


async def test_a_department_token_names_its_department_and_serves_a_county(
        client: httpx.AsyncClient, settings: Settings) -> None:
    # the old form (org = the department's name) carries no org unit: refused as a token
    r = await client.get("/v1/queue", headers=auth(settings, Role.DEPARTMENT, "公安", "公安接口"))
    assert r.status_code == 401 and "dept" in r.json()["detail"]
    r = await client.get("/v1/queue", headers=department(settings, "公安"))
    assert r.status_code == 200 and r.json()["org"] == COUNTY
