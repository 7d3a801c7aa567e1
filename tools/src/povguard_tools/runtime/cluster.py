"""Who leads what in a local cluster (`povguard up --nats-nodes 3 --replicas 2`), for the failover test and bench:
the NATS node that leads the events stream (JetStream's answer), the replica of each service whose relay holds the
leadership (the session advisory lock of `povguard_platform.relay`), and when the first event written after a moment
reached the audit ledger (the whole path: append, relay, stream, consumer); and the steady write load both put on
it while processes die."""

from __future__ import annotations

import itertools
import os
import threading
import time

import asyncpg
import httpx
import nats
import psutil

from povguard_platform import bus, relay
from povguard_platform.actor import Actor, Role
from povguard_platform.auth import issue_token
from povguard_platform.settings import Settings, asyncpg_dsn


class WriteLoad:
    """A department sends warnings, one after another, through intake's one port; each answer is timed. Run it in a
    thread (`run`) and stop it with `stopping`."""

    def __init__(self, url: str, settings: Settings, tag: str) -> None:
        actor = Actor(user="民政-接口", role=Role.DEPARTMENT, org="533123", dept="民政")
        self.url, self.tag = url, f"{tag}-{os.getpid()}"
        self.headers = {"Authorization": "Bearer " + issue_token(actor, settings)}
        self.ok: list[float] = []  # when each 201 came back
        self.failed: list[float] = []  # refused connections, resets, 5xx: the moments a replica or node died
        self.wrong: list[str] = []  # any other answer is a bug, not an outage
        self.stopping = threading.Event()
        self.serial = itertools.count()

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stopping.is_set():
                body = {"department": "民政", "kind": "申请低保", "id_number": "533123199001011236",
                        "person_name": "测试", "occurred_on": "2022-05-01", "reported_on": "2022-05-06",
                        "source_ref": f"{self.tag}-{next(self.serial)}", "note": "failover"}
                try:
                    r = client.post(f"{self.url}/v1/warnings", json=body, headers=self.headers)
                    if r.status_code == 201:
                        self.ok.append(time.time())
                    elif r.status_code >= 500:
                        self.failed.append(time.time())
                    else:
                        self.wrong.append(r.text)
                except httpx.TransportError:
                    self.failed.append(time.time())
                time.sleep(0.05)


def node_process(server_name: str) -> str:
    """The supervisor's name for a node: server n2 is process nats-2 (runtime.servers.nats_cluster)."""
    return f"nats-{server_name.removeprefix('n')}"


async def stream_leader(nats_url: str, stream: str = "POVGUARD_EVENTS") -> tuple[str, int]:
    """The server name of the stream's leader and the stream's number of replicas."""
    nc = await nats.connect(bus.servers(nats_url))
    try:
        info = await nc.jetstream().stream_info(stream)
        if info.cluster is None or info.cluster.leader is None:
            raise RuntimeError(f"{stream} has no leader (not on a JetStream cluster, or electing one)")
        return info.cluster.leader, info.config.num_replicas or 1
    finally:
        await nc.close()


async def relay_leaders(database_url: str, pg_port: int, pids: dict[str, int],
                        services: list[str]) -> dict[str, list[str]]:
    """Per service, the processes (of `pids`, by name) whose session holds its relay lock: the lock's session is
    matched to a process by the client port of its connection. Exactly one per service when all is well."""
    port_owner = {c.laddr.port: name for name, pid in pids.items() if psutil.pid_exists(pid)
                  for c in psutil.Process(pid).net_connections("tcp") if c.raddr and c.raddr.port == pg_port}
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        leaders = {}
        for service in services:
            key = relay.lock_key(service)
            rows = await conn.fetch("SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                                    "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 "
                                    "AND l.objid = $1 AND l.objsubid = 1", key)
            leaders[service] = [port_owner.get(r["client_port"], f"unknown:{r['client_port']}") for r in rows]
        return leaders
    finally:
        await conn.close()


async def first_applied_after(database_url: str, moment: float, source: str = "intake") -> float | None:
    """When (epoch seconds) the first event `source` stored after `moment` was applied to the audit ledger, if yet."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        applied = await conn.fetchval(
            f"SELECT extract(epoch FROM min(i.applied_at)) FROM audit.inbox i JOIN {source}.events e "
            "ON e.id = i.event_id WHERE e.time > to_timestamp($1)", moment)
        return None if applied is None else float(applied)
    finally:
        await conn.close()
