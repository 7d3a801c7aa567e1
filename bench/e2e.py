"""End-to-end benchmark: a synthetic county through the whole campaign, driven through the public REST APIs exactly
as `povguard demo` drives it (import, warnings, visits, assessment, review, support, audit), on a fresh embedded
system. Prints and writes var/bench/e2e.json:

- households/s through the whole pipeline and per stage, events/s over all five stores;
- the delay from a recorded visit to its proposal (p50, p99), from the events' own commit times;
- REST latency under load from wrk (a real load tool): GET one household, at the rate wrk reaches with 8 connections;
- each process's peak memory (VmHWM), and the CPU seconds each process spent in each stage (where the two cores
  went: PostgreSQL counts all its backends, the driver is this process);
- the conditions, so that two runs can be compared: load average before and after, CPU model and count, fsync,
  git commit, Python, and the three busiest processes that were not ours during the run.

    python bench/e2e.py --households 2000 [--profile var/bench/profile]   # py-spy on every service process
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from rich.console import Console

from povguard_platform.actor import Actor, Role
from povguard_platform.auth import issue_token
from povguard_platform.settings import get_settings
from povguard_tools.benchrun import BusyWatch, Profiler, conditions, cpu_seconds, ensure_tool, report
from povguard_tools.demo.client import Api
from povguard_tools.demo.stages import STAGES
from povguard_tools.demo.state import Campaign, progress_bar
from povguard_tools.runtime.servers import free_port
from povguard_tools.runtime.supervisor import Stack, up
from povguard_tools.synthetic import generate_to

SCHEMAS = ["intake", "assessment", "review", "support", "audit"]
DECISION_STAGES = ("import", "warnings", "visits", "assessment", "review")
HEADLINE = ("conditions", "pipeline_seconds", "import_to_decisions_seconds", "events", "cpu_ms_per_event",
            "cpu_seconds_by_process", "visit_to_proposal_ms", "rest_get_household", "peak_memory_mb")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


def processes(stack: Stack) -> dict[str, psutil.Process]:
    procs = {name: psutil.Process(p.pid) for name, p in stack.processes.items()}
    if stack.nats and stack.nats.proc:
        procs["nats-server"] = psutil.Process(stack.nats.proc.pid)
    if stack.postgres and stack.postgres.proc:
        procs["postgres"] = psutil.Process(stack.postgres.proc.pid)
    procs["driver"] = psutil.Process()
    return procs


def cpu_now(procs: dict[str, psutil.Process]) -> dict[str, float]:
    """user+system seconds so far; PostgreSQL counts its backends (children that come and go)."""
    return {name: cpu_seconds(proc.pid, children=name == "postgres") for name, proc in procs.items()}


async def drive(stack: Stack, registry: Path, county: Any,
                console: Console) -> tuple[Campaign, dict[str, float], dict[str, dict[str, float]]]:
    timings: dict[str, float] = {}
    cpu: dict[str, dict[str, float]] = {}
    procs = processes(stack)
    async with Api(stack.urls, get_settings()) as api:
        campaign = Campaign(api, county, console, registry)
        with progress_bar(console) as progress:
            campaign.progress = progress
            for name, stage in STAGES:
                started, before = time.perf_counter(), cpu_now(procs)
                await stage(campaign)
                timings[name] = time.perf_counter() - started
                after = cpu_now(procs)
                cpu[name] = {p: round(after[p] - before[p], 1) for p in procs}
    return campaign, timings, cpu


async def event_figures(url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    fsync = await conn.fetchval("SHOW fsync")
    # the visit-deadline sweep runs on the real date every 5 minutes: in a run long enough for it to fire between
    # import and visits, every household not yet visited gets a lateness fact (more events, more work)
    swept = await conn.fetchval("SELECT count(*) FROM assessment.facts WHERE type = 'VisitsDeadlinePassed'")
    counts = {s: await conn.fetchval(f"SELECT count(*) FROM {s}.events") for s in SCHEMAS}
    delays = await conn.fetch("""
        SELECT extract(epoch FROM a.time - i.time) AS seconds
        FROM assessment.events a JOIN intake.events i ON a.causation_id = i.id
        WHERE a.type = 'OutcomeProposed' AND i.type = 'VisitRecorded'""")
    await conn.close()
    seconds = [float(r["seconds"]) for r in delays]
    return {"events": counts, "visit_to_proposal_p50_ms": round(percentile(seconds, 50) * 1000, 1),
            "visit_to_proposal_p99_ms": round(percentile(seconds, 99) * 1000, 1), "proposals_timed": len(seconds),
            "fsync": fsync, "deadline_sweep_facts": swept}


async def costliest_statements(url: str, top: int = 30) -> list[dict[str, Any]]:
    """PostgreSQL's own profile: the statements that took the most execution time over the run, with their calls and
    rows (the backends' CPU is the largest single share of the campaign's)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        rows = await conn.fetch("""
            SELECT calls, rows, round(total_exec_time::numeric, 1) AS total_ms,
                   round(mean_exec_time::numeric, 3) AS mean_ms,
                   left(regexp_replace(query, '\\s+', ' ', 'g'), 300) AS query
            FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT $1""", top)
    finally:
        await conn.close()
    return [{"calls": r["calls"], "rows": r["rows"], "total_ms": float(r["total_ms"]), "mean_ms": float(r["mean_ms"]),
             "query": r["query"]} for r in rows]


