"""Visit → assessment delay under a steady load: the county is imported, then collectors' tablets sync visit forms
at a fixed rate (forms/s, in uploads of 100) for some minutes, as in the busiest weeks of the campaign. Prints and
writes var/bench/steady.json:

- the delay from each recorded visit (its event's commit time) to the assessment consumer's transaction that applied
  it (the inbox row), p50/p90/p99 and max, over the whole run and per minute (a queue that grows shows as a rising
  p99); the delay to the OutcomeProposed it caused where the visit changed the proposal;
- the rate reached (forms accepted per second) and how far the sender fell behind;
- CPU seconds per process during the steady part, each process's peak memory, and the run's conditions.

    python bench/steady.py --rate 200 --minutes 10 [--households 5000] [--profile var/bench/steady-profile]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
from rich.console import Console

sys.path.insert(0, str(Path(__file__).parent))

from e2e import SCHEMAS, cpu_now, peak_memory, percentile, processes

from povguard_platform.settings import get_settings
from povguard_tools.benchrun import BusyWatch, Profiler, conditions, report
from povguard_tools.demo.client import Api, DemoError
from povguard_tools.demo.collection import stage_import
from povguard_tools.demo.state import SYNC_SIZE, Campaign, progress_bar, settle
from povguard_tools.runtime.servers import free_port
from povguard_tools.runtime.supervisor import Stack, up
from povguard_tools.synthetic import County, generate_to


def _uploads(c: Campaign) -> list[tuple[Any, list[dict[str, Any]]]]:
    """Every household's form, grouped by its collector in uploads of SYNC_SIZE; sent round after round (a later
    round is a revisit of the same households, each form a visit of its own)."""
    by_collector: dict[Any, list[dict[str, Any]]] = {}
    for h in c.county.households:
        if h.code in c.household_ids:
            by_collector.setdefault(c.collector(h), []).append(
                {"household_id": c.household_ids[h.code], "form": h.visit.model_dump(mode="json")})
    return [(who, forms[i:i + SYNC_SIZE]) for who, forms in by_collector.items()
            for i in range(0, len(forms), SYNC_SIZE)]


async def send_steadily(c: Campaign, rate: float, seconds: float) -> dict[str, Any]:
    """Start each upload when the forms sent so far are due at `rate`, whatever the previous ones are doing (at most
    16 in flight: past that the sender falls behind, and says so)."""
    uploads = _uploads(c)
    loop = asyncio.get_running_loop()
    start = loop.time()
    in_flight: set[asyncio.Task[None]] = set()
    sent = accepted = 0
    behind = 0.0
    limit = asyncio.Semaphore(16)

    async def one(who: Any, forms: list[dict[str, Any]]) -> None:
        nonlocal accepted
        try:
            answer = (await c.api.call("intake", "POST", "/v1/batches/visits", who, json={"items": forms})).json()
            if answer["failed"]:
                raise DemoError(f"{who.user}: forms refused: {answer['failed'][:3]}")
            accepted += len(answer["data"])
        finally:
            limit.release()

    k = 0
    while (due := start + sent / rate) < start + seconds:
        await asyncio.sleep(max(0.0, due - loop.time()))
        await limit.acquire()
        behind = max(behind, loop.time() - due)
        who, forms = uploads[k % len(uploads)]
        task = asyncio.create_task(one(who, forms))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        sent += len(forms)
        k += 1
    await asyncio.gather(*in_flight)
    elapsed = loop.time() - start
    return {"forms_sent": sent, "forms_accepted": accepted, "seconds": round(elapsed, 1),
            "rate_reached": round(accepted / elapsed, 1), "sender_behind_max_s": round(behind, 2)}


async def delays(url: str, since: float) -> dict[str, Any]:
    """Visit commit → the assessment consumer's applying transaction, for every visit recorded since `since`."""
    conn = await asyncpg.connect(url)
    rows = await conn.fetch("""
        SELECT extract(epoch FROM v.time) AS at, extract(epoch FROM i.applied_at - v.time) AS seconds
        FROM intake.events v LEFT JOIN assessment.inbox i
             ON i.event_id = v.id AND i.consumer = 'assessment-facts'
        WHERE v.type = 'VisitRecorded' AND v.time >= to_timestamp($1)""", since)
    proposed = await conn.fetch("""
        SELECT extract(epoch FROM a.time - v.time) AS seconds
        FROM assessment.events a JOIN intake.events v ON a.causation_id = v.id
        WHERE a.type = 'OutcomeProposed' AND v.type = 'VisitRecorded' AND v.time >= to_timestamp($1)""", since)
    fsync = await conn.fetchval("SHOW fsync")
    await conn.close()
    applied = [(float(r["at"]), float(r["seconds"])) for r in rows if r["seconds"] is not None]
    per_minute: dict[int, list[float]] = {}
    for at, s in applied:
        per_minute.setdefault(int((at - since) // 60), []).append(s)

    def summary(values: list[float]) -> dict[str, float]:
        return {"n": len(values), "p50_s": round(percentile(values, 50), 2), "p90_s": round(percentile(values, 90), 2),
                "p99_s": round(percentile(values, 99), 2), "max_s": round(max(values, default=0.0), 2)}

    return {"fsync": fsync, "visit_to_assessment": summary([s for _, s in applied]),
            "not_applied": len(rows) - len(applied),
            "per_minute_p99_s": {m: round(percentile(v, 99), 2) for m, v in sorted(per_minute.items())},
            "visit_to_proposal": summary([float(r["seconds"]) for r in proposed])}


async def run(stack: Stack, county: County, registry: Path, rate: float, minutes: float, drain: float,
              console: Console, profile: Path | None) -> tuple[dict[str, Any], dict[str, Any], dict[str, float]]:
    procs = processes(stack)
    async with Api(stack.urls, get_settings()) as api:
        c = Campaign(api, county, console, registry)
        with progress_bar(console) as progress:
            c.progress = progress
            await stage_import(c)
            await settle(c, "the import")
        since = time.time()
        before = cpu_now(procs)
        # py-spy on every service during the steady part only (the import before it is another workload)
        profiler = Profiler({n: p.pid for n, p in stack.processes.items()}, profile) if profile else None
        try:
            sending = await send_steadily(c, rate, minutes * 60)
        finally:
            cpu = cpu_now(procs)
            if profiler and profile:
                profiler.stop()
                (profile / "summary.txt").write_text(profiler.summary())
        drained_at = time.perf_counter()
        try:  # the backlog left when the sending stops; visits still unapplied after `drain` count as not_applied
            await settle(c, "the backlog", within=drain)
            sending["drain_after_last_s"] = round(time.perf_counter() - drained_at, 1)
        except DemoError:
            sending["drain_after_last_s"] = f"> {drain:.0f} (not drained)"
    assert stack.database_url
    return sending, await delays(stack.database_url, since), {p: round(cpu[p] - before[p], 1) for p in procs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0, help="visit forms per second")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--households", type=int, default=5000)
    parser.add_argument("--drain-minutes", type=float, default=10.0, help="how long to wait for the backlog after")
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--out", type=Path, default=Path("var/bench"))
    parser.add_argument("--profile", type=Path, default=None,
                        help="py-spy every service process while the forms are sent; raw stacks and summary.txt here")
    args = parser.parse_args()
    console = Console(width=140)
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="povguard-steady-"))
    registry = work / "county" / "registry.csv"
    county = generate_to(registry, args.households, args.seed)
    stack = up(work / "system", {name: free_port() for name in SCHEMAS}, nats_port=free_port(),
               pg_port=free_port())
    try:
        with BusyWatch({os.getpid(), *(p.pid for p in processes(stack).values())}) as busy:
            sending, figures, cpu = asyncio.run(run(stack, county, registry, args.rate, args.minutes,
                                                      args.drain_minutes * 60, console, args.profile))
        memory = peak_memory(stack)
    except BaseException:
        stack.stop()
        console.print(f"[red]failed[/red]; the services' logs are kept in {work / 'system' / 'logs'}")
        raise
    stack.stop()
    shutil.rmtree(work, ignore_errors=True)
    result = {"conditions": conditions(figures.pop("fsync"), load_before, busy), "rate": args.rate,
              "minutes": args.minutes, "households": args.households, **sending, **figures,
              "cpu_seconds_steady": cpu, "peak_memory_mb": memory}
    report(console, f"steady visits: {args.rate:g} forms/s for {args.minutes:g} min", result, args.out, "steady.json")


if __name__ == "__main__":
    main()
