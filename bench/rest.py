"""REST under load (issue 20): wrk against intake's two read routes once a county's data is in, side by side with a
peer (`bench/rest_peer.py`: bare FastAPI + asyncpg doing the same SELECT on the same PostgreSQL, the same uvicorn
settings), so that the ratio shows how close to the platform's limit each path runs. Prints a table and writes
var/bench/rest.json (and, with --profile, var/bench/rest-profile-<label>.txt: py-spy on intake under wrk).

- GET /v1/households/{id} (random ids, a Lua script) at fixed rates and at the most wrk reaches;
- GET /v1/households?org=<county>&limit=500&cursor=<random id> (a list page of 500), likewise;
- p50/p90/p99/max latency and req/s from wrk's own histogram, and the run conditions (load average, CPU model,
  cores, fsync) so that two runs can be compared.

The system is started with `povguard_tools.runtime.supervisor.up` (as bench/e2e.py does) on --data-dir, which is
kept: a second run on the same directory reuses the county already loaded (import and visits through the public
APIs, as the demo drives them). wrk is installed with apt-get when missing and we are root; py-spy runs through uvx.

    python bench/rest.py --households 5000 [--profile --label after] [--http-workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
from rich.console import Console
from rich.table import Table

from povguard_platform.actor import Actor, Role
from povguard_platform.auth import issue_token
from povguard_platform.settings import get_settings
from povguard_tools.benchrun import cpu_seconds
from povguard_tools.demo.client import Api
from povguard_tools.demo.stages import STAGES
from povguard_tools.demo.state import COUNTY_CODE, Campaign, progress_bar
from povguard_tools.runtime.servers import free_port
from povguard_tools.runtime.supervisor import Stack, up
from povguard_tools.synthetic import generate_to

SERVICES = ["intake", "assessment", "review", "support", "audit"]
BENCH_DIR = Path(__file__).parent


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, capture_output=True)
        found = shutil.which("wrk")
    if found is None:
        raise SystemExit("bench/rest.py needs wrk: apt-get install wrk (Debian/Ubuntu) or brew install wrk")
    return found


def conditions(database_url: str) -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())

    async def settings() -> dict[str, str]:
        conn = await asyncpg.connect(database_url)
        try:
            return {k: await conn.fetchval(f"SHOW {k}") for k in ("fsync", "synchronous_commit", "server_version")}
        finally:
            await conn.close()

    return {"load_average": [round(x, 2) for x in os.getloadavg()], "cpu_model": model, "cores": os.cpu_count(),
            "python": platform.python_version(), "postgres": asyncio.run(settings()),
            "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0:1]}


async def household_ids(database_url: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        return [r[0] for r in await conn.fetch("SELECT household_id FROM intake.households ORDER BY household_id")]
    finally:
        await conn.close()


async def load_county(stack: Stack, households: int, seed: int, stages: list[str], work: Path,
                      console: Console) -> dict[str, float]:
    """A synthetic county through the public APIs, as the demo drives it, stage by stage."""
    registry = work / "registry.csv"
    county = generate_to(registry, households, seed)
    timings: dict[str, float] = {}
    async with Api(stack.urls, get_settings()) as api:
        campaign = Campaign(api, county, console, registry)
        with progress_bar(console) as progress:
            campaign.progress = progress
            for name, stage in STAGES:
                if name in stages:
                    started = time.perf_counter()
                    await stage(campaign)
                    timings[name] = round(time.perf_counter() - started, 1)
    return timings


_DONE = r"""
done = function(summary, latency, requests)
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f,"status_errors":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def lua_script(path: Path, prefix: str, keys: list[str], token: str, delay_ms: int | None) -> Path:
    """Requests for `prefix .. <random key>` with the bearer token; each thread seeds its own random sequence;
    with delay_ms every connection waits that long after each answer (the pacing of a fixed rate)."""
    keys_lua = ",".join(json.dumps(k) for k in keys)
    pacing = f"delay = function() return {delay_ms} end\n" if delay_ms is not None else ""
    path.write_text(f"""keys = {{{keys_lua}}}
headers = {{["Authorization"] = "Bearer {token}"}}
threads = 0
setup = function(thread) threads = threads + 1; thread:set("seed", threads) end
init = function(args) math.randomseed(seed * 7919 + os.time()) end
request = function() return wrk.format("GET", "{prefix}" .. keys[math.random(#keys)], headers) end
{pacing}{_DONE}""")
    return path


