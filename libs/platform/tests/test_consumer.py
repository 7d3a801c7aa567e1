"""Durable partitioned consumers against real NATS and PostgreSQL: inbox in the same transaction, duplicates and
redeliveries without a second effect, per-stream order, bounded retries and dead letters, leases shared fairly
between replicas and moved when one dies."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
from helpers import bearer, stream_contents
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from povguard_platform.actor import Actor, Role
from povguard_platform.bus import to_message
from povguard_platform.consumer import Consumer, ConsumerSpec
from povguard_platform.envelope import Metadata, NewEvent, RecordedEvent, StreamRef
from povguard_platform.ids import uuid7
from povguard_platform.metrics import CONSUMER_DUPLICATES, CONSUMER_LAG
from povguard_platform.partitions import partition_key, partition_of
from povguard_platform.relay import Relay
from povguard_platform.service import ServiceRuntime
from povguard_platform.settings import Settings
from povguard_platform_sample.consumers import PROJECTION
from povguard_platform_sample.events import SampleIncremented, SampleOpened
from povguard_platform_sample.service import SAMPLE
from povguard_tools.testing import eventually, running

TOWN = "533123101"
META = Metadata(actor=Actor(user="li", role=Role.COLLECTOR, org=TOWN))
WORKER = Path(__file__).with_name("workers.py")


async def write(rt: ServiceRuntime, streams: int, increments: int = 2) -> list[StreamRef]:
    refs = []
    for _ in range(streams):
        s = StreamRef("sample", str(uuid7()))
        events = [NewEvent(s, TOWN, SampleOpened(name="n", township=TOWN))]
        events += [NewEvent(s, TOWN, SampleIncremented(by=i + 1)) for i in range(increments)]
        async with rt.engine.begin() as conn:
            await rt.store.append(conn, events, {s: 0}, META)
        refs.append(s)
    return refs


async def totals(rt: ServiceRuntime) -> dict[str, tuple[int, int, str]]:
    async with rt.engine.connect() as conn:
        rows = await conn.execute(text("SELECT id, total, applied, history FROM sample.totals"))
        return {r.id: (r.total, r.applied, r.history) for r in rows}


async def scalar(rt: ServiceRuntime, sql: str) -> int:
    async with rt.engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def drained(rt: ServiceRuntime) -> bool:
    return await rt.consumers[0].pending() == 0


async def republish(rt: ServiceRuntime, event: RecordedEvent) -> None:
    """The same event again under a new message id (as a republish after the duplicate window would be)."""
    assert rt.js is not None
    partition = partition_of(partition_key(event.stream, None), rt.settings.partitions)
    subject, headers, body = to_message(event, partition)
    await rt.js.publish(subject, body, headers={**headers, "Nats-Msg-Id": str(uuid7())})


def replicas_of(spec: ConsumerSpec, rt: ServiceRuntime, n: int) -> list[Consumer]:
    assert rt.js is not None
    return [Consumer(spec, "sample", rt.engine, rt.js, rt.settings.stream_name, rt.settings.partitions,
                     tick=0.2) for _ in range(n)]


async def fair_shares(replicas: list[Consumer], partitions: int) -> bool:
    held = [r.held for r in replicas]
    return sorted(len(h) for h in held) == sorted(
        [partitions // len(replicas) + (i < partitions % len(replicas)) for i in range(len(replicas))]) \
        and set().union(*held) == set(range(partitions))


async def test_each_event_is_applied_once_and_recorded_in_the_inbox(sample: ServiceRuntime) -> None:
    refs = await write(sample, 20)

    async def all_applied() -> bool:
        return await scalar(sample, "SELECT count(*) FROM sample.inbox") == 60

    await eventually(all_applied)
    t = await totals(sample)
    assert all(t[s.id] == (3, 3, "2,3,") for s in refs)
    assert await scalar(sample, "SELECT count(*) FROM sample.consumer_streams WHERE version = 3") == 20


async def test_duplicated_messages_have_no_second_effect(sample: ServiceRuntime) -> None:
    refs = await write(sample, 5)

    async def all_applied() -> bool:
        return await scalar(sample, "SELECT count(*) FROM sample.inbox") == 15

    await eventually(all_applied)
    before = await totals(sample)
    dupes_before = CONSUMER_DUPLICATES.labels(PROJECTION.name)._value.get()
    assert sample.js is not None
    for _, event in await stream_contents(sample.js):
        await republish(sample, event)
    await eventually(lambda: drained(sample))
    assert await totals(sample) == before
    assert {s.id for s in refs} <= set(before)
    assert CONSUMER_DUPLICATES.labels(PROJECTION.name)._value.get() - dupes_before == 15
    assert await scalar(sample, "SELECT count(*) FROM sample.inbox") == 15


async def test_a_consumer_receives_only_the_types_it_handles_and_never_goes_backwards(settings: Settings) -> None:
    opened_only = ConsumerSpec(name="sample-opened", sources=["sample"],
                               handlers={"SampleOpened": PROJECTION.handlers["SampleOpened"]})
    quiet = Settings(**{**settings.model_dump(), "run_background": False})
    async with running(SAMPLE, quiet) as rt:
        [s] = await write(rt, 1, increments=3)
        assert rt.js is not None
        await Relay(rt.engine, rt.store, rt.js, rt.settings.stream_name,
                    partitions=rt.settings.partitions).publish_pending()
        [consumer] = replicas_of(opened_only, rt, 1)
        await consumer.ensure()
        # JetStream holds back the three increments: the filter names the handled type only
        assert await consumer.pending() == 1
        task = asyncio.create_task(consumer.run(rt.stop))
        await eventually(lambda: consumer.applied == 1)
        async with rt.engine.connect() as conn:
            events = await rt.store.load(conn, s)
        for event in events:  # the opening again, and an increment it does not handle: neither is applied
            await republish(rt, event)
        await eventually(lambda: _quiet(consumer))
        rt.stop.set()
        await task
        assert consumer.applied == 1
        assert await scalar(rt, "SELECT count(*) FROM sample.inbox WHERE consumer = 'sample-opened'") == 1
        assert await scalar(rt, "SELECT version FROM sample.consumer_streams WHERE consumer = 'sample-opened'") == 1


async def test_the_lag_gauge_follows_each_batch_not_the_watchers_period(settings: Settings) -> None:
    """Whoever waits for the system to be quiet (the demo's settle) reads the lag gauge: a batch being applied counts
    as pending, and once it is acknowledged the gauge says so at once, not at the watcher's next reading (2 s)."""
    release = asyncio.Event()

    async def held_back(conn: AsyncConnection, event: RecordedEvent) -> None:
        await release.wait()
        await PROJECTION.handlers["SampleOpened"](conn, event)

    spec = ConsumerSpec(name="sample-held-back", sources=["sample"], handlers={"SampleOpened": held_back})
    quiet = Settings(**{**settings.model_dump(), "run_background": False})
    async with running(SAMPLE, quiet) as rt:
        assert rt.js is not None
        [consumer] = replicas_of(spec, rt, 1)
        gauge = CONSUMER_LAG.labels(spec.name)
        task = asyncio.create_task(consumer.run(rt.stop))
        try:
            await eventually(lambda: len(consumer.held) == rt.settings.partitions)
            await eventually(lambda: gauge._value.get() == 0)  # the watcher's first reading: nothing yet
            await write(rt, 3, increments=0)
            await Relay(rt.engine, rt.store, rt.js, rt.settings.stream_name,
                        partitions=rt.settings.partitions).publish_pending()
            await eventually(lambda: gauge._value.get() == 3, within=5)  # fetched, not yet applied: pending
            release.set()
            await eventually(lambda: consumer.applied == 3)
            await eventually(lambda: gauge._value.get() == 0, within=0.5)  # the watcher reads every 2 s
        finally:
            release.set()
            rt.stop.set()
            await task


async def _quiet(consumer: Consumer) -> bool:
    return await consumer.pending() == 0


async def test_a_consumer_killed_between_commit_and_ack_applies_nothing_twice(settings: Settings) -> None:
    quiet = Settings(**{**settings.model_dump(), "run_background": False})
    async with running(SAMPLE, quiet) as rt:
        refs = await write(rt, 10)
        assert rt.js is not None
        await Relay(rt.engine, rt.store, rt.js, rt.settings.stream_name).publish_pending()
        env = {**os.environ, "PYTHONPATH": str(WORKER.parent), "POVGUARD_FAULT": "consumer.after_commit:1"}
        args = [sys.executable, str(WORKER), "consumer", settings.database_url_for("sample"), settings.nats_url, "30"]
        assert (await asyncio.to_thread(subprocess.run, args, env=env, timeout=60)).returncode == 137
        committed = await scalar(rt, "SELECT count(*) FROM sample.inbox")
        assert committed > 0  # the batch was committed, but never acknowledged
        env.pop("POVGUARD_FAULT")
        args[-1] = str(30 - committed)
        # redelivered after ack_wait, to a new process
        assert (await asyncio.to_thread(subprocess.run, args, env=env, timeout=60)).returncode == 0
        assert all(t == (3, 3, "2,3,") for t in (await totals(rt)).values())
        assert len(await totals(rt)) == len(refs)
        assert await scalar(rt, "SELECT count(*) FROM sample.inbox") == 30


async def test_failing_handler_is_retried_then_dead_lettered_without_blocking_later_events(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    h = bearer(settings)
    a = (await client.post("/v1/samples", json={"name": "a", "township": TOWN}, headers=h)).json()
    b = (await client.post("/v1/samples", json={"name": "b", "township": TOWN}, headers=h)).json()
    r = await client.post(f"/v1/samples/{a['id']}/increments", headers=h,
                          json={"by": 5, "note": "flaky-2", "expected_version": 1})
    assert r.status_code == 200, r.text
    await client.post(f"/v1/samples/{b['id']}/increments", headers=h,
                      json={"by": 7, "note": "poison", "expected_version": 1})
    await client.post(f"/v1/samples/{b['id']}/increments", headers=h, json={"by": 1, "expected_version": 2})
    await client.post(f"/v1/samples/{a['id']}/increments", headers=h, json={"by": 1, "expected_version": 2})

    async def projected(sample_id: str, applied: int) -> bool:
        r = await client.get(f"/v1/samples/{sample_id}/projection", headers=h)
        return r.status_code == 200 and r.json()["applied"] == applied

    await eventually(lambda: projected(a["id"], 3))  # flaky: two failures, then applied
    await eventually(lambda: projected(b["id"], 2))  # poison dead-lettered; the event after it applied
    assert (await client.get(f"/v1/samples/{b['id']}/projection", headers=h)).json()["total"] == 1

    inspector = bearer(settings, Role.INSPECTOR, "533123")
    listing = (await client.get("/v1/ops/dead-letters", headers=inspector)).json()
    [dead] = listing["data"]
    assert dead["error"] == "ValueError: poison note"
    assert dead["attempts"] == PROJECTION.max_attempts
    assert dead["event"]["stream_id"] == b["id"] and dead["event"]["data"] == {"by": 7, "note": "poison"}
    metrics = (await client.get("/metrics")).text
    assert 'povguard_dead_letters{consumer="sample-totals"} 1.0' in metrics
    assert 'povguard_consumer_failures_total{consumer="sample-totals"}' in metrics

    assert (await client.post(f"/v1/ops/dead-letters/{dead['id']}/retry", headers=h)).status_code == 403
    # operators of another county see none of them and retry none; personal data in an event is shown masked
    elsewhere = bearer(settings, Role.INSPECTOR, "110101")
    assert (await client.get("/v1/ops/dead-letters", headers=elsewhere)).json()["data"] == []
    r = await client.post(f"/v1/ops/dead-letters/{dead['id']}/retry", headers=bearer(settings, Role.ADMIN, "110101"))
    assert r.status_code == 403 and r.json()["code"] == "org_scope"
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.engine.begin() as conn:  # a dead letter whose event holds a member's facts
        await conn.execute(text("""
            INSERT INTO sample.dead_letters (consumer, event_id, subject, event, error, attempts)
            SELECT consumer, gen_random_uuid(), subject,
                   jsonb_set(event, '{data}', '{"members": [{"id_number": "533123197503090011",
                                                             "phone": "13812345678"}]}'), error, attempts
            FROM sample.dead_letters WHERE id = :i"""), {"i": dead["id"]})
    listed = (await client.get("/v1/ops/dead-letters", headers=inspector)).json()["data"]
    assert listed[1]["event"]["data"] == {"members": [{"id_number": "533123********0011", "phone": "138****5678"}]}
    admin = bearer(settings, Role.ADMIN, "533123")
    retry = await client.post(f"/v1/ops/dead-letters/{dead['id']}/retry", headers=admin)
    assert retry.status_code == 409 and "poison" in retry.json()["detail"]


async def test_two_replicas_share_the_partitions_fairly_and_keep_each_stream_in_order(settings: Settings) -> None:
    quiet = Settings(**{**settings.model_dump(), "run_background": False})
    async with running(SAMPLE, quiet) as rt:
        spec = PROJECTION.__class__(**{**PROJECTION.__dict__, "batch_size": 7})  # small batches interleave more
        first, second = replicas_of(spec, rt, 2)
        tasks = [asyncio.create_task(first.run(rt.stop))]
        await eventually(lambda: len(first.held) == rt.settings.partitions)  # alone, it holds every partition
        tasks.append(asyncio.create_task(second.run(rt.stop)))
        await eventually(lambda: fair_shares([first, second], rt.settings.partitions), within=10)
        assert not first.held & second.held
        refs = await write(rt, 20, increments=5)
        assert rt.js is not None
        await Relay(rt.engine, rt.store, rt.js, rt.settings.stream_name).publish_pending()
        await eventually(lambda: first.applied + second.applied == 120, within=60)
        rt.stop.set()
        await asyncio.gather(*tasks)
        assert first.applied > 0 and second.applied > 0  # both did work
        t = await totals(rt)
        assert all(t[s.id] == (15, 6, "2,3,4,5,6,") for s in refs)  # every stream applied once, in version order


async def test_a_batch_handler_keeps_every_guarantee_and_falls_back_one_by_one(settings: Settings) -> None:
    from povguard_platform_sample.consumers import BATCHED

    quiet = Settings(**{**settings.model_dump(), "run_background": False})
    async with running(SAMPLE, quiet) as rt:
        refs = await write(rt, 30)
        poisoned = StreamRef("sample", str(uuid7()))
        async with rt.engine.begin() as conn:
            await rt.store.append(conn, [NewEvent(poisoned, TOWN, SampleOpened(name="p", township=TOWN)),
                                         NewEvent(poisoned, TOWN, SampleIncremented(by=5, note="poison")),
                                         NewEvent(poisoned, TOWN, SampleIncremented(by=1))], {poisoned: 0}, META)
        assert rt.js is not None
        await Relay(rt.engine, rt.store, rt.js, rt.settings.stream_name).publish_pending()
        for _, event in (await stream_contents(rt.js))[:20]:  # duplicates under new message ids, in the same run
            await republish(rt, event)
        replicas = replicas_of(BATCHED, rt, 2)
        tasks = [asyncio.create_task(r.run(rt.stop)) for r in replicas]

        async def settled() -> bool:
            if sum(r.applied for r in replicas) < 92:
                return False
            return await replicas[0].pending() == 0

        await eventually(settled, within=60)
        rt.stop.set()
        await asyncio.gather(*tasks)
        t = await totals(rt)
        assert sum(r.batches for r in replicas) >= 5  # the batch handler did the work, not only the fallback
        assert all(t[s.id] == (3, 3, "2,3,") for s in refs)  # once each, in order, despite the duplicates
        assert t[poisoned.id] == (1, 2, "3,")  # the poison dead-lettered, the event after it applied
        mine = "WHERE consumer = 'sample-totals-batched'"
        assert await scalar(rt, f"SELECT count(*) FROM sample.dead_letters {mine}") == 1
        assert await scalar(rt, f"SELECT count(*) FROM sample.inbox {mine}") == 92


async def leases_held(rt: ServiceRuntime, consumer: str) -> int:
    """Leases of `consumer` granted right now, by any process (pg_locks)."""
    from povguard_platform.leases import lock_class

    async with rt.engine.connect() as conn:
        row = await conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                                      "AND objsubid = 2 AND classid = CAST(:c AS bigint)"),
                                 {"c": lock_class("sample", consumer, "lease")})
        return int(row.scalar_one())


