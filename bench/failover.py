"""Failover on a local cluster, as figures: `up` with a 3-node JetStream cluster (the events stream R3) and two
replicas of each service, a department sending warnings through intake's port one after another; then, a few trials
of each: kill -9 the NATS node that leads the stream, the intake replica that leads intake's relay, an audit replica
(the ledger's consumer). For each death: seconds to the next successful write, to the next event written after the
death that reached the audit ledger (append → relay → stream → consumer), and until the supervisor had the process
back and ready; requests that failed meanwhile. Prints a table and adds them under `failover` to
var/bench/scale.json (read-modify-write: other benchmarks write their figures into the same file).

    python bench/failover.py [--trials 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from povguard_platform.settings import get_settings
from povguard_tools.runtime.cluster import (
    WriteLoad,
    first_applied_after,
    node_process,
    relay_leaders,
    stream_leader,
)
from povguard_tools.runtime.servers import free_port
from povguard_tools.runtime.supervisor import Stack, supervise_once, up, write_status

SERVICES = ["intake", "assessment", "review", "support", "audit", "reporting"]
NODES, REPLICAS = 3, 2


def wait(check: Any, within: float) -> None:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within:
            raise TimeoutError(f"not within {within} s")
        time.sleep(0.05)


def ready(stack: Stack, name: str) -> bool:
    proc = stack.proc(name)
    if proc is None or proc.poll() is not None or stack.watched[name].state != "running":
        return False
    if name.startswith("nats"):
        return True
    try:
        return httpx.get(f"{stack.own_url(name)}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def victim(stack: Stack, fault: str) -> str:
    assert stack.database_url and stack.postgres
    if fault == "stream leader node":
        return node_process(asyncio.run(stream_leader(stack.nats_url))[0])
    if fault == "intake relay leader":
        pids = {n: p.pid for n, p in stack.processes.items()}
        [name] = asyncio.run(relay_leaders(stack.database_url, stack.postgres.port, pids, ["intake"]))["intake"]
        return name
    return "audit-1"


def trial(stack: Stack, writes: WriteLoad, fault: str) -> dict[str, Any]:
    """Kill one process; watch, side by side, for the next successful write, the next event written after the death
    reaching the ledger, and the process back and ready (each timed from the kill on its own)."""
    assert stack.database_url
    name = victim(stack, fault)
    proc = stack.proc(name)
    assert proc is not None
    failed_before, restarts = len(writes.failed), stack.watched[name].restarts
    killed = time.time()
    os.kill(proc.pid, signal.SIGKILL)
    seen: dict[str, float] = {}
    while len(seen) < 3:
        if time.time() - killed > 90:
            raise TimeoutError(f"{fault}: only {sorted(seen)} within 90 s")
        if "write" not in seen and writes.ok and writes.ok[-1] > killed:
            seen["write"] = min(t for t in writes.ok if t > killed)
        if "applied" not in seen and (at := asyncio.run(first_applied_after(stack.database_url, killed))):
            seen["applied"] = at
        if "ready" not in seen and stack.watched[name].restarts > restarts and ready(stack, name):
            seen["ready"] = time.time()
        time.sleep(0.05)
    time.sleep(2)  # let the restarted process settle before the next death
    return {"fault": fault, "process": name, "next_write_s": round(seen["write"] - killed, 3),
            "next_applied_s": round(seen["applied"] - killed, 3), "back_ready_s": round(seen["ready"] - killed, 2),
            "failed_requests": len(writes.failed) - failed_before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("var/bench"))
    args = parser.parse_args()
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="povguard-failover-"))
    ports = {s: free_port() for s in SERVICES}
    started = time.monotonic()
    stack = up(work / "system", ports, nats_port=free_port(), pg_port=free_port(), nats_nodes=NODES,
               replicas=REPLICAS)
    up_seconds = time.monotonic() - started
    stop_supervising = threading.Event()

    def supervise() -> None:
        while not stop_supervising.is_set():
            if supervise_once(stack, lambda line: console.log(line)):
                write_status(stack)
            time.sleep(0.1)

    threading.Thread(target=supervise, daemon=True).start()
    writes = WriteLoad(stack.urls["intake"], get_settings(), "failover")
    threading.Thread(target=writes.run, daemon=True).start()
    results: list[dict[str, Any]] = []
    try:
        wait(lambda: len(writes.ok) > 20, 60)
        for _ in range(args.trials):
            for fault in ("stream leader node", "intake relay leader", "audit replica"):
                results.append(trial(stack, writes, fault))
                console.log(results[-1])
    finally:
        writes.stopping.set()
        stop_supervising.set()
        stack.stop()

    summary: dict[str, dict[str, float]] = {}
    for fault in dict.fromkeys(r["fault"] for r in results):
        rows = [r for r in results if r["fault"] == fault]
        summary[fault] = {f"{k}_median": round(statistics.median(r[k] for r in rows), 3)
                          for k in ("next_write_s", "next_applied_s", "back_ready_s")}
        summary[fault]["next_applied_s_max"] = max(r["next_applied_s"] for r in rows)
    table = Table(title=f"failover: {NODES} NATS nodes (stream R3), {REPLICAS} replicas per service, "
                        f"{args.trials} trials; up in {up_seconds:.0f} s")
    for column in ("death", "process", "next write s", "next applied s", "back ready s", "failed requests"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(r["fault"], r["process"], str(r["next_write_s"]), str(r["next_applied_s"]),
                      str(r["back_ready_s"]), str(r["failed_requests"]))
    console.print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "scale.json"
    figures = json.loads(path.read_text()) if path.exists() else {}
    figures["failover"] = {"nats_nodes": NODES, "replicas": REPLICAS, "cpus": os.cpu_count(),
                           "up_seconds": round(up_seconds, 1), "summary": summary, "trials": results}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(figures, ensure_ascii=False, indent=2))
    tmp.replace(path)
    console.print(f"wrote the failover figures into {path}")


if __name__ == "__main__":
    main()
