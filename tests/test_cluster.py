"""`povguard up --nats-nodes 3 --replicas 2` for real: a 3-node JetStream cluster (the events stream on all three)
and two processes of each service sharing its port. Under a steady write load through the HTTP API, kill -9 the
node that leads the events stream (JetStream says which), then the intake replica that leads intake's relay: the
stream elects another leader, the other replica keeps answering on the same port and takes the relay over (one
leader per service throughout), writes and their delivery resume within a bound, and nothing is lost or applied
twice (conservation)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
import pytest
from system_helpers import SERVICES, conservation, kill_and_recover, running_up, status, wait_for

from povguard_platform.settings import Settings
from povguard_tools.runtime.cluster import (
    WriteLoad,
    first_applied_after,
    node_process,
    relay_leaders,
    stream_leader,
)

NODES, REPLICAS = 3, 2


def resumed_after(writes: WriteLoad, moment: float) -> float:
    """Seconds from `moment` to the first successful write after it (waiting for it up to a minute)."""
    wait_for(lambda: bool(writes.ok) and writes.ok[-1] > moment, 60, "a write succeeding")
    return min(t for t in writes.ok if t > moment) - moment


def applied_within(pg: str, moment: float, within: float) -> float:
    found: list[float] = []

    def check() -> bool:
        at = asyncio.run(first_applied_after(pg, moment))
        if at is not None:
            found.append(at - moment)
        return at is not None

    wait_for(check, within, "an event written after the kill applied")
    return found[0]


@pytest.mark.timeout(300)
def test_node_and_replica_failover_under_load(tmp_path: Path) -> None:
    with running_up(tmp_path, ["--nats-nodes", str(NODES), "--replicas", str(REPLICAS)]) as ports:
        pg = f"postgresql://postgres@127.0.0.1:{ports['pg']}/povguard"
        nats_url = ",".join(f"nats://127.0.0.1:{ports['nats'] + i}" for i in range(NODES))
        procs = status(tmp_path)
        replicas = [f"{s}-{i}" for s in SERVICES for i in range(1, REPLICAS + 1)]
        assert set(procs) == {"postgres", *(f"nats-{i}" for i in range(1, NODES + 1)), *replicas}
        assert all(httpx.get(f"{procs[r]['url']}/readyz").status_code == 200 for r in replicas)  # each replica

        pids = {r: procs[r]["pid"] for r in replicas}
        leaders = asyncio.run(relay_leaders(pg, ports["pg"], pids, SERVICES))
        assert all(len(leaders[s]) == 1 and leaders[s][0].startswith(f"{s}-") for s in SERVICES), leaders

        writes = WriteLoad(f"http://127.0.0.1:{ports['intake']}", Settings(), "cluster")
        worker = threading.Thread(target=writes.run)
        worker.start()
        figures: dict[str, float] = {}
        try:
            wait_for(lambda: len(writes.ok) >= 20 or bool(writes.wrong), 30, "the write load running")
            assert not writes.wrong, writes.wrong[:3]

            leader, copies = asyncio.run(stream_leader(nats_url))
            assert copies == NODES
            node = node_process(leader)
            killed_at = time.time()
            figures["node_back_ready_s"] = kill_and_recover(tmp_path, ports, node)
            figures["node_write_resumed_s"] = resumed_after(writes, killed_at)
            figures["node_next_applied_s"] = applied_within(pg, killed_at, 60)
            # the stream is led again: by another node, or by the restarted one when it is back (about a second)
            # before the others' election timeout, which Raft allows; the writes and delivery below are the point
            wait_for(lambda: _leader_or_none(nats_url) is not None, 30, "a stream leader")

            # the intake replica whose relay publishes intake's events
            [relay] = asyncio.run(relay_leaders(pg, ports["pg"], pids, SERVICES))["intake"]
            killed_at = time.time()
            figures["replica_back_ready_s"] = kill_and_recover(tmp_path, ports, relay)
            figures["replica_write_resumed_s"] = resumed_after(writes, killed_at)
            figures["replica_next_applied_s"] = applied_within(pg, killed_at, 60)
            time.sleep(1)
        finally:
            writes.stopping.set()
            worker.join(30)

        pids = {r: p["pid"] for r, p in status(tmp_path).items() if r in replicas}
        leaders = asyncio.run(relay_leaders(pg, ports["pg"], pids, SERVICES))
        assert all(len(leaders[s]) == 1 and leaders[s][0].startswith(f"{s}-") for s in SERVICES), leaders

        deadline = time.monotonic() + 60
        any_node = f"nats://127.0.0.1:{ports['nats']}"  # each node answers for the whole cluster
        while (diff := asyncio.run(conservation(pg, any_node))) and time.monotonic() < deadline:
            time.sleep(1)
        assert diff == {}, diff
        assert not writes.wrong, writes.wrong[:3]
        print(f"failover figures: {figures}; writes {len(writes.ok)} ok, {len(writes.failed)} failed")
        # loose bounds (measured on a shared 2-core machine: see the README); a regression is minutes, not seconds
        assert max(figures["node_write_resumed_s"], figures["replica_write_resumed_s"]) < 15, figures
        assert max(figures["node_next_applied_s"], figures["replica_next_applied_s"]) < 30, figures


def _leader_or_none(nats_url: str) -> str | None:
    try:
        return asyncio.run(stream_leader(nats_url))[0]
    except Exception:  # electing, or the node asked is the one that died
        return None