async def test_a_replica_killed_mid_batch_hands_its_partitions_over_losing_and_doubling_nothing(
    settings: Settings,
) -> None:
    """Replica A (its own process) dies inside a batch transaction, as kill -9 would; replica B takes A's
    partitions within tick + 1 s (the lock frees when the socket closes) and applies A's batch after ack_wait."""
    quiet = Settings(**{**settings.model_dump(), "run_background": False})
    async with running(SAMPLE, quiet) as rt:
        env = {**os.environ, "PYTHONPATH": str(WORKER.parent), "POVGUARD_FAULT": "consumer.before_commit:1"}
        a = await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER), "consumer", settings.database_url_for("sample"), settings.nats_url,
            str(10**9), env=env)
        try:
            await eventually(lambda: _held_by_others(rt, 4), within=60)  # A alone holds every partition
            [b] = replicas_of(PROJECTION, rt, 1)
            task = asyncio.create_task(b.run(rt.stop))
            await eventually(lambda: _shared(rt, b), within=10)
            assert len(b.held) == 2
            refs = await write(rt, 40)
            assert rt.js is not None
            await Relay(rt.engine, rt.store, rt.js, rt.settings.stream_name).publish_pending()
            assert await asyncio.wait_for(a.wait(), 30) == 137  # died at its first commit, mid-batch
            died = asyncio.get_running_loop().time()
            await eventually(lambda: len(b.held) == 4, within=10)
            moved = asyncio.get_running_loop().time() - died
            assert moved < b.tick + 1.0, moved
            await eventually(lambda: _quiet(b), within=PROJECTION.ack_wait + 10)
            rt.stop.set()
            await task
        finally:
            if a.returncode is None:
                a.kill()
                await a.wait()
        t = await totals(rt)
        assert len(t) == len(refs) and all(v == (3, 3, "2,3,") for v in t.values())  # none lost, none twice
        assert await scalar(rt, "SELECT count(*) FROM sample.inbox") == 120
        assert b.applied == 120  # A committed nothing


