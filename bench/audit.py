"""Audit ledger benchmark: sustained ingest (entries/s) as a ratio to SHA-256 alone, to a raw hashlib Merkle tree
(the append path without the database) and to a raw insert of the same rows; inclusion and consistency proof time
at large trees; a whole-ledger export (JSON Lines, streamed) and its offline verification, each in a child process
whose peak RSS is measured.

    python bench/audit.py --ingest 20000 --proof-size 1000000 --proof-size 10000000 \
        --verify-entries 1000000 --verify-entries 10000000 --out var/bench

Starts its own durable PostgreSQL in a temporary directory and removes it at the end. Prints a table and writes
`<out>/audit.json`. Ingest goes through `ledger.append` (the sequencer the consumer uses) in batches; the large tree
for the proof timings is bulk-loaded (leaves and nodes computed by the same pure Merkle code, written with COPY),
since building it through the sequencer would take longer than the benchmark should.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from rich.console import Console
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from povguard_audit import consumers, ledger, merkle, note
from povguard_audit.entry import Entry, canonical_event
from povguard_audit.service import SERVICE
from povguard_audit.verify import BUNDLE_FORMAT
from povguard_platform.actor import Actor, Role
from povguard_platform.envelope import RecordedEvent, StreamRef
from povguard_platform.ids import uuid7
from povguard_platform.migrations import upgrade
from povguard_platform.roles import provision
from povguard_platform.settings import sqlalchemy_url
from povguard_tools.runtime.servers import EmbeddedPostgres

console = Console()
ACTOR = Actor(user="张三", role=Role.COLLECTOR, org="533123101")


def events(n: int, households: int = 5000, actors: int = 50) -> list[RecordedEvent]:
    """Visits dated inside the campaign (no data-lock finding), recorded now (no back-dating), by 50 collectors."""
    now = datetime.now(UTC)
    return [RecordedEvent(
        id=uuid7(), source="intake", stream=StreamRef("household", f"hh-{i % households}"), version=i // households + 1,
        position=i + 1, type="VisitRecorded", type_version=1, township="533123101", time=now,
        actor=ACTOR.model_copy(update={"user": f"采集员{i % actors}"}),
        data={"household_id": f"hh-{i % households}", "visit_id": f"v{i}",
              "form": {"visit_date": "2022-05-10", "income": {"wages": 9000 + i % 700}, "note": "入户走访"}})
        for i in range(n)]


async def bench_consumer_path(url: str, n: int, batch: int) -> dict[str, float]:
    """The ledger consumer's path: `consumers.record()` one event at a time (ledger append, anomaly checks,
    checkpoint check), in one transaction per `batch` events with a savepoint per event, as the platform's
    consumer runs it (its inbox bookkeeping excluded). Signs a checkpoint every 1000 entries (the default)."""
    engine = create_async_engine(sqlalchemy_url(url), pool_size=2)
    evs = events(n)
    started = time.perf_counter()
    for i in range(0, n, batch):
        async with engine.begin() as conn:
            for event in evs[i:i + batch]:
                async with conn.begin_nested():
                    await consumers.record(conn, event)
    rate = n / (time.perf_counter() - started)
    async with engine.connect() as conn:
        findings = int((await conn.execute(text("SELECT count(*) FROM audit.findings"))).scalar_one())
    await engine.dispose()
    return {"entries": n, "batch": batch, "entries_per_s": rate, "findings": findings}


def campaign_events(households: int) -> list[RecordedEvent]:
    """A campaign's mix per household, in ledger order: a visit and its income assessment (floats, as the bus carries
    them), a case opened with a lead date, the three review levels (a fifth of them dated past the 15-day limit:
    identification_limit findings) and the county's decision. Township reviewers act for many cases, as in a county."""
    now = datetime.now(UTC)
    out: list[RecordedEvent] = []

    def add(source: str, stream: StreamRef, type_: str, user: str, role: Role, data: dict[str, Any]) -> None:
        out.append(RecordedEvent(
            id=uuid7(), source=source, stream=stream, version=1, position=len(out) + 1, type=type_, type_version=1,
            township="533123101", time=now, actor=Actor(user=user, role=role, org="533123101"), data=data,
            policy="533123-2022@1"))

    for h in range(households):
        hid, case = f"hh-{h}", f"c-{h}"
        late = h % 5 == 0
        per_capita = 5200.5 + h % 3000
        add("intake", StreamRef("household", hid), "VisitRecorded", f"采集员{h % 50}", Role.COLLECTOR, {
            "household_id": hid, "visit_id": f"v{h}", "form": {
                "visit_date": "2022-05-10", "collector": f"采集员{h % 50}", "income": {"wages": 9000.0 + h % 700,
                "pension": 1200.5}, "spending": {"medical": 300.25}, "application_signed": True, "note": "入户走访"}})
        add("assessment", StreamRef("assessment", hid), "IncomeAssessed", "system", Role.SYSTEM, {
            "household_id": hid, "village_code": "533123101201", "visit_id": f"v{h}", "household_size": 3,
            "size_basis": "在册成员", "lines": {"wages": per_capita * 3}, "net_income": per_capita * 3,
            "per_capita": per_capita, "band": "监测范围以下", "previous_per_capita": None, "change_ratio": 0.125})
        review: list[tuple[str, dict[str, Any]]] = [
                  ("CaseOpened", {"village_code": "533123101201", "township_code": "533123101",
                                  "outcome": "新识别监测对象", "risks": ["因病"], "lead_date": "2022-05-12",
                                  "source": "研判建议"}),
                  ("AppraisalHeld", {"acted_on": "2022-05-16", "meeting_date": "2022-05-16", "votes_for": 45}),
                  ("VillageDecided", {"acted_on": "2022-05-18", "noticed": True, "opinion": "同意"}),
                  ("TownshipReviewed", {"acted_on": "2022-06-05" if late else "2022-05-20", "spot_checked": True,
                                        "override_reason": "补录" if late else None}),
                  ("CountyDecided", {"outcome": "新识别监测对象", "kind": "监测对象", "status": "风险未消除",
                                     "decided_on": "2022-05-25"})]
        for type_, data in review:
            role = Role.TOWNSHIP_REVIEWER if type_ == "TownshipReviewed" else Role.VILLAGE_COMMITTEE
            add("review", StreamRef("case", case), type_, f"审核员{h % 20}", role,
                {"case_id": case, "household_id": hid, **data})
    return out


