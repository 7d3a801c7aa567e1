"""Who leads what in a local cluster (`povguard up --nats-nodes 3 --replicas 2`), for the failover test and bench:
the NATS node that leads the events stream (JetStream's answer), the replica of each service whose relay holds the
leadership (the session advisory lock of `povguard_platform.relay`), and when the first event written after a moment
reached the audit ledger (the whole path: append, relay, stream, consumer)."""

from __future__ import annotations

import asyncpg
import nats
import psutil

from povguard_platform import relay
from povguard_platform.settings import asyncpg_dsn


def node_process(server_name: str) -> str:
    """The supervisor's name for a node: server n2 is process nats-2 (runtime.servers.nats_cluster)."""
    return f"nats-{server_name.removeprefix('n')}"


async def stream_leader(nats_url: str, stream: str = "POVGUARD_EVENTS") -> tuple[str, int]:
    """The server name of the stream's leader and the stream's number of replicas."""
    nc = await nats.connect([u.strip() for u in nats_url.split(",")])
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