def wrk(base: str, script: Path, connections: int, seconds: int, pid: int | None = None) -> dict[str, Any]:
    """One wrk run; with the server's pid, also its CPU per request (what a noisy shared machine changes least),
    its HTTP workers' (HTTP_WORKERS) included."""
    cpu = cpu_seconds(pid, children=True)
    command = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
               "-s", str(script), base]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    raw = json.loads(line.removeprefix("WRKJSON "))
    seconds_run = raw["duration_us"] / 1e6
    cpu_ms = (cpu_seconds(pid, children=True) - cpu) * 1000 / max(raw["requests"], 1)
    return {"requests_per_s": round(raw["requests"] / seconds_run, 1),
            **({"server_cpu_ms_per_request": round(cpu_ms, 3)} if pid is not None else {}),
            **{k.removesuffix("_us") + "_ms": round(raw[k] / 1000, 2) for k in ("p50_us", "p90_us", "p99_us",
                                                                                  "max_us", "mean_us")},
            "non_2xx": raw["status_errors"], "socket_errors": raw["socket_errors"], "connections": connections,
            "seconds": seconds}


def measure(base: str, prefix: str, keys: list[str], token: str, work: Path, rates: list[int],
            connections: int, seconds: int, pid: int) -> dict[str, Any]:
    """At the most wrk reaches, then at each fixed rate: wrk (not wrk2) paces by a delay after each answer, so a
    3 s probe measures the time an answer takes at about that rate and the delay is set to make up the rest."""
    out: dict[str, Any] = {}
    name = prefix.strip("/").replace("/", "_").replace("?", "_")
    out["max"] = wrk(base, lua_script(work / f"{name}-max.lua", prefix, keys, token, None), connections, seconds,
                     pid)
    for rate in rates:
        interval = connections * 1000 / rate  # ms between two requests of one connection
        probe = wrk(base, lua_script(work / f"{name}-probe.lua", prefix, keys, token, round(interval)),
                    connections, 3)
        answer = max(0.0, connections * 1000 / max(probe["requests_per_s"], 1) - round(interval))
        delay = max(0, round(interval - answer))
        result = wrk(base, lua_script(work / f"{name}-{rate}.lua", prefix, keys, token, delay), connections,
                     seconds, pid)
        out[f"at_{rate}"] = {"target_per_s": rate, "delay_ms": delay, **result}
    return out