async def _held_by_others(rt: ServiceRuntime, n: int) -> bool:
    return await leases_held(rt, PROJECTION.name) == n


async def _shared(rt: ServiceRuntime, b: Consumer) -> bool:
    return len(b.held) == 2 and await leases_held(rt, PROJECTION.name) == 4


async def test_two_replicas_under_load_converge_to_the_same_read_model_as_one(settings: Settings) -> None:
    """Writes go on while a second replica joins (the partitions rebalance under load); the read model is then
    rebuilt by one replica from the same events: both are the same, and what the writes say."""
    from povguard_platform.settings import asyncpg_dsn

    quiet = Settings(**{**settings.model_dump(), "run_background": False})
    async with running(SAMPLE, quiet) as rt:
        assert rt.js is not None
        stop_two = asyncio.Event()
        relay = Relay(rt.engine, rt.store, rt.js, rt.settings.stream_name, poll_interval=0.2)
        relay_task = asyncio.create_task(relay.run(asyncpg_dsn(settings.database_url_for("sample")), stop_two))
        spec = PROJECTION.__class__(**{**PROJECTION.__dict__, "batch_size": 20})
        first, second = replicas_of(spec, rt, 2)
        tasks = [asyncio.create_task(first.run(stop_two))]
        refs = await write(rt, 60, increments=0)
        for round_ in range(6):  # one increment per stream per round, interleaved across streams
            if round_ == 2:
                tasks.append(asyncio.create_task(second.run(stop_two)))
            for ref in refs:
                async with rt.engine.begin() as conn:
                    await rt.store.append(conn, [NewEvent(ref, TOWN, SampleIncremented(by=round_ + 1))],
                                          {ref: round_ + 1}, META)
        await eventually(lambda: _all_applied(rt, 60 * 7), within=60)
        await eventually(lambda: _quiet(first), within=30)
        stop_two.set()
        await asyncio.gather(relay_task, *tasks)
        assert first.applied > 0 and second.applied > 0
        two = await totals(rt)

        async with rt.engine.begin() as conn:  # rebuild: the read model, the inbox and the versions from scratch
            for table in ("totals", "inbox", "consumer_streams"):
                await conn.execute(text(f"DELETE FROM sample.{table}"))
        for partition in range(rt.settings.partitions):
            await rt.js.delete_consumer(rt.settings.stream_name, spec.durable(partition))
        [one] = replicas_of(spec, rt, 1)
        stop_one = asyncio.Event()
        task = asyncio.create_task(one.run(stop_one))
        await eventually(lambda: _all_applied(rt, 60 * 7), within=60)
        stop_one.set()
        await task
        assert await totals(rt) == two
        assert all(v == (21, 7, "2,3,4,5,6,7,") for v in two.values()) and len(two) == 60


