"""Faults under load, as figures: for each fault (kill -9 of a service, of nats-server, PostgreSQL's fast and
immediate stop) on a supervised embedded system with a steady load of reads and writes, the time back to ready, the
requests answered 503 (refused with Retry-After: the outage as designed) and the other 5xx (failures) during the
fault, what was not problem+json, and the time until every consumer's lag is back to 0. Prints a table and writes
var/bench/faults.json.

    python bench/faults.py [--households 200]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from povguard_platform.actor import Actor, Role
from povguard_platform.auth import issue_token
from povguard_platform.settings import get_settings
from povguard_tools.demo.client import Api
from povguard_tools.demo.collection import stage_import
from povguard_tools.demo.state import Campaign, progress_bar
from povguard_tools.runtime.servers import _pg_bin, free_port
from povguard_tools.runtime.supervisor import Stack, supervise_once, up, write_status
from povguard_tools.synthetic import generate_to

SERVICES = ["intake", "assessment", "review", "support", "audit"]
_LAG = re.compile(r'^povguard_(?:consumer_lag_messages|relay_lag_events)\{[^}]*\} ([0-9.e+]+)$', re.M)


class Load:
    """A steady mix: the county reads households, cases and plans; a department pushes one warning at a time."""

    def __init__(self, urls: dict[str, str]) -> None:
        settings = get_settings()
        self.urls = urls
        self.county = {"Authorization": "Bearer " + issue_token(Actor(user="bench", role=Role.COUNTY_BUREAU,
                                                                             org="533123"), settings)}
        self.department = {"Authorization": "Bearer " + issue_token(Actor(user="民政-接口", role=Role.DEPARTMENT,
                                                                                 org="533123", dept="民政"), settings)}
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.serial = itertools.count()

    def _one(self, client: httpx.Client) -> None:
        n = next(self.serial)
        calls = [
            ("GET", f"{self.urls['intake']}/v1/households", self.county, {"params": {"org": "533123", "limit": 5}}),
            ("GET", f"{self.urls['review']}/v1/cases", self.county, {"params": {"limit": 5}}),
            ("GET", f"{self.urls['support']}/v1/plans", self.county, {"params": {"org": "533123", "limit": 5}}),
            ("POST", f"{self.urls['intake']}/v1/warnings", self.department, {"json": {
                "department": "民政", "kind": "申请低保", "id_number": "533123199001011234", "person_name": "测试",
                "occurred_on": "2022-05-01", "reported_on": "2022-05-06", "source_ref": f"bench-{os.getpid()}-{n}",
                "note": "faults bench"}}),
        ]
        method, url, headers, kwargs = calls[n % len(calls)]
        try:
            r = client.request(method, url, headers=headers, timeout=10, **kwargs)
            kind = str(r.status_code) if r.status_code >= 500 else f"{r.status_code // 100}xx"
            if r.status_code >= 400 and not r.headers.get("content-type", "").startswith("application/problem+json"):
                kind += " not problem+json"
        except httpx.HTTPError as exc:
            kind = type(exc).__name__
        with self.lock:
            self.counts[kind] += 1

    def run(self) -> None:
        with httpx.Client() as client:
            while not self.stopping.is_set():
                self._one(client)
                time.sleep(0.02)

    def take(self) -> Counter[str]:
        with self.lock:
            counts, self.counts = self.counts, Counter()
        return counts


def ready(urls: dict[str, str]) -> bool:
    try:
        return all(httpx.get(f"{u}/readyz", timeout=1).status_code == 200 for u in urls.values())
    except httpx.HTTPError:
        return False


def lag(urls: dict[str, str]) -> float:
    try:
        return sum(float(v) for u in urls.values() for v in _LAG.findall(httpx.get(f"{u}/metrics", timeout=2).text))
    except httpx.HTTPError:
        return float("inf")


def fault(stack: Stack, name: str) -> None:
    if name.startswith("postgres"):
        mode = name.split("-")[1]
        assert stack.postgres is not None
        subprocess.run([str(_pg_bin() / "pg_ctl"), "-D", str(stack.postgres.data_dir), "stop", "-m", mode],
                       check=True, capture_output=True, user=stack.postgres._user)
        return
    proc = stack.proc(name)
    assert proc is not None
    os.kill(proc.pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("var/bench"))
    args = parser.parse_args()
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="povguard-faults-"))
    ports = {s: free_port() for s in SERVICES}
    stack = up(work / "system", ports, nats_port=free_port(), pg_port=free_port())
    stop_supervising = threading.Event()

    def supervise() -> None:
        while not stop_supervising.is_set():
            if supervise_once(stack, lambda line: console.log(line)):
                write_status(stack)
            time.sleep(0.2)

    threading.Thread(target=supervise, daemon=True).start()
    results: list[dict[str, Any]] = []
    try:
        county = generate_to(work / "county", args.households, 2022)

        async def load_registry() -> None:
            async with Api(stack.urls, get_settings()) as api:
                c = Campaign(api, county, console, work / "county" / "registry.xlsx")
                with progress_bar(console) as progress:
                    c.progress = progress
                    await stage_import(c)

        asyncio.run(load_registry())
        load = Load(stack.urls)
        threading.Thread(target=load.run, daemon=True).start()
        time.sleep(3)
        baseline = load.take()
        for name in ["assessment", "intake", "audit", "nats", "postgres-fast", "postgres-immediate"]:
            load.take()
            started = time.monotonic()
            fault(stack, name)
            time.sleep(0.5)
            while not ready(stack.urls):
                time.sleep(0.1)
            back = time.monotonic() - started
            while lag(stack.urls) > 0 and time.monotonic() - started < 120:
                time.sleep(0.2)
            caught_up = time.monotonic() - started
            time.sleep(1)
            counts = load.take()
            results.append({"fault": name, "back_to_ready_s": round(back, 2), "lag_zero_after_s": round(caught_up, 2),
                            "requests": sum(counts.values()), "refused_503": counts.get("503", 0),
                            "failed_5xx": sum(n for k, n in counts.items() if k.startswith("5") and k != "503"),
                            "not_problem_json": sum(n for k, n in counts.items() if "not problem" in k),
                            "connection_errors": sum(n for k, n in counts.items() if not k[0].isdigit()),
                            "by_kind": dict(counts)})
        load.stopping.set()
    finally:
        stop_supervising.set()
        stack.stop()
    table = Table(title=f"faults under load ({args.households} households; baseline {dict(baseline)})")
    for column in ("fault", "back to ready s", "lag 0 after s", "requests", "503", "other 5xx", "not problem+json",
                   "connection errors"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(r["fault"], str(r["back_to_ready_s"]), str(r["lag_zero_after_s"]), str(r["requests"]),
                      str(r["refused_503"]), str(r["failed_5xx"]), str(r["not_problem_json"]),
                      str(r["connection_errors"]))
    console.print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "faults.json").write_text(json.dumps({"households": args.households, "baseline": dict(baseline),
                                                      "faults": results}, ensure_ascii=False, indent=2))
    console.print(f"wrote {args.out / 'faults.json'}")


if __name__ == "__main__":
    main()