def _postgres_cpu(data_dir: Path) -> dict[int, float]:
    """CPU seconds so far of the server's processes (postmaster and backends), by pid."""
    import psutil

    root = psutil.Process(int((data_dir / "postmaster.pid").read_text().split()[0]))
    out: dict[int, float] = {}
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        out[p.pid] = t.user + t.system
    return out


def _pg_spent(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


async def bench_batch_path(url: str, data_dir: Path, households: int, batch: int) -> dict[str, float]:
    """The ledger consumer's batch handler `consumers.record_batch` (ledger append, anomaly checks with their
    findings, checkpoints) over a campaign's event mix, `batch` events per transaction as the consumer fetches them:
    entries/s and CPU seconds per 1000 entries of this process and of PostgreSQL."""
    engine = create_async_engine(sqlalchemy_url(url), pool_size=2)
    evs = campaign_events(households)
    async with engine.begin() as conn:  # the connection's backend exists before the CPU is read
        await conn.execute(text("SELECT 1"))
    pg_before, cpu_before = _postgres_cpu(data_dir), time.process_time()
    started = time.perf_counter()
    for i in range(0, len(evs), batch):
        async with engine.begin() as conn:
            await consumers.record_batch(conn, evs[i:i + batch])
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    pg_after = _postgres_cpu(data_dir)
    pg = _pg_spent(pg_before, pg_after)
    async with engine.connect() as conn:
        findings = int((await conn.execute(text("SELECT count(*) FROM audit.findings"))).scalar_one())
    await engine.dispose()
    n = len(evs)
    return {"entries": n, "batch": batch, "entries_per_s": n / wall, "findings": findings,
            "cpu_ms_per_entry": cpu / n * 1e3, "postgres_cpu_ms_per_entry": pg / n * 1e3}


async def bench_ingest(url: str, data_dir: Path, n: int, batch: int) -> dict[str, float]:
    engine = create_async_engine(sqlalchemy_url(url), pool_size=2)
    evs = events(n)
    # SHA-256 alone: the two hashes per entry (payload and leaf) over bytes prepared beforehand.
    payloads = [canonical_event(e) for e in evs]
    started = time.perf_counter()
    for p in payloads:
        hashlib.sha256(p).digest()
        hashlib.sha256(b"\x00" + p[:400]).digest()
    sha_rate = n / (time.perf_counter() - started)
    # The append path without the database: the ledger's CompactTree, and a bare hashlib stack of the same leaves.
    leaves = [hashlib.sha256(b"\x00" + p[:400]).digest() for p in payloads]
    started = time.perf_counter()
    tree = merkle.CompactTree()
    for leaf in leaves:
        tree.append(leaf)
    compact_rate = n / (time.perf_counter() - started)
    started = time.perf_counter()
    stack: list[tuple[int, bytes]] = []
    for leaf in leaves:
        level, h = 0, leaf
        while stack and stack[-1][0] == level:
            h = hashlib.sha256(b"\x01" + stack.pop()[1] + h).digest()
            level += 1
        stack.append((level, h))
    hashlib_rate = n / (time.perf_counter() - started)

    async with engine.begin() as conn:
        await conn.execute(text("SELECT 1"))
    pg_before, cpu_before = _postgres_cpu(data_dir), time.process_time()
    started = time.perf_counter()
    for i in range(0, n, batch):
        async with engine.begin() as conn:
            await ledger.append(conn, evs[i:i + batch])
    ingest_rate = n / (time.perf_counter() - started)
    ingest_cpu, ingest_pg = time.process_time() - cpu_before, _pg_spent(pg_before, _postgres_cpu(data_dir))

    # A raw insert of the very same rows (ledger rows, tree nodes, payloads) into copies of the tables, without
    # hashing, locking or reading the frontier.
    async with engine.begin() as conn:
        for t in ("ledger", "tree_nodes", "payloads"):
            await conn.execute(text(f"CREATE TABLE public.raw_{t} (LIKE audit.{t} INCLUDING ALL)"))
    await engine.dispose()
    conn2 = await asyncpg.connect(url)
    ledger_rows = await conn2.fetch(f"SELECT {ledger.ENTRY_COLUMNS} FROM audit.ledger ORDER BY idx")
    node_rows = await conn2.fetch("SELECT level, idx, hash FROM audit.tree_nodes")
    payload_rows = await conn2.fetch("SELECT idx, body, redacted_at, redaction_reason FROM audit.payloads")
    cols = [c.strip() for c in ledger.ENTRY_COLUMNS.split(",")]
    pg_before, cpu_before = _postgres_cpu(data_dir), time.process_time()
    started = time.perf_counter()
    for i in range(0, n, batch):
        async with conn2.transaction():
            await conn2.copy_records_to_table("raw_ledger", records=[tuple(r) for r in ledger_rows[i:i + batch]],
                                              columns=cols)
            await conn2.copy_records_to_table("raw_payloads", records=[tuple(r) for r in payload_rows[i:i + batch]])
            await conn2.copy_records_to_table("raw_tree_nodes",
                                              records=[tuple(r) for r in node_rows[i:i + batch]])
    raw_rate = n / (time.perf_counter() - started)
    raw_cpu, raw_pg = time.process_time() - cpu_before, _pg_spent(pg_before, _postgres_cpu(data_dir))
    await conn2.close()
    return {"entries": n, "batch": batch, "ledger_entries_per_s": ingest_rate, "sha256_only_per_s": sha_rate,
            "compact_tree_appends_per_s": compact_rate, "raw_hashlib_tree_appends_per_s": hashlib_rate,
            "raw_insert_per_s": raw_rate, "ratio_to_sha256": ingest_rate / sha_rate,
            "ratio_to_raw_insert": ingest_rate / raw_rate,
            # CPU (this process + PostgreSQL) per entry: the figure a shared, noisy machine still measures fairly
            "ledger_cpu_ms_per_entry": (ingest_cpu + ingest_pg) / n * 1e3,
            "raw_insert_cpu_ms_per_entry": (raw_cpu + raw_pg) / n * 1e3,
            "cpu_ratio_raw_to_ledger": (raw_cpu + raw_pg) / (ingest_cpu + ingest_pg)}


async def bench_proofs(url: str, size: int, samples: int) -> dict[str, float]:
    """Bulk-load a tree of `size` leaves, then time inclusion and consistency proofs through the store."""
    conn = await asyncpg.connect(url)
    tree = merkle.CompactTree()
    now = datetime.now(UTC)
    chunk = 100_000
    started = time.perf_counter()
    for start in range(0, size, chunk):
        rows, nodes = [], []
        for i in range(start, min(size, start + chunk)):
            leaf = hashlib.sha256(b"\x00" + i.to_bytes(8, "big")).digest()
            nodes += [(c[0], c[1], h) for c, h in tree.append(leaf) if c[0] > 0]
            rows.append((i, now, uuid.UUID(int=i + 1), now, "intake", "household", f"hh-{i % 5000}", 1, "X", "u",
                         "collector", "533123101", f"hh-{i % 5000}", leaf, None, None, leaf))
        await conn.copy_records_to_table("ledger", schema_name="audit", records=rows,
                                         columns=[c.strip() for c in ledger.ENTRY_COLUMNS.split(",")])
        await conn.copy_records_to_table("tree_nodes", schema_name="audit", records=nodes)
    load_s = time.perf_counter() - started
    await conn.execute("ANALYZE audit.ledger; ANALYZE audit.tree_nodes")
    await conn.close()
    root = tree.root()
    engine = create_async_engine(sqlalchemy_url(url), pool_size=1)
    rng = random.Random(7)
    inc: list[float] = []
    con: list[float] = []
    async with engine.connect() as c:
        assert await ledger.root_at(c, size) == root
        for _ in range(samples):
            index = rng.randrange(size)
            t = time.perf_counter()
            [proof] = await ledger.inclusion_proofs(c, [index], size)
            inc.append(time.perf_counter() - t)
            leaf = hashlib.sha256(b"\x00" + index.to_bytes(8, "big")).digest()
            assert merkle.verify_inclusion(leaf, index, size, proof, root)
            first = rng.randrange(1, size)
            t = time.perf_counter()
            await ledger.consistency_proof(c, first, size)
            con.append(time.perf_counter() - t)
    await engine.dispose()
    inc.sort()
    con.sort()
    return {"tree_size": size, "bulk_load_s": load_s, "samples": samples,
            "inclusion_ms_median": inc[len(inc) // 2] * 1e3, "inclusion_ms_p99": inc[int(len(inc) * .99)] * 1e3,
            "consistency_ms_median": con[len(con) // 2] * 1e3,
            "consistency_ms_p99": con[int(len(con) * .99)] * 1e3}


def _peak_rss_mb(argv: list[str]) -> tuple[float, float, str]:
    """Run a child process; its wall time, peak RSS (MB) and last line of output."""
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{argv}: {done.stdout[-500:]} {done.stderr[-2000:]}")
    peak = float(json.loads(done.stdout.strip().splitlines()[-1])["peak_rss_mb"])
    return elapsed, peak, done.stdout.strip().splitlines()[-1]


def _self_peak_mb() -> float:
    """This process's peak RSS. Not getrusage: Linux carries the parent's peak over fork and exec into ru_maxrss;
    VmHWM belongs to this process's own address space."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_verify(n: int, households: int) -> dict[str, float]:
    """A whole-ledger bundle of n entries written line by line (never held), then verified offline from the file by
    `verify_file` in a child process: time and peak RSS."""
    signer = note.Signer.from_seed("bench.povguard.cn/audit", os.urandom(32))
    now = datetime.now(UTC)
    tree = merkle.CompactTree()
    last: dict[str, tuple[int, bytes]] = {}
    path = Path(tempfile.mkdtemp()) / "bundle.jsonl"
    with path.open("w") as f:
        f.write(json.dumps({"format": BUNDLE_FORMAT, "origin": "bench.povguard.cn/audit", "kind": "ledger",
                            "tree_size": n, "scope": {}}) + "\n")
        lines = []
        for i in range(n):
            hh = f"hh-{i % households}"
            prev = last.get(hh)
            e = Entry(i, now, uuid.UUID(int=i + 1), now, "intake", "household", hh, i // households + 1,
                      "VisitRecorded", "张三", "collector", "533123101", hh,
                      hashlib.sha256(i.to_bytes(8, "big")).digest(),
                      None if prev is None else prev[0], None if prev is None else prev[1])
            leaf = e.leaf()
            tree.append(leaf)
            last[hh] = (i, leaf)
            lines.append(json.dumps({"entry": e.as_json(), "leaf_hash": base64.b64encode(leaf).decode()}))
            if len(lines) == 10_000:
                f.write("\n".join(lines) + "\n")
                lines = []
        f.write("".join(ln + "\n" for ln in lines) + json.dumps({"end": {"entries": n}}) + "\n")
    body = note.checkpoint_body("bench.povguard.cn/audit", n, tree.root())
    checkpoint = json.dumps({"checkpoint": {"note": note.sign_note(body, [signer]), "cosignatures": []}})
    final = path.with_suffix(".final.jsonl")  # the checkpoint line goes after the header
    with path.open() as src, final.open("w") as dst:
        dst.write(src.readline() + checkpoint + "\n")
        shutil.copyfileobj(src, dst)
    del last, tree
    size_mb = final.stat().st_size / 1e6
    elapsed, peak, _ = _peak_rss_mb([sys.executable, __file__, "--child-verify", str(final), signer.vkey])
    shutil.rmtree(path.parent)
    return {"entries": n, "households": households, "bundle_mb": size_mb, "verify_s": elapsed,
            "entries_per_s": n / elapsed, "peak_rss_mb": peak}


def child_verify(path: Path, vkey: str) -> None:
    from povguard_audit.verify import verify_file

    report = verify_file(path, [vkey])
    assert report.ok, report.summary()
    print(json.dumps({"peak_rss_mb": _self_peak_mb(), "summary": report.summary()[:200]}))


async def child_export(url: str, path: Path) -> None:
    from povguard_audit import bundle

    engine = create_async_engine(sqlalchemy_url(url), pool_size=1)
    n = 0
    async with engine.connect() as conn:
        with path.open("w") as f:
            async for line in bundle.export(conn):
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
                n += 1
    await engine.dispose()
    print(json.dumps({"peak_rss_mb": _self_peak_mb(), "lines": n}))


async def bench_export(url: str, size: int) -> dict[str, float]:
    """Sign a checkpoint over the bulk-loaded tree, then export the whole ledger from a child process."""
    signer = note.Signer.from_seed("bench.povguard.cn/audit", os.urandom(32))
    conn = await asyncpg.connect(url)
    engine = create_async_engine(sqlalchemy_url(url), pool_size=1)
    async with engine.connect() as c:
        root = await ledger.root_at(c, size)
    await engine.dispose()
    body = note.checkpoint_body("bench.povguard.cn/audit", size, root)
    await conn.execute("INSERT INTO audit.checkpoints (tree_size, root, origin, note) VALUES ($1, $2, $3, $4)",
                       size, root, "bench.povguard.cn/audit", note.sign_note(body, [signer]))
    await conn.close()
    path = Path(tempfile.mkdtemp()) / "export.jsonl"
    elapsed, peak, _ = _peak_rss_mb([sys.executable, __file__, "--child-export", url, str(path)])
    size_mb = path.stat().st_size / 1e6
    shutil.rmtree(path.parent)
    return {"entries": size, "export_s": elapsed, "entries_per_s": size / elapsed, "bundle_mb": size_mb,
            "peak_rss_mb": peak}


def _partial(out: Path, results: dict[str, Any]) -> None:
    """What is measured so far (a long run on a shared machine keeps its figures if stopped)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "audit.partial.json").write_text(json.dumps(results, indent=2))


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingest", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--consumer", type=int, default=5000, help="events through the consumer path (record())")
    ap.add_argument("--batch-households", type=int, default=1000,
                    help="households of the campaign mix through record_batch (7 events each)")
    ap.add_argument("--only-consumer", action="store_true", help="run only the consumer-path cases")
    ap.add_argument("--proof-size", type=int, action="append", help="repeatable (default 1,000,000); each is also "
                                                                    "exported whole; 0: none")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--verify-entries", type=int, action="append", help="repeatable (default 1,000,000); 0: none")
    ap.add_argument("--export-max", type=int, default=10**12, help="export only the trees up to this size")
    ap.add_argument("--households", type=int, default=70_000, help="households of the verified bundle")
    ap.add_argument("--out", type=Path, default=Path("var/bench"))
    ap.add_argument("--child-verify", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--child-export", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_verify:
        return child_verify(Path(args.child_verify[0]), args.child_verify[1])
    if args.child_export:
        return await child_export(args.child_export[0], Path(args.child_export[1]))
    proof_sizes = args.proof_size or [1_000_000]
    tmp = Path(tempfile.mkdtemp(prefix="povguard-bench-audit-"))
    pg = EmbeddedPostgres(tmp / "postgres", durable=True)
    pg.start()
    try:
        results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                                   "at": datetime.now(UTC).isoformat(), "proofs": [], "verify": [], "export": []}
        cases = [("consumer", 0), ("batch", 0)] if args.only_consumer else [
            ("consumer", 0), ("batch", 0), ("ingest", 0), *(("proofs", n) for n in proof_sizes if n)]
        for name, n in cases:
            url = pg.create_database(f"bench_{name}_{n}")
            await provision(url, ["audit"])  # the bench runs as the superuser; the migrations grant to the roles
            engine = create_async_engine(sqlalchemy_url(url))
            async with engine.begin() as conn:
                await upgrade(conn, SERVICE.migrations_dir, "audit")
            await engine.dispose()
            with console.status(f"{name} {n or ''}…"):
                if name == "consumer":
                    results["consumer"] = await bench_consumer_path(url, args.consumer, 200)
                elif name == "batch":
                    results["batch"] = await bench_batch_path(url, pg.data_dir, args.batch_households, 500)
                elif name == "ingest":
                    results["ingest"] = await bench_ingest(url, pg.data_dir, args.ingest, args.batch)
                else:
                    results["proofs"].append(await bench_proofs(url, n, args.samples))
                    if n <= args.export_max:
                        results["export"].append(await bench_export(url, n))
            _partial(args.out, results)
        if not args.only_consumer:
            for n in [n for n in args.verify_entries or [1_000_000] if n]:
                with console.status(f"offline verification of {n:,}…"):
                    results["verify"].append(bench_verify(n, args.households))
                _partial(args.out, results)
    finally:
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    table = Table(title="audit ledger")
    table.add_column("measure")
    table.add_column("value", justify="right")
    c = results["consumer"]
    b = results["batch"]
    rows = [(f"consumer path: record() one event at a time ({c['entries']} entries, {c['batch']}/transaction)",
             f"{c['entries_per_s']:,.0f} /s"),
            (f"batch path: record_batch() on a campaign mix ({b['entries']} entries, {b['batch']}/transaction, "
             f"{b['findings']} findings)", f"{b['entries_per_s']:,.0f} /s"),
            ("batch path: CPU per entry, this process / PostgreSQL",
             f"{b['cpu_ms_per_entry']:.3f} / {b['postgres_cpu_ms_per_entry']:.3f} ms")]
    if args.only_consumer:
        for r in rows:
            table.add_row(*r)
        console.print(table)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "audit-consumer.json").write_text(json.dumps(results, indent=2))
        return None
    i = results["ingest"]
    rows += [
        (f"ledger ingest ({i['entries']} entries, batch {i['batch']})", f"{i['ledger_entries_per_s']:,.0f} /s"),
        ("SHA-256 alone (same entries)", f"{i['sha256_only_per_s']:,.0f} /s"),
        ("CompactTree appends, no database (same leaves)", f"{i['compact_tree_appends_per_s']:,.0f} /s"),
        ("raw hashlib tree appends (same leaves)", f"{i['raw_hashlib_tree_appends_per_s']:,.0f} /s"),
        ("raw COPY of the same rows", f"{i['raw_insert_per_s']:,.0f} /s"),
        ("ledger / SHA-256", f"{i['ratio_to_sha256']:.3f}"),
        ("ledger / raw insert", f"{i['ratio_to_raw_insert']:.3f}"),
        ("CPU per entry (process + PostgreSQL): ledger / raw COPY",
         f"{i['ledger_cpu_ms_per_entry']:.3f} / {i['raw_insert_cpu_ms_per_entry']:.3f} ms"),
    ]
    for p in results["proofs"]:
        rows += [(f"inclusion proof at {p['tree_size']:,} (median / p99)",
                  f"{p['inclusion_ms_median']:.2f} / {p['inclusion_ms_p99']:.2f} ms"),
                 (f"consistency proof at {p['tree_size']:,} (median / p99)",
                  f"{p['consistency_ms_median']:.2f} / {p['consistency_ms_p99']:.2f} ms")]
    for x in results["export"]:
        rows.append((f"export, whole ledger of {x['entries']:,} ({x['bundle_mb']:.0f} MB JSON Lines)",
                     f"{x['export_s']:.1f} s, peak RSS {x['peak_rss_mb']:.0f} MB"))
    for v in results["verify"]:
        rows.append((f"offline verify, {v['entries']:,} entries, {v['households']:,} households "
                     f"({v['bundle_mb']:.0f} MB)", f"{v['verify_s']:.1f} s, peak RSS {v['peak_rss_mb']:.0f} MB"))
    for r in rows:
        table.add_row(*r)
    console.print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "audit.json").write_text(json.dumps(results, indent=2))
    console.print(f"written to {args.out / 'audit.json'}")
    return None


if __name__ == "__main__":
    asyncio.run(main())