async def _all_applied(rt: ServiceRuntime, n: int) -> bool:
    return await scalar(rt, "SELECT count(*) FROM sample.inbox") == n


async def test_a_blocked_database_keeps_the_batch_in_progress_and_applies_it_once_in_order(
    settings: Settings, admin_engine: AsyncEngine,
) -> None:
    """The read model is locked for longer than ack_wait, then the consumer's connection is killed: the batch is kept
    (in progress, so JetStream redelivers nothing) and retried whole, never counted as a handler failure."""
    quiet = Settings(**{**settings.model_dump(), "run_background": False})
    async with running(SAMPLE, quiet) as rt:
        [consumer] = replicas_of(PROJECTION, rt, 1)
        task = asyncio.create_task(consumer.run(rt.stop))
        await eventually(lambda: len(consumer.held) == rt.settings.partitions)
        async with admin_engine.begin() as admin:
            await admin.execute(text("LOCK TABLE sample.totals IN ACCESS EXCLUSIVE MODE"))
            refs = await write(rt, 10)
            assert rt.js is not None
            await Relay(rt.engine, rt.store, rt.js, rt.settings.stream_name).publish_pending()
            await asyncio.sleep(PROJECTION.ack_wait * 2)  # blocked past ack_wait: in_progress holds the batches
            await admin.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     "WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"))
        await eventually(lambda: _all_applied(rt, 30), within=30)
        await eventually(lambda: _quiet(consumer))
        assert rt.js is not None
        redelivered = [(await rt.js.consumer_info(rt.settings.stream_name, PROJECTION.durable(p))).num_redelivered
                       for p in range(rt.settings.partitions)]
        rt.stop.set()
        await task
        assert redelivered == [0] * rt.settings.partitions
        t = await totals(rt)
        assert len(t) == len(refs) and all(v == (3, 3, "2,3,") for v in t.values())
        assert await scalar(rt, "SELECT count(*) FROM sample.consumer_failures") == 0
        assert await scalar(rt, "SELECT count(*) FROM sample.dead_letters") == 0


