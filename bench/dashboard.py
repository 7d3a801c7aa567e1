"""Dashboard benchmark: the first paint of the dashboard for a county of N households (default 70,000).

Driving 70,000 households through the whole campaign takes about 15 minutes here (`povguard bench e2e`), so this
fills the reporting service's read models directly: synthetic facts of every kind (registration, visit, assessment,
proposal, review case and decision, plan and measures, data problems) projected through the reporting service's own
projection code, in consumer-sized batches. It then starts the real reporting service and opens its dashboard in
Debian's chromium (Playwright), cold, several times, and reads the browser's paint timings: first paint, first
contentful paint, and when the county's figures are on screen. Also the summary API's latency.

    python bench/dashboard.py --households 70000 --out var/bench

Prints a table and writes `<out>/dashboard.json`. Figures, never pass/fail."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import create_async_engine

from povguard_contracts.vocab import IncomeBand, MeasureKind, Outcome, RiskType
from povguard_platform.actor import Actor, Role
from povguard_platform.auth import issue_token
from povguard_platform.migrations import upgrade
from povguard_platform.settings import Settings, sqlalchemy_url
from povguard_reporting.policy import reporting_policy
from povguard_reporting.projections import Entry, project
from povguard_reporting.service import SERVICE
from povguard_tools.runtime.servers import EmbeddedNats, EmbeddedPostgres, free_port

TOWNSHIPS = 15
VILLAGES_PER_TOWNSHIP = 8
BATCH = 500


def facts(n: int, seed: int) -> list[list[Entry]]:
    """Every household's facts, in consumer-sized batches, in the order the services would publish them."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(hours=2)
    bands = list(IncomeBand)
    outcomes = [o.value for o in Outcome if o != Outcome.NO_CHANGE]
    stream: list[Entry] = []
    seq = 0

    def add(kind: str, fact: dict[str, Any]) -> None:
        nonlocal seq
        seq += 1
        stream.append(Entry(f"00000000-0000-7000-8000-{seq:012d}", kind, start + timedelta(milliseconds=seq),
                            {"t": kind, **fact}, "bench"))

    for i in range(n):
        t = 1 + i % TOWNSHIPS
        town = f"533123{t:03d}"
        village = f"{town}{200 + (i // TOWNSHIPS) % VILLAGES_PER_TOWNSHIP:03d}"
        h = f"hh{i:06d}"
        add("HouseholdRegistered", {"h": h, "code": f"HH{i:07d}", "town": town, "village": village,
                                    "group": village + "001", "town_name": f"乡镇{t}",
                                    "village_name": f"村{village[-3:]}",
                                    "group_name": "一组", "county": "533123", "county_name": "盈江县",
                                    "kind": rng.choice(["脱贫户", "一般农户", "监测对象"]), "category": None,
                                    "status": "未纳入监测", "persons": rng.randint(1, 6),
                                    "flags": ["2020年脱贫户"] if rng.random() < .3 else [], "head": "户主",
                                    "head_id": "533123197503090011"})
        if rng.random() < .8:
            add("VisitRecorded", {"h": h, "date": "2022-05-08", "collector": "采集员"})
            add("IncomeAssessed", {"h": h, "village": village, "pc": rng.uniform(3000, 16000),
                                   "band": rng.choice(bands).value, "size": rng.randint(1, 6)})
            risks = [rng.choice(list(RiskType)).value] if rng.random() < .2 else []
            add("RiskAssessed", {"h": h, "village": village, "risks": risks,
                                 "gaps": ["住房安全"] if rng.random() < .05 else [], "no_labour": False, "labour": 2})
            add("OutcomeProposed", {"h": h, "village": village, "held": False,
                                    "outcome": rng.choice(outcomes) if risks else "无变化"})
            if risks:
                case = f"c{i}"
                add("CaseOpened", {"h": h, "case": case, "village": village, "outcome": outcomes[0],
                                   "lead": "2022-05-08"})
                if rng.random() < .7:
                    add("CountyDecided", {"h": h, "case": case, "outcome": outcomes[0], "refused": False,
                                          "kind": "监测对象", "category": "边缘易致贫户", "status": "风险未消除",
                                          "risks": risks, "on": "2022-05-27"})
                    add("PlanCreated", {"h": h, "village": village, "risks": risks, "cadre": "干部", "lead": "民政"})
                    add("MeasureAssigned", {"h": h, "id": f"m{i}", "kind": MeasureKind.EMPLOYMENT.value,
                                            "dev": True, "dept": "人社"})
        if rng.random() < .1:
            add("DataProblemFound", {"h": h, "village": village, "id": f"p{i}", "kind": "完整性",
                                     "rule": "DQ-C-INCOME"})
    return [stream[i:i + BATCH] for i in range(0, len(stream), BATCH)]


