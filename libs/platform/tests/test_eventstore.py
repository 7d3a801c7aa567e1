"""The event store against a real PostgreSQL: expected versions, loading, upcasting, immutability, and the
no-skipped-event guarantee under concurrent writers that commit out of order."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta

import pytest
from sqlalchemy import pool, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from povguard_platform.actor import Actor, Role
from povguard_platform.envelope import Metadata, NewEvent, StreamRef
from povguard_platform.eventstore import ConcurrencyError
from povguard_platform.ids import uuid7
from povguard_platform.service import ServiceRuntime
from povguard_platform.settings import Settings, sqlalchemy_url
from povguard_platform_sample.events import SampleIncremented, SampleIncrementedV1, SampleOpened

ACTOR = Actor(user="wang", role=Role.COLLECTOR, org="533123101")
META = Metadata(actor=ACTOR)
TOWN = "533123101"


def opened(stream: StreamRef) -> NewEvent:
    return NewEvent(stream, TOWN, SampleOpened(name="x", township=TOWN))


def inc(stream: StreamRef, by: int = 1) -> NewEvent:
    return NewEvent(stream, TOWN, SampleIncremented(by=by))


def new_stream() -> StreamRef:
    return StreamRef("sample", str(uuid7()))


@pytest.fixture
def rt(sample: ServiceRuntime) -> ServiceRuntime:
    sample.stop.set()  # these tests drive the store directly; no relay or consumer needed
    return sample


async def test_append_and_load_in_version_order(rt: ServiceRuntime) -> None:
    s = new_stream()
    async with rt.engine.begin() as conn:
        recorded = await rt.store.append(conn, [opened(s), inc(s, 2), inc(s, 3)], {s: 0}, META)
    assert [e.version for e in recorded] == [1, 2, 3]
    assert recorded[0].position < recorded[1].position < recorded[2].position
    async with rt.engine.connect() as conn:
        events = await rt.store.load(conn, s)
    assert [e.id for e in events] == [e.id for e in recorded]
    assert events[0].actor == ACTOR
    assert rt.store.decode_all(events)[2] == SampleIncremented(by=3)


async def test_many_streams_load_in_one_query_each_in_version_order(rt: ServiceRuntime) -> None:
    a, b, empty = new_stream(), new_stream(), new_stream()
    async with rt.engine.begin() as conn:
        await rt.store.append(conn, [opened(b), opened(a), inc(b, 2), inc(a, 5), inc(b, 3)], {a: 0, b: 0}, META)
    async with rt.engine.connect() as conn:
        loaded = await rt.store.load_streams(conn, "sample", [b.id, a.id, empty.id, a.id])
        assert loaded == {a.id: await rt.store.load(conn, a), b.id: await rt.store.load(conn, b)}
    assert [e.version for e in loaded[b.id]] == [1, 2, 3]


async def test_one_append_may_carry_each_events_own_metadata(rt: ServiceRuntime) -> None:
    """A consumer's batch: events of several streams in one statement, each with the cause it came from."""
    a, b = new_stream(), new_stream()
    causes = [uuid7(), uuid7(), uuid7()]
    other = Actor(user="li", role=Role.TOWNSHIP_REVIEWER, org=TOWN)
    metas = [Metadata(actor=ACTOR, causation_id=causes[0], correlation_id=causes[0]),
             Metadata(actor=ACTOR, causation_id=causes[1], policy="533123-2022@1"),
             Metadata(actor=other, causation_id=causes[2])]
    async with rt.engine.begin() as conn:
        recorded = await rt.store.append(conn, [opened(a), opened(b), inc(b)], {a: 0, b: 0}, metas)
        with pytest.raises(ValueError):
            await rt.store.append(conn, [inc(a)], {a: 1}, metas)
    assert [e.causation_id for e in recorded] == causes and recorded[2].actor == other
    async with rt.engine.connect() as conn:
        stored = [*await rt.store.load(conn, a), *await rt.store.load(conn, b)]
    assert [(e.causation_id, e.policy, e.actor.user) for e in stored] == [
        (causes[0], None, "wang"), (causes[1], "533123-2022@1", "wang"), (causes[2], None, "li")]
    assert stored[0].correlation_id == causes[0] and stored[1].version == 1 and stored[2].version == 2


async def test_stale_expected_version_is_a_conflict_not_a_silent_drop(rt: ServiceRuntime) -> None:
    s = new_stream()
    async with rt.engine.begin() as conn:
        await rt.store.append(conn, [opened(s)], {s: 0}, META)
    async with rt.engine.begin() as conn:
        await rt.store.append(conn, [inc(s)], {s: 1}, META)
    with pytest.raises(ConcurrencyError) as err:
        async with rt.engine.begin() as conn:
            await rt.store.append(conn, [inc(s)], {s: 1}, META)
    assert err.value.actual == 2
    with pytest.raises(ConcurrencyError):  # a stream that does not exist yet is at version 0, not 5
        async with rt.engine.begin() as conn:
            await rt.store.append(conn, [inc(s)], {s: 5}, META)
    with pytest.raises(ConcurrencyError):  # creating a stream that exists
        async with rt.engine.begin() as conn:
            await rt.store.append(conn, [opened(s)], {s: 0}, META)
    async with rt.engine.connect() as conn:
        assert await rt.store.stream_version(conn, s) == 2


