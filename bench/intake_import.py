"""Intake import benchmark: a synthetic county (default 70,000 households, about 300,000 people) imported through
the same code path as `POST /v1/imports` (parse, validate every rule, register, read models), against real
PostgreSQL and NATS. Prints households/s, the import's CPU seconds and the importer's peak memory (VmHWM, reset
after the upload is stored, taken before the COPY ceiling), and a raw COPY of the same member rows on the same
server as the ceiling; writes var/bench/intake_import_<format>.json.

    python bench/intake_import.py --households 70000 --format csv
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
from rich.console import Console
from rich.table import Table

from povguard_contracts.template import HEADERS
from povguard_intake.bulk import run_import, start_import
from povguard_intake.handlers import Intake
from povguard_intake.importer import read_table
from povguard_intake.service import SERVICE as INTAKE
from povguard_platform.actor import Actor, Role
from povguard_platform.ids import uuid7
from povguard_platform.policy import load_policy
from povguard_platform.roles import login_urls, provision
from povguard_platform.settings import Settings
from povguard_tools.runtime.servers import EmbeddedNats, EmbeddedPostgres
from povguard_tools.testing import running


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (VmHWM; ru_maxrss where there is no /proc)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> None:
    """Start VmHWM again from the current RSS (Linux), so that the next figure is the importer's alone."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


async def raw_copy(url: str, content: bytes, name: str) -> float:
    rows = [tuple("" if v is None else str(v) for v in row) for _, row in read_table(content, name)]
    conn = await asyncpg.connect(url)
    cols = ", ".join(f"c{i} text" for i in range(len(HEADERS)))
    await conn.execute(f"CREATE TABLE copy_ceiling ({cols})")
    started = time.perf_counter()
    await conn.copy_records_to_table("copy_ceiling", records=rows)
    elapsed = time.perf_counter() - started
    await conn.close()
    return elapsed


async def bench(households: int, fmt: str, seed: int, console: Console) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="povguard-bench-import-"))
    registry = work / f"registry.{fmt}"
    started = time.perf_counter()
    # generated in another process, so that this one's peak memory is the importer's
    await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "povguard_tools.cli", "generate", str(registry),
                                             "--households", str(households), "--seed", str(seed)],
                            check=True, capture_output=True)
    console.log(f"generated {registry.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - started:.1f}s")
    size = registry.stat().st_size
    pg, nats = EmbeddedPostgres(work / "pg"), EmbeddedNats(work / "nats")
    url, nats_url = pg.start(), nats.start()
    try:
        await provision(url, ["intake"])
        runtime_urls, owner_urls = login_urls(url, ["intake"])
        settings = Settings(environment="test", database_url=url, nats_url=nats_url, run_background=False,
                            database_urls=runtime_urls, migration_database_urls=owner_urls)
        async with running(INTAKE, settings) as rt:
            intake = Intake(rt.store, load_policy(settings.campaign), rt.clock)
            actor = Actor(user="bench", role=Role.COUNTY_BUREAU, org="533123")
            rss_before = peak_rss_mb()  # the service, before the upload
            import_id = str(uuid7())
            # the upload as POST /v1/imports stores it; the bench then lets go of it, as the request does
            await start_import(rt.engine, import_id, registry.name, registry.read_bytes(), actor)
            upload_peak = peak_rss_mb()
            gc.collect()
            reset_peak()
            t0, c0 = time.perf_counter(), time.process_time()
            progress = await run_import(rt.engine, intake, import_id)
            assert progress is not None
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            peak = peak_rss_mb()  # the importer's peak, from the RSS it started with
            members = progress.rows
            again_id = str(uuid7())
            await start_import(rt.engine, again_id, registry.name, registry.read_bytes(), actor)
            upload_peak = max(upload_peak, peak_rss_mb())
            gc.collect()
            reset_peak()
            t1, c1 = time.perf_counter(), time.process_time()
            again = await run_import(rt.engine, intake, again_id)
            assert again is not None
            second, second_cpu = time.perf_counter() - t1, time.process_time() - c1
            second_peak = peak_rss_mb()  # before the COPY ceiling below holds every row
        copy_seconds = await raw_copy(url, registry.read_bytes(), registry.name)
    finally:
        nats.stop()
        pg.stop()
    return {
        "households": households, "members": members, "format": fmt, "file_mb": round(size / 1e6, 1),
        "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "households_per_s": round(households / seconds),
        "members_per_s": round(members / seconds), "imported": progress.imported, "refused": progress.refused,
        "errors": len(progress.errors), "peak_rss_mb": round(peak),
        "second_import_peak_rss_mb": round(second_peak), "rss_before_mb": round(rss_before),
        "upload_peak_rss_mb": round(upload_peak), "second_import_seconds": round(second, 2),
        "second_import_cpu_seconds": round(second_cpu, 2), "second_import_unchanged": again.unchanged,
        "copy_seconds": round(copy_seconds, 2), "copy_members_per_s": round(members / copy_seconds),
        "ratio_vs_copy": round((members / seconds) / (members / copy_seconds), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=70_000)
    parser.add_argument("--format", choices=["csv", "xlsx"], default="csv")
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--out", type=Path, default=Path("var/bench"))
    args = parser.parse_args()
    console = Console()
    result = asyncio.run(bench(args.households, args.format, args.seed, console))
    table = Table(title=f"intake import ({args.format})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, f"{value:,}" if isinstance(value, (int, float)) else str(value))
    console.print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"intake_import_{args.format}.json"
    path.write_text(json.dumps(result, indent=2))
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
