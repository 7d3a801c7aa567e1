"""The outbox relay against real NATS and PostgreSQL, including crashes between commit and publish and between
publish and checkpoint: after a restart every event is on the stream exactly once, in position order."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import stream_contents

from povguard_platform.actor import Actor, Role
from povguard_platform.bus import connect, ensure_stream
from povguard_platform.envelope import Metadata, NewEvent, StreamRef
from povguard_platform.ids import uuid7
from povguard_platform.partitions import DEFAULT_PARTITIONS, partition_key, partition_of
from povguard_platform.service import ServiceDef
from povguard_platform.settings import Settings
from povguard_platform_sample.events import SampleIncremented, SampleOpened
from povguard_tools.testing import eventually, running

TOWN = "533123102"
META = Metadata(actor=Actor(user="zhao", role=Role.VILLAGE_CLERK, org=TOWN))
WORKER = Path(__file__).with_name("workers.py")


async def append_sample_events(settings: Settings, definition: ServiceDef, streams: int) -> int:
    async with running(definition, Settings(**{**settings.model_dump(), "run_background": False})) as rt:
        for _ in range(streams):
            s = StreamRef("sample", str(uuid7()))
            async with rt.engine.begin() as conn:
                await rt.store.append(conn, [NewEvent(s, TOWN, SampleOpened(name="n", township=TOWN)),
                                             NewEvent(s, TOWN, SampleIncremented(by=2))], {s: 0}, META)
    return streams * 2


def run_worker(settings: Settings, fault: str | None) -> int:
    env = {**os.environ, "PYTHONPATH": str(WORKER.parent)}
    env.pop("POVGUARD_FAULT", None)
    if fault:
        env["POVGUARD_FAULT"] = fault
    return subprocess.run([sys.executable, str(WORKER), "relay", settings.database_url_for("sample"),
                           settings.nats_url],
                          env=env, timeout=60).returncode


async def test_relay_publishes_every_event_in_position_order_with_msg_id(settings: Settings) -> None:
    from povguard_platform_sample.service import SAMPLE

    total = await append_sample_events(settings, SAMPLE, 30)
    async with running(SAMPLE, settings) as rt:
        assert rt.js is not None
        js = rt.js
        await eventually(lambda: _count(js, total))
        contents = await stream_contents(js)
        info = await js.stream_info("POVGUARD_EVENTS")
        first_subject = (await js.get_msg("POVGUARD_EVENTS", info.state.first_seq)).subject
        async with rt.engine.connect() as conn:
            stored = await rt.store.read_after(conn, 0, total)
    # the payload goes out as stored (PostgreSQL's text of the jsonb, not re-encoded): the same JSON
    assert [e.data for _, e in contents] == [e.data for e in stored] and stored[0].data
    positions = [e.position for _, e in contents]
    assert positions == sorted(positions) and len(set(positions)) == total
    assert all(msg_id == str(e.id) for msg_id, e in contents)
    first = contents[0][1]
    assert first.actor == META.actor
    # the subject carries the partition, fixed by the stream (a sample names no household)
    partition = partition_of(partition_key(first.stream, None), DEFAULT_PARTITIONS)
    assert first_subject == f"ev.sample.SampleOpened.{partition}.{TOWN}"


async def _count(js: object, expected: int) -> bool:
    info = await js.stream_info("POVGUARD_EVENTS")  # type: ignore[attr-defined]
    return bool(info.state.messages >= expected)


@pytest.mark.parametrize("fault", ["relay.before_publish:2", "relay.after_publish:1", "relay.after_publish:3"])
async def test_relay_killed_mid_way_republishes_nothing_twice_and_loses_nothing(
    settings: Settings, fault: str
) -> None:
    from povguard_platform_sample.service import SAMPLE

    total = await append_sample_events(settings, SAMPLE, 50)  # 100 events, published 25 at a time
    assert run_worker(settings, fault) == 137  # died at the fault point, like kill -9
    nc = await connect(settings.nats_url, "test")
    js = nc.jetstream()
    await ensure_stream(js, "POVGUARD_EVENTS", 3600)
    before = len(await stream_contents(js))
    assert before < total
    assert run_worker(settings, None) == 0  # restarted relay catches up
    contents = await stream_contents(js)
    await nc.drain()
    ids = [msg_id for msg_id, _ in contents]
    assert len(ids) == total and len(set(ids)) == total  # exactly once
    positions = [e.position for _, e in contents]
    assert positions == sorted(positions)
