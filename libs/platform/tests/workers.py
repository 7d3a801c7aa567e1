"""Processes the crash tests start and kill: the relay, or the sample consumer, run until caught up.
POVGUARD_FAULT makes them die (os._exit) at a named point, as kill -9 would."""

from __future__ import annotations

import asyncio
import sys

from sqlalchemy.ext.asyncio import create_async_engine

from povguard_platform.bus import connect, ensure_stream
from povguard_platform.consumer import Consumer
from povguard_platform.eventstore import EventStore
from povguard_platform.relay import Relay
from povguard_platform.settings import sqlalchemy_url
from povguard_platform_sample.consumers import PROJECTION

STREAM = "POVGUARD_EVENTS"


async def main(role: str, database_url: str, nats_url: str, expected: int) -> None:
    engine = create_async_engine(sqlalchemy_url(database_url))
    nc = await connect(nats_url, f"worker-{role}")
    js = nc.jetstream()
    await ensure_stream(js, STREAM, 3600)
    if role == "relay":
        await Relay(engine, EventStore("sample"), js, STREAM, batch_size=25).publish_pending()
    else:
        consumer = Consumer(PROJECTION, "sample", engine, js, STREAM)
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        while True:  # until everything is applied and acknowledged
            await asyncio.sleep(0.1)
            if consumer.applied >= expected and not await consumer.pending():
                break
        stop.set()
        await task
    await nc.drain()
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 0))
