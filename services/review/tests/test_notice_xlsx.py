"""The printable 公示名单 as XLSX, against the running service: names and groups as the registry holds them, even
when they look like formulas, are texts a spreadsheet shows and never evaluates."""

from __future__ import annotations

import httpx
from review_helpers import VILLAGE, committee, household_id, new_case, walk
from sqlalchemy import text
from test_flow import register, registered

from povguard_intake.service import SERVICE as INTAKE
from povguard_platform.settings import Settings
from povguard_tools.testing import eventually, running
from povguard_tools.testing_xlsx import assert_text_cells

HEADS = ["=1+2", '=HYPERLINK("http://x","y")', "@SUM(1,2)"]
GROUP = "+cmd|' /C calc'!A0"  # the classic DDE payload, as a 村民小组 name


async def test_the_notice_keeps_names_that_look_like_formulas_as_text(client: httpx.AsyncClient,
                                                                       settings: Settings) -> None:
    households = [household_id() for _ in HEADS]
    events = [registered(h, head) for h, head in zip(households, HEADS, strict=True)]
    events[0] = events[0].model_copy(update={"place": events[0].place.model_copy(update={"group": GROUP})})
    async with running(INTAKE, settings) as intake:
        await register(intake, *events)
        runtime = client.app.state.runtime  # type: ignore[attr-defined]

        async def registry_seen() -> bool:
            async with runtime.engine.connect() as conn:
                n = await conn.execute(text("SELECT count(*) FROM review.households"))
                return int(n.scalar_one()) == len(households)

        await eventually(registry_seen)
    for h in households:
        await walk(client, settings, await new_case(client, settings, household_id=h), until="公示中")
    xlsx = await client.get(f"/v1/notices/{VILLAGE}", params={"format": "xlsx"}, headers=committee(settings))
    assert xlsx.status_code == 200
    assert_text_cells(xlsx.content, *HEADS, GROUP)