async def test_a_deadlock_is_retried_whole_never_counted_against_the_handler(settings: Settings) -> None:
    """PostgreSQL's deadlock error (40P01), more times than max_attempts: the batch is tried again whole, in place;
    counted as handler failures it would have been dead-lettered."""
    left = [2 * PROJECTION.max_attempts + 2]  # the batch and the one-by-one path each meet one per round

    async def opened_after_deadlocks(conn: AsyncConnection, event: RecordedEvent) -> None:
        if left[0] > 0:
            left[0] -= 1
            await conn.execute(text("DO $$ BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; "
                                    "END $$"))
        await PROJECTION.handlers["SampleOpened"](conn, event)

    spec = ConsumerSpec(name="sample-deadlocks", sources=["sample"], max_attempts=PROJECTION.max_attempts,
                        backoff=PROJECTION.backoff, ack_wait=PROJECTION.ack_wait,
                        handlers={**PROJECTION.handlers, "SampleOpened": opened_after_deadlocks})
    quiet = Settings(**{**settings.model_dump(), "run_background": False})
    async with running(SAMPLE, quiet) as rt:
        [s] = await write(rt, 1)
        assert rt.js is not None
        await Relay(rt.engine, rt.store, rt.js, rt.settings.stream_name).publish_pending()
        [consumer] = replicas_of(spec, rt, 1)
        task = asyncio.create_task(consumer.run(rt.stop))
        await eventually(lambda: _all_applied(rt, 3), within=30)
        rt.stop.set()
        await task
        assert left == [0]
        assert (await totals(rt))[s.id] == (3, 3, "2,3,")
        assert await scalar(rt, "SELECT count(*) FROM sample.dead_letters") == 0