def profile(pid: int, seconds: int, path: Path, label: str) -> subprocess.Popen[bytes] | None:
    uvx = shutil.which("uvx") or str(Path(".uv/bin/uvx").resolve())
    if not Path(uvx).exists():
        return None
    return subprocess.Popen([uvx, "--from", "py-spy", "py-spy", "record", "-p", str(pid), "-d", str(seconds),
                             "-r", "200", "-f", "raw", "-o", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarise_profile(raw: Path, out: Path, label: str, top: int = 30) -> list[str]:
    """py-spy's collapsed stacks as two top lists: where the samples were (self) and what they were under
    (inclusive, each function once per sample)."""
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or "Thread._bootstrap" in stack:  # the thread pool's idle workers: not the request path
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            under[frame] += n

    def rows(counter: Counter[str]) -> list[str]:
        return [f"{100 * n / total:5.1f}%  {frame}" for frame, n in counter.most_common(top)]

    lines = [f"py-spy on intake under wrk (GET one household at the most wrk reaches), {label}: {total} samples",
             "", "self:", *rows(own), "", "inclusive:", *rows(under)]
    out.write_text("\n".join(lines) + "\n")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--stages", default="import,warnings,visits",
                        help="the demo's stages that load the county (all: the whole campaign)")
    parser.add_argument("--data-dir", type=Path, default=Path("var/bench/rest-system"))
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rates", default="500,1000", help="fixed rates of GET one household (req/s)")
    parser.add_argument("--list-rates", default="20", help="fixed rates of the list page of 500 (req/s)")
    parser.add_argument("--systems", default="platform,peer")
    parser.add_argument("--profile", action="store_true", help="py-spy on intake during GET at the most")
    parser.add_argument("--label", default="run")
    parser.add_argument("--http-workers", type=int, default=1,
                        help="HTTP_WORKERS of every service (processes on its port; the peer stays one process)")
    parser.add_argument("--out", type=Path, default=Path("var/bench"))
    args = parser.parse_args()
    console = Console(width=150)
    ensure_wrk()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="povguard-rest-"))
    ports = {name: free_port() for name in SERVICES}
    os.environ["HTTP_WORKERS"] = str(args.http_workers)  # what `up` passes on to the services
    stack = up(args.data_dir.resolve(), ports, nats_port=free_port(), pg_port=free_port())
    peer: subprocess.Popen[bytes] | None = None
    try:
        assert stack.database_url, "the benchmark starts its own PostgreSQL"
        ids = asyncio.run(household_ids(stack.database_url))
        loading: dict[str, float] = {}
        if not ids:  # a data dir already loaded is reused as it is (the import refuses some rows, by design)
            stages = [s for s, _ in STAGES] if args.stages == "all" else args.stages.split(",")
            loading = asyncio.run(load_county(stack, args.households, args.seed, stages, work, console))
            ids = asyncio.run(household_ids(stack.database_url))
        if args.http_workers > 1:  # `up` waited for the first process only; its workers build their apps after
            _wait_workers(stack.processes["intake"].pid, args.http_workers - 1)
        peer_port = free_port()
        peer = subprocess.Popen([sys.executable, str(BENCH_DIR / "rest_peer.py"), "--port", str(peer_port),
                                 "--dsn", stack.database_url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        token = issue_token(Actor(user="bench", role=Role.COUNTY_BUREAU, org=COUNTY_CODE), get_settings())
        cursors = ids[:-500] or ids  # a cursor with at least 500 households after it
        systems = {"platform": stack.urls["intake"], "peer": f"http://127.0.0.1:{peer_port}"}
        _wait_http(systems["peer"] + "/docs")
        result: dict[str, Any] = {"label": args.label, "households": len(ids), "http_workers": args.http_workers,
                                  "loading_seconds": loading,
                                  "conditions": conditions(stack.database_url)}
        rates = [int(r) for r in args.rates.split(",") if r]
        list_rates = [int(r) for r in args.list_rates.split(",") if r]
        list_prefix = f"/v1/households?org={COUNTY_CODE}&limit=500&cursor="
        pids = {"platform": stack.processes["intake"].pid, "peer": peer.pid}
        for system, base in systems.items():
            if system not in args.systems.split(","):
                continue
            result[system] = {
                "get_household": measure(base, "/v1/households/", ids, token, work, rates, args.connections,
                                         args.seconds, pids[system]),
                "list_500": measure(base, list_prefix, cursors, token, work, list_rates, 4, args.seconds,
                                    pids[system])}
        if args.profile:
            raw = work / "profile.txt"
            spy = profile(stack.processes["intake"].pid, args.seconds, raw, args.label)
            time.sleep(2)
            wrk(systems["platform"], lua_script(work / "spy.lua", "/v1/households/", ids, token, None),
                args.connections, args.seconds + 1)
            if spy is not None and spy.wait(60) == 0 and raw.exists():
                lines = summarise_profile(raw, args.out / f"rest-profile-{args.label}.txt", args.label)
                console.print("\n".join(lines[:40]))
        result["conditions_after"] = {"load_average": [round(x, 2) for x in os.getloadavg()]}
    finally:
        if peer is not None:
            peer.terminate()
            peer.wait(10)
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)
    _report(result, console)
    previous = args.out / "rest.json"
    if previous.exists():
        old = json.loads(previous.read_text())
        if old.get("label") != args.label:
            result["previous"] = {k: v for k, v in old.items() if k != "previous"}
    previous.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    console.print(f"wrote {previous}")


def _wait_workers(pid: int, count: int, timeout: float = 60) -> None:
    """Until the HTTP workers of `pid` are up and idle: a worker still importing and connecting would count its
    start-up in the first run's CPU per request and serve none of its requests."""
    import psutil

    deadline = time.monotonic() + timeout
    while True:
        workers = [p for p in psutil.Process(pid).children() if "--worker-of" in p.cmdline()]
        before = sum(sum(p.cpu_times()[:2]) for p in workers)
        time.sleep(1.0)
        if len(workers) == count and sum(sum(p.cpu_times()[:2]) for p in workers) - before < 0.05 * count:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"intake's {count} HTTP workers did not start within {timeout} s")


def _wait_http(url: str, timeout: float = 30) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _report(result: dict[str, Any], console: Console) -> None:
    table = Table(title=f"REST under load, {result['households']:,} households ({result['label']}); "
                        f"load {result['conditions']['load_average']}, {result['conditions']['cpu_model']}")
    for col in ("route", "load", "system", "req/s", "p50 ms", "p99 ms", "max ms", "non-2xx", "CPU ms/req",
                "p99 ÷ peer's", "CPU ÷ peer's"):
        table.add_column(col, justify="left" if col in ("route", "load", "system") else "right")
    for route in ("get_household", "list_500"):
        for load, figures in result.get("platform", result.get("peer", {})).get(route, {}).items():
            peer = result.get("peer", {}).get(route, {}).get(load, {})
            shown = [(s, result[s][route][load]) for s in ("platform", "peer") if s in result]
            for system, f in shown:
                ratio = (f"{figures['p99_ms'] / peer['p99_ms']:.1f}"
                         if system == "platform" and peer.get("p99_ms") else "")
                cpu = f.get("server_cpu_ms_per_request", 0.0)
                peer_cpu = peer.get("server_cpu_ms_per_request", 0.0)
                cpu_ratio = f"{cpu / peer_cpu:.1f}" if system == "platform" and peer_cpu else ""
                table.add_row(route, load, system, f"{f['requests_per_s']:.0f}", f"{f['p50_ms']:.2f}",
                              f"{f['p99_ms']:.2f}", f"{f['max_ms']:.1f}", str(f["non_2xx"]), f"{cpu:.2f}", ratio,
                              cpu_ratio)
    console.print(table)


if __name__ == "__main__":
    main()
