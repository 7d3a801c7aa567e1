"""The cache of case states behind 批量办理: a batch reads each case it locked from the cache when the row is the one
the cache saw written, and from the database otherwise (another process wrote it, or the write rolled back)."""

from __future__ import annotations

import httpx
from review_helpers import APPRAISAL, committee, new_case
from sqlalchemy import text

from povguard_platform.batch import StateCache, lock_states
from povguard_platform.settings import Settings
from povguard_review.domain.case import Case
from povguard_review.projections import save_cases


async def test_a_cached_state_is_used_only_for_the_row_version_it_was_written_as(
        client: httpx.AsyncClient, settings: Settings) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    case_id = await new_case(client, settings)
    cache: StateCache[Case] = StateCache(10)
    async with runtime.engine.begin() as conn:  # nothing cached yet: read from the row
        [(_, read)] = (await lock_states(conn, "review.cases", "case_id", [case_id], Case, cache)).items()
        assert read.version == 1
    async with runtime.engine.begin() as conn:  # the same row: the same state, not parsed again
        assert (await lock_states(conn, "review.cases", "case_id", [case_id], Case, cache))[case_id] is read
    async with runtime.engine.connect() as conn:  # a write that rolls back is never read from the cache
        await save_cases(conn, [read.model_copy(update={"source": "回滚"})], cache)
        await conn.rollback()
    async with runtime.engine.begin() as conn:
        state = (await lock_states(conn, "review.cases", "case_id", [case_id], Case, cache))[case_id]
        assert state.source != "回滚" and state.model_dump() == read.model_dump()
    # another process acts on the case (the route's own cache is not this one): the row read is the new one
    r = await client.post(f"/v1/cases/{case_id}/appraisal", json=APPRAISAL, headers=committee(settings))
    assert r.status_code == 200, r.text
    async with runtime.engine.begin() as conn:
        state = (await lock_states(conn, "review.cases", "case_id", [case_id], Case, cache))[case_id]
        assert state.version == 2 and state.appraisal is not None
        written = state.model_copy(update={"version": 3, "source": "本进程写入"})
        await save_cases(conn, [written], cache)
    async with runtime.engine.begin() as conn:  # what this process committed is read from the cache
        assert (await lock_states(conn, "review.cases", "case_id", [case_id], Case, cache))[case_id] is written
        row = await conn.execute(text("SELECT state->>'source' FROM review.cases WHERE case_id = :c"),
                                 {"c": case_id})
        assert row.scalar() == "本进程写入"


def test_the_cache_keeps_the_most_recently_used_states() -> None:
    cache: StateCache[Case] = StateCache(2)
    a, b, c = Case(case_id="a"), Case(case_id="b"), Case(case_id="c")
    cache.put("a", "1", a)
    cache.put("b", "1", b)
    assert cache.get("a", "1") is a and cache.get("a", "2") is None
    cache.put("c", "1", c)  # b was used least recently
    assert cache.get("b", "1") is None and cache.get("a", "1") is a and cache.get("c", "1") is c
