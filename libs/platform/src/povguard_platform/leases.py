"""Partition leases: which replica of a consumer reads which partition (DESIGN.md, "Order and scale-out").

A lease is a PostgreSQL session advisory lock, (consumer key, partition), held on one dedicated connection of the
replica to its service's own database. No extra moving part: the database the batches commit to is the arbiter, a
replica killed with -9 closes its socket so its leases free at once, and TCP keepalives/tcp_user_timeout (set on
the session) free them within about 10 s after a silent network loss. The replica pings the connection every
`tick` and gives its partitions up itself after `PING_TIMEOUT` without an answer, before the server frees them.
Every batch transaction also checks, inside the transaction, that the lease is still held by this connection.

Fair share: each replica holds a member lock (consumer member key, slot); the live replicas are the granted member
locks in pg_locks. Each replica keeps at most ceil(partitions / live) and releases the rest after their batch in
flight, so a replica started later gets its share within a couple of ticks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import zlib
from collections.abc import Sequence

import asyncpg

log = logging.getLogger(__name__)

PING_TIMEOUT = 3.0
MAX_MEMBERS = 1024
_SESSION = ("SET application_name = 'povguard-lease'", "SET tcp_keepalives_idle = 5",
            "SET tcp_keepalives_interval = 2", "SET tcp_keepalives_count = 2", "SET tcp_user_timeout = 9000")


def lock_class(schema: str, consumer: str, kind: str) -> int:
    """The first key of a two-key advisory lock; positive, so that it reads the same as pg_locks.classid (oid)."""
    return zlib.crc32(f"povguard.{kind}.{schema}.{consumer}".encode()) & 0x7FFFFFFF


def lease_held_sql(c: str, p: str, pid: str) -> str:
    """Whether backend `pid` holds the lease (classid `c`, partition `p`): an SQL expression over the given
    placeholders. pg_locks is live, not a snapshot, so it may share a statement with the batch's reads."""
    return f"""EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND classid = CAST({c} AS bigint) AND objid = CAST({p} AS bigint) AND objsubid = 2 AND pid = {pid})"""


class LeaseLost(Exception):
    """The batch's partition is no longer leased by this replica: its messages go back to JetStream."""


class Leases:
    def __init__(self, dsn: str, schema: str, consumer: str, partitions: int) -> None:
        self.dsn = dsn
        self.partitions = partitions
        self.lease_class = lock_class(schema, consumer, "lease")
        self.member_class = lock_class(schema, consumer, "member")
        self.conn: asyncpg.Connection | None = None
        self.pid = 0
        self.slot = 0
        self.held: set[int] = set()

    async def connect(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            for statement in _SESSION:
                with contextlib.suppress(asyncpg.PostgresError):  # older servers lack tcp_user_timeout
                    await conn.execute(statement)
            self.pid = int(await conn.fetchval("SELECT pg_backend_pid()"))
            for slot in range(MAX_MEMBERS):
                if await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", self.member_class, slot):
                    self.slot = slot
                    break
        except BaseException:
            await conn.close()
            raise
        self.conn, self.held = conn, set()

    async def alive(self) -> bool:
        if self.conn is None or self.conn.is_closed():
            return False
        try:
            await asyncio.wait_for(self.conn.fetchval("SELECT 1"), PING_TIMEOUT)
            return True
        except Exception:
            return False

    async def drop(self) -> None:
        """Forget every lease (the connection is gone or going; closing it frees whatever it still held)."""
        self.held = set()
        if self.conn is not None:
            conn, self.conn = self.conn, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), PING_TIMEOUT)
            if not conn.is_closed():
                conn.terminate()

    async def share(self) -> int:
        assert self.conn is not None
        live = int(await self.conn.fetchval(
            """SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND classid = $1::bigint""", self.member_class))
        return math.ceil(self.partitions / max(1, live))

    def preferred(self, live_share: int) -> Sequence[int]:
        """Partitions in this replica's order of preference: starting at its slot's share, so that replicas
        started together mostly try different ones first."""
        start = (self.slot * live_share) % self.partitions
        return [(start + i) % self.partitions for i in range(self.partitions)]

    async def acquire(self, partition: int) -> bool:
        assert self.conn is not None
        if await self.conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", self.lease_class, partition):
            self.held.add(partition)
            return True
        return False

    async def release(self, partition: int) -> None:
        self.held.discard(partition)
        if self.conn is not None:
            await self.conn.fetchval("SELECT pg_advisory_unlock($1, $2)", self.lease_class, partition)