async def test_concurrent_writers_with_the_same_expected_version_one_wins_the_rest_conflict(
    rt: ServiceRuntime,
) -> None:
    s = new_stream()
    async with rt.engine.begin() as conn:
        await rt.store.append(conn, [opened(s)], {s: 0}, META)
    barrier = asyncio.Barrier(8)

    async def writer(i: int) -> str:
        try:
            async with rt.engine.begin() as conn:
                await rt.store.load(conn, s)
                await barrier.wait()  # everyone read version 1 before anyone writes
                await rt.store.append(conn, [inc(s, i + 1)], {s: 1}, META)
            return "ok"
        except ConcurrencyError:
            return "conflict"

    results = await asyncio.gather(*(writer(i) for i in range(8)))
    assert sorted(results) == ["conflict"] * 7 + ["ok"]
    async with rt.engine.connect() as conn:
        assert [e.version for e in await rt.store.load(conn, s)] == [1, 2]


async def test_load_as_of_version_and_time(rt: ServiceRuntime) -> None:
    s = new_stream()
    async with rt.engine.begin() as conn:
        await rt.store.append(conn, [opened(s), inc(s, 1)], {s: 0}, META)
    await asyncio.sleep(0.05)
    async with rt.engine.connect() as conn:
        middle = (await conn.execute(text("SELECT clock_timestamp()"))).scalar_one()
    await asyncio.sleep(0.05)
    async with rt.engine.begin() as conn:
        await rt.store.append(conn, [inc(s, 10)], {s: 2}, META)
    async with rt.engine.connect() as conn:
        assert [e.version for e in await rt.store.load(conn, s, to_version=2)] == [1, 2]
        assert [e.version for e in await rt.store.load(conn, s, as_of=middle)] == [1, 2]
        assert await rt.store.load(conn, s, as_of=middle - timedelta(days=1)) == []
        assert len(await rt.store.load(conn, s, as_of=datetime.now(middle.tzinfo))) == 3


async def test_read_after_position_returns_everything_later_in_order(rt: ServiceRuntime) -> None:
    streams = [new_stream() for _ in range(5)]
    async with rt.engine.begin() as conn:
        await rt.store.append(conn, [opened(s) for s in streams], dict.fromkeys(streams, 0), META)
        head = await rt.store.head(conn)
        first = await rt.store.read_after(conn, 0)
        later = await rt.store.read_after(conn, first[1].position, limit=2)
    assert [e.position for e in later] == [first[2].position, first[3].position]
    assert first[-1].position == head


async def test_upcaster_turns_old_versions_into_current_ones_on_read(rt: ServiceRuntime) -> None:
    s = new_stream()
    async with rt.engine.begin() as conn:
        await rt.store.append(conn, [opened(s), NewEvent(s, TOWN, SampleIncrementedV1(amount=7))], {s: 0}, META)
        events = await rt.store.load(conn, s)
    assert (events[1].type, events[1].type_version, events[1].data) == ("SampleIncremented", 1, {"amount": 7})
    assert rt.store.decode(events[1]) == SampleIncremented(by=7, note="")


async def test_events_cannot_be_changed_by_the_service_its_owner_or_a_superuser_in_replica_mode(
        rt: ServiceRuntime, settings: Settings, admin_engine: AsyncEngine) -> None:
    s = new_stream()
    async with rt.engine.begin() as conn:
        await rt.store.append(conn, [opened(s)], {s: 0}, META)
    owner = create_async_engine(sqlalchemy_url(settings.migration_url_for("sample")), poolclass=pool.NullPool)
    try:
        for sql in ("UPDATE sample.events SET data = '{}'", "DELETE FROM sample.events", "TRUNCATE sample.events"):
            with pytest.raises(DBAPIError, match="permission denied for table events"):  # the service's own role
                async with rt.engine.begin() as conn:
                    await conn.execute(text(sql))
            with pytest.raises(DBAPIError, match=r"events are immutable \((UPDATE|DELETE|TRUNCATE)\)"):
                async with owner.begin() as conn:
                    await conn.execute(text(sql))
            # replica mode skips ordinary triggers; these are ENABLE ALWAYS
            with pytest.raises(DBAPIError, match=r"events are immutable \((UPDATE|DELETE|TRUNCATE)\)"):
                async with admin_engine.begin() as conn:
                    await conn.execute(text("SET LOCAL session_replication_role = replica"))
                    await conn.execute(text(sql))
    finally:
        await owner.dispose()
    async with rt.engine.connect() as conn:
        assert (await rt.store.load(conn, s))[0].data == {"name": "x", "township": TOWN}


async def test_followers_of_the_global_position_skip_nothing_when_commits_come_out_of_order(
    rt: ServiceRuntime,
) -> None:
    """Many writers hold their transactions open for random times after appending, so commits finish out of
    the order in which they started. A tailing reader must still see every event once, in position order."""
    writers, per_writer = 12, 15
    done = asyncio.Event()
    seen: list[int] = []
    rng = random.Random(7)

    async def writer(w: int) -> None:
        for _ in range(per_writer):
            s = new_stream()
            async with rt.engine.begin() as conn:
                await asyncio.sleep(rng.random() * 0.01)  # work before the append, outside the lock
                await rt.store.append(conn, [opened(s), inc(s)], {s: 0}, META)
                await asyncio.sleep(rng.random() * 0.01)  # slow commit after the append

    async def reader() -> None:
        position = 0
        while True:
            finished = done.is_set()  # read before the query: an empty read after the last commit ends it
            async with rt.engine.connect() as conn:
                batch = await rt.store.read_after(conn, position, limit=7)
            for e in batch:
                seen.append(e.position)
            if batch:
                position = batch[-1].position
            elif finished:
                return
            await asyncio.sleep(0.001)

    reading = asyncio.create_task(reader())
    await asyncio.gather(*(writer(w) for w in range(writers)))
    done.set()
    await reading
    async with rt.engine.connect() as conn:
        committed = [e.position for e in await rt.store.read_after(conn, 0, limit=100_000)]
    assert len(committed) == writers * per_writer * 2
    assert seen == committed  # every committed event, once, in position order