async def fill(database_url: str, households: int, seed: int) -> dict[str, float]:
    engine = create_async_engine(sqlalchemy_url(database_url))
    async with engine.begin() as conn:
        await upgrade(conn, SERVICE.migrations_dir, "reporting")
    catalogue = reporting_policy("533123-2022").catalogue
    batches = facts(households, seed)
    started = time.perf_counter()
    for batch in batches:
        async with engine.begin() as conn:
            await project(conn, batch, catalogue)
    seconds = time.perf_counter() - started
    await engine.dispose()
    total = sum(map(len, batches))
    return {"facts": total, "project_seconds": round(seconds, 1), "facts_per_second": round(total / seconds)}


PAINT = """() => {
  const paint = Object.fromEntries(performance.getEntriesByType('paint').map(e => [e.name, e.startTime]));
  const mark = performance.getEntriesByName('figures')[0];
  return {fp: paint['first-paint'], fcp: paint['first-contentful-paint'], figures: mark ? mark.startTime : null,
          nav: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd};
}"""


async def measure(url: str, token: str, runs: int) -> list[dict[str, float]]:
    from playwright.async_api import async_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "needs Debian's chromium"
    found = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        for _ in range(runs):
            context = await browser.new_context(viewport={"width": 1280, "height": 800})  # cold: no cache
            page = await context.new_page()
            await page.add_init_script("""new MutationObserver((_, o) => {
                if (document.querySelector('[data-kpi="visited"]')) { performance.mark('figures'); o.disconnect(); }
              }).observe(document, {subtree: true, childList: true});""")
            await page.goto(f"{url}/dashboard#token={token}")
            await page.wait_for_selector('[data-kpi="visited"]', timeout=60_000)
            found.append(await page.evaluate(PAINT))
            await context.close()
        await browser.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=70_000)
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("var/bench"))
    args = parser.parse_args()
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="povguard-bench-dashboard-"))
    pg, nats = EmbeddedPostgres(work / "pg", free_port()), EmbeddedNats(work / "nats", free_port())
    server: subprocess.Popen[bytes] | None = None
    try:
        database_url, nats_url = pg.start(), nats.start()
        with console.status(f"projecting the facts of {args.households:,} households…"):
            filled = asyncio.run(fill(database_url, args.households, args.seed))
        port = free_port()
        env = {**os.environ, "DATABASE_URL": database_url, "NATS_URL": nats_url, "LOG_LEVEL": "WARNING"}
        server = subprocess.Popen([sys.executable, "-m", "povguard_platform.serve", "reporting", "--port", str(port)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the reporting service did not become ready"
            time.sleep(0.3)
        token = issue_token(Actor(user="bench", role=Role.COUNTY_BUREAU, org="533123"), Settings())
        api = []
        for _ in range(args.runs):
            started = time.perf_counter()
            r = httpx.get(f"{url}/v1/dashboard/summary", headers={"Authorization": f"Bearer {token}"}, timeout=60)
            api.append((time.perf_counter() - started) * 1000)
            assert r.status_code == 200 and r.json()["totals"]["households"] == args.households
        paints = asyncio.run(measure(url, token, args.runs))
    finally:
        if server is not None:
            server.terminate()
            server.wait(15)
        nats.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)

    def med(key: str) -> float:
        return round(statistics.median(p[key] for p in paints), 1)

    result = {"households": args.households, **filled, "runs": args.runs,
              "summary_api_ms_median": round(statistics.median(api), 1),
              "first_paint_ms_median": med("fp"), "first_contentful_paint_ms_median": med("fcp"),
              "figures_on_screen_ms_median": med("figures"), "paints": paints,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    table = Table(title=f"dashboard, {args.households:,} households (median of {args.runs} cold loads)")
    table.add_column("what")
    table.add_column("figure", justify="right")
    for key in ("facts", "facts_per_second", "summary_api_ms_median", "first_paint_ms_median",
                "first_contentful_paint_ms_median", "figures_on_screen_ms_median"):
        table.add_row(key, f"{result[key]:,}")
    console.print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dashboard.json").write_text(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