async def test_a_batch_costs_the_platform_two_statements_after_its_lock_whatever_its_size(settings: Settings) -> None:
    """The batch path's own work (lease, inbox, versions, failures) is one read and one write per batch, with no
    savepoint: every statement PostgreSQL is sent, through SQLAlchemy or asyncpg directly, is counted."""
    from sqlalchemy import event
    from sqlalchemy.ext.asyncio import create_async_engine

    from povguard_platform_sample.consumers import BATCHED

    quiet = Settings(**{**settings.model_dump(), "run_background": False})
    async with running(SAMPLE, quiet) as rt:
        await write(rt, 30)
        assert rt.js is not None
        await Relay(rt.engine, rt.store, rt.js, rt.settings.stream_name).publish_pending()
        sent: list[str] = []
        engine = create_async_engine(rt.engine.url)

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def through_sqlalchemy(conn: object, cursor: object, statement: str, *_: object) -> None:
            sent.append(statement)

        @event.listens_for(engine.sync_engine, "connect")
        def through_asyncpg(dbapi_connection: object, _: object) -> None:
            # SQLAlchemy's own statements are prepared (not logged by asyncpg); the raw ones are
            dbapi_connection._connection.add_query_logger(lambda q: sent.append(q.query))  # type: ignore[attr-defined]

        consumer = Consumer(BATCHED, "sample", engine, rt.js, rt.settings.stream_name, rt.settings.partitions)
        task = asyncio.create_task(consumer.run(rt.stop))
        try:
            await eventually(lambda: consumer.applied == 90, within=60)
        finally:
            rt.stop.set()
            await task
            await engine.dispose()
        t = await totals(rt)
        assert len(t) == 30 and all(v == (3, 3, "2,3,") for v in t.values())
        locks = sum("pg_advisory_xact_lock" in s for s in sent)
        platform = [s for s in sent if any(table in s for table in ("inbox", "consumer_streams",
                                                                    "consumer_failures", "pg_locks"))]
        assert consumer.batches >= 9 and locks >= consumer.batches  # 90 events, batches of at most 10
        assert not [s for s in sent if "SAVEPOINT" in s.upper()]
        assert len(platform) <= 2 * locks, platform