def wrk_latency(base: str, household_ids: list[str], token: str, work: Path, seconds: int) -> dict[str, Any]:
    """wrk against GET /v1/households/{id}, cycling over real ids, 8 connections, 2 threads."""
    if ensure_tool("wrk") is None:
        return {"skipped": "wrk is needed and not installed (as root: apt-get install -y wrk)"}
    ids = ",".join(f'"{i}"' for i in household_ids[:5000])
    script = work / "households.lua"
    script.write_text(f"""ids = {{{ids}}}
n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/v1/households/" .. ids[(n % #ids) + 1], {{["Authorization"] = "Bearer {token}"}})
end
""")
    out = subprocess.run(["wrk", "-t2", "-c8", f"-d{seconds}s", "--latency", "-s", str(script), base],
                         capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}%?\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests_per_s": float(rate.group(1)) if rate else 0.0, "p50_ms": ms("50"), "p99_ms": ms("99"),
            "connections": 8, "seconds": seconds, "non_2xx": int(non2xx.group(1)) if non2xx else 0}


def peak_memory(stack: Stack) -> dict[str, float]:
    """VmHWM (peak resident set) of each process we started, in MB."""
    pids = {("postgres (postmaster)" if name == "postgres" else name): proc.pid
            for name, proc in processes(stack).items() if name != "driver"}
    out = {}
    for name, pid in pids.items():
        status = Path(f"/proc/{pid}/status").read_text()
        m = re.search(r"VmHWM:\s+(\d+) kB", status)
        out[name] = round(int(m.group(1)) / 1024, 1) if m else 0.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--wrk-seconds", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path("var/bench"))
    parser.add_argument("--profile", type=Path, default=None,
                        help="py-spy every service process during the campaign; raw stacks and summary.txt here")
    parser.add_argument("--pg-stats", action="store_true",
                        help="load pg_stat_statements and record PostgreSQL's 30 costliest statements")
    args = parser.parse_args()
    load_before = os.getloadavg()
    console = Console(width=140)
    work = Path(tempfile.mkdtemp(prefix="povguard-e2e-"))
    registry = work / "county" / "registry.csv"
    t0 = time.perf_counter()
    county = generate_to(registry, args.households, args.seed)
    generated = time.perf_counter() - t0
    ports = {name: free_port() for name in SCHEMAS}
    if args.pg_stats:
        os.environ["POVGUARD_PG_SETTINGS"] = "shared_preload_libraries=pg_stat_statements"
    stack = up(work / "system", ports, nats_port=free_port(), pg_port=free_port())
    ours = {os.getpid(), *(p.pid for p in processes(stack).values())}
    profiler = None
    try:
        if args.profile:
            profiler = Profiler({**{n: p.pid for n, p in stack.processes.items()}, "driver": os.getpid()},
                                args.profile)
        with BusyWatch(ours) as busy:
            started = time.perf_counter()
            campaign, timings, cpu = asyncio.run(drive(stack, registry, county, console))
            total = time.perf_counter() - started
        if profiler:
            profiler.stop()
            (args.profile / "summary.txt").write_text(profiler.summary())
            console.print(f"profiles in {args.profile}")
        assert stack.database_url, "the benchmark starts its own PostgreSQL"
        figures = asyncio.run(event_figures(stack.database_url))
        statements = asyncio.run(costliest_statements(stack.database_url)) if args.pg_stats else None
        token = issue_token(Actor(user="bench", role=Role.COUNTY_BUREAU, org="533123"), get_settings())
        latency = wrk_latency(stack.urls["intake"], list(campaign.household_ids.values()), token, work,
                              args.wrk_seconds)
        memory = peak_memory(stack)
    except BaseException:
        if profiler:
            profiler.stop()
        stack.stop()
        console.print(f"[red]failed[/red]; the services' logs are kept in {work / 'system' / 'logs'}")
        raise
    stack.stop()
    shutil.rmtree(work, ignore_errors=True)
    events = sum(figures["events"].values())
    by_process = {p: round(sum(stage.get(p, 0.0) for stage in cpu.values()), 1) for p in next(iter(cpu.values()))}
    result = {
        "conditions": conditions(figures["fsync"], load_before, busy),
        "households": args.households, "people": county.members, "generate_seconds": round(generated, 1),
        "startup_seconds": stack.timings,  # each step of `up` (povguard_tools.runtime.supervisor.up)
        "pipeline_seconds": round(total, 1), "households_per_s": round(args.households / total, 1),
        # the issue's goal: from import to the county's decisions (support and the audit check come after)
        "import_to_decisions_seconds": round(sum(timings[s] for s in DECISION_STAGES), 1),
        "events": figures["events"], "events_per_s": round(events / total), "stage_seconds":
        {k: round(v, 1) for k, v in timings.items()},
        "cpu_seconds_by_stage": cpu, "cpu_seconds_by_process": by_process,
        "cpu_ms_per_event": round(sum(by_process.values()) / events * 1000, 2),
        "visit_to_proposal_ms": {"p50": figures["visit_to_proposal_p50_ms"],
                                 "p99": figures["visit_to_proposal_p99_ms"], "n": figures["proposals_timed"]},
        "rest_get_household": latency, "peak_memory_mb": memory,
        "cases": campaign.figures.get("review", {}), "plans": campaign.figures.get("support", {}).get("plans"),
        "audit_verified": campaign.figures.get("audit", {}).get("verified"),
        "deadline_sweep_facts": figures["deadline_sweep_facts"],
        # each wait for the system to be quiet, and the gauges that held it longest
        "settle_waits": campaign.waits,
    }
    if statements is not None:
        result["postgres_statements"] = statements
    # beside the figures, the previous run's at the same size (its own conditions and commit say what differed)
    sized = args.out / f"e2e-{args.households}.json"
    if sized.exists():
        before = json.loads(sized.read_text())
        result["previous"] = {k: before.get(k) for k in HEADLINE}
    report(console, f"end to end: {args.households:,} households", result, args.out, sized.name)
    (args.out / "e2e.json").write_text(sized.read_text())


if __name__ == "__main__":
    main()
