"""Run the demo: bring the system up (or use one already running), generate the county, drive every stage,
print what came out and where to look next."""

from __future__ import annotations

import asyncio
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from rich.console import Console
from rich.table import Table

from povguard_platform.settings import get_settings
from povguard_tools.demo.client import Api, DemoError
from povguard_tools.demo.stages import STAGES
from povguard_tools.demo.state import Campaign, progress_bar
from povguard_tools.runtime.servers import free_port, port_open

if TYPE_CHECKING:
    from povguard_tools.synthetic import County

SERVICES = ["intake", "assessment", "review", "support", "audit", "reporting"]
DEFAULT_PORTS = {"intake": 8101, "assessment": 8102, "review": 8103, "support": 8104, "audit": 8105,
                 "reporting": 8106}


def _running_system() -> dict[str, str] | None:
    """The services on their default ports, if a `povguard up` is serving them."""
    urls = {name: f"http://127.0.0.1:{port}" for name, port in DEFAULT_PORTS.items()}
    try:
        if all(httpx.get(f"{u}/readyz", timeout=2).status_code == 200 for u in urls.values()):
            return urls
    except httpx.HTTPError:
        return None
    return None


def run_demo(households: int, seed: int, data_dir: Path, console: Console, use_running: bool = True) -> int:
    code, _ = run_campaign(households, seed, data_dir, console, use_running)
    return code


def run_campaign(households: int, seed: int, data_dir: Path, console: Console,
                 use_running: bool = True) -> tuple[int, Campaign | None]:
    """The whole demo; returns the exit code and the campaign (its figures, proposals and decisions)."""
    from povguard_tools.runtime.supervisor import Stack, up
    from povguard_tools.synthetic import generate_to

    started = time.monotonic()
    stack: Stack | None = None
    urls = _running_system() if use_running else None
    if not urls:
        shutil.rmtree(data_dir, ignore_errors=True)
    registry = data_dir / "county" / "registry.xlsx"
    # the county is generated while the system starts: start-up is mostly other processes' imports and waits for
    # PostgreSQL, and this thread mostly holds the GIL the starting thread hardly needs
    with ThreadPoolExecutor(1) as pool:
        generating = pool.submit(generate_to, registry, households, seed)
        if urls:
            console.print("using the system already running on the default ports")
        else:
            ports = {name: (p if not port_open(p) else free_port()) for name, p in DEFAULT_PORTS.items()}
            with console.status("starting NATS, PostgreSQL and the services…"):
                stack = up(data_dir / "system", ports, nats_port=free_port(), pg_port=free_port())
            urls = stack.urls
            steps = ", ".join(f"{step} {s}" for step, s in stack.timings.items() if step != "total")
            console.print(f"system up in {time.monotonic() - started:.1f}s ({steps}; data in {data_dir / 'system'})")
        try:
            county = generating.result()
        except BaseException:
            if stack is not None:
                stack.stop()
            raise
    _print_county(county, seed, data_dir, console)
    try:
        campaign = asyncio.run(_drive(urls, county, registry, console))
    except DemoError as exc:
        console.print(f"[red]demo failed:[/red] {exc}")
        return 1, None
    finally:
        if stack is not None:
            with console.status("stopping…"):
                stack.stop()
    _report(campaign, urls, time.monotonic() - started, console)
    return (0 if campaign.figures.get("audit", {}).get("verified") else 1), campaign


def drive_campaign(urls: dict[str, str], households: int, seed: int, data_dir: Path, console: Console) -> Campaign:
    """Generate the county and drive every stage against a running system (its services' URLs)."""
    from povguard_tools.synthetic import generate_to

    with console.status(f"generating a county of {households:,} households (seed {seed})…"):
        county = generate_to(data_dir / "county" / "registry.xlsx", households, seed)
    _print_county(county, seed, data_dir, console)
    return asyncio.run(_drive(urls, county, data_dir / "county" / "registry.xlsx", console))


def _print_county(county: County, seed: int, data_dir: Path, console: Console) -> None:
    console.print(f"county: {len(county.households):,} households, {county.members:,} people, "
                  f"{len(county.warnings):,} department warnings (seed {seed}) → {data_dir / 'county'}")


async def _drive(urls: dict[str, str], county: object, registry: Path, console: Console) -> Campaign:
    from povguard_tools.synthetic import County

    assert isinstance(county, County)
    async with Api(urls, get_settings()) as api:
        campaign = Campaign(api, county, console, registry)
        with progress_bar(console) as progress:
            campaign.progress = progress
            for name, stage in STAGES:
                started = time.monotonic()
                await stage(campaign)
                campaign.stage_seconds[name] = round(time.monotonic() - started, 1)
        return campaign


def _report(c: Campaign, urls: dict[str, str], seconds: float, console: Console) -> None:
    f = c.figures
    table = Table(title="结果 (results)", show_header=True)
    table.add_column("what")
    table.add_column("figure", justify="right")
    imp = f.get("import", {})
    table.add_row("导入户数 / 行数", f"{imp.get('households', 0):,} / {imp.get('rows', 0):,}")
    table.add_row("导入成功 / 退回（有错误行）", f"{imp.get('imported', 0):,} / {imp.get('refused', 0):,}")
    w = f.get("warnings", {})
    table.add_row("部门预警：匹配 / 未匹配", f"{w.get('matched', 0):,} / {w.get('unmatched', 0):,}")
    table.add_row("入户调查表", f"{f.get('visits', 0):,}")
    outcomes = f.get("outcomes_proposed", {})
    for outcome, n in sorted(outcomes.items(), key=lambda kv: -kv[1]):
        table.add_row(f"研判建议：{outcome}", f"{n:,}")
    table.add_row("暂缓（未签授权承诺书或未确定主要风险类型）", f"{f.get('held', 0):,}")
    cl = f.get("clearance", {})
    found, still = cl.get("found", {}), cl.get("open", {})
    table.add_row("问题清零：发现 / 更正户数 / 仍未清零", f"{sum(found.values()):,} / "
                  f"{cl.get('corrected_households', 0):,} / {sum(still.values()):,}")
    table.add_row("问题清零：成员信息更正（村级数据员）", f"{cl.get('corrected_members', 0):,}")
    for rule in sorted(set(found) | set(still)):
        table.add_row(f"  数据质量问题 {rule}（发现 → 未清零）", f"{found.get(rule, 0):,} → {still.get(rule, 0):,}")
    towns = {h.place.township_code: h.place.township for h in c.county.households}
    r = f.get("review", {})
    table.add_row("县级审定 / 部门比对不予认定 / 退回清退", f"{r.get('decided', 0):,} / {r.get('refused', 0):,} / "
                                                     f"{r.get('returned', 0):,}")
    table.add_row("公示 / 异议（已核实答复）", f"{r.get('公示', 0):,} / {r.get('异议', 0):,}")
    table.add_row("数据锁定后修改被拒", "是" if r.get("refused_after_lock") else "否")
    table.add_row("数据锁定时仍逾期未办结案件", f"{r.get('overdue_at_lock', 0):,}")
    table.add_row("识别超过15天（超期办理须说明理由）", f"{r.get('identification_limit_listed', 0):,}")
    for key, n in sorted(r.get("identified", {}).items(), key=lambda kv: -kv[1]):
        table.add_row(f"新识别监测对象：{key}", f"{n:,}")
    sp = f.get("support", {})
    table.add_row("帮扶计划", f"{sp.get('plans', 0):,}")
    for kind, n in sorted(sp.get("measures", {}).items(), key=lambda kv: -kv[1]):
        table.add_row(f"帮扶措施：{kind}", f"{n:,}")
    table.add_row("缺什么补什么未覆盖 / 一兜了之", f"{sp.get('gaps_left', 0):,} / {sp.get('safety_net_only', 0):,}")
    table.add_row("规模性返贫风险预警乡镇", "、".join(towns.get(t, t) for t in f.get("scale_risk", [])) or "无")
    a = f.get("audit", {})
    table.add_row("审计账本条目", f"{a.get('tree_size', 0):,}")
    table.add_row("最新签名检查点", str((a.get("checkpoint") or {}).get("tree_size", "-")))
    table.add_row("离线核验", "[green]一致[/green]" if a.get("verified") else f"[red]{a.get('problem')}[/red]")
    console.print(table)
    _bands(f.get("bands", []), {h.place.township_code: h.place.township for h in c.county.households}, console)
    console.print("stages (s): " + ", ".join(f"{k} {v}" for k, v in c.stage_seconds.items()) + "; waits for quiet: "
                  + ", ".join(f"{what} {s}s ({' '.join(held) or '-'})" for what, s, held in c.waits))
    console.print(f"done in {seconds:.0f}s. API docs: " + "  ".join(f"{n} {u}/docs" for n, u in urls.items()))
    if "reporting" in urls:
        console.print(f"看板 (dashboard): {dashboard_url(urls['reporting'])}")


def dashboard_url(base: str) -> str:
    """The dashboard, signed in as the county bureau (a development token in the fragment: never sent to a server)."""
    from datetime import timedelta

    from povguard_platform.actor import Actor, Role
    from povguard_platform.auth import issue_token

    settings = get_settings()
    token = issue_token(Actor(user="县乡村振兴局", role=Role.COUNTY_BUREAU, org=settings.campaign.split("-")[0]),
                        settings, timedelta(hours=12))
    return f"{base}/dashboard#token={token}"


def _bands(bands: list[dict[str, object]], towns: dict[str, str], console: Console) -> None:
    """The base database of seed §二(一)2: households/persons by income band per township."""
    from povguard_contracts.vocab import IncomeBand

    rows = [b for b in bands if b["level"] == "township"]
    if not rows:
        return
    table = Table(title="人均纯收入分段（户/人）按乡镇 — 基本数据库")
    table.add_column("乡镇")
    for band in IncomeBand:
        table.add_column(band.value.replace("元", "").replace("监测范围", "线"), justify="right")
    for code in sorted({str(b["code"]) for b in rows}):
        cells = {str(b["band"]): f"{b['households']}/{b['persons']}" for b in rows if b["code"] == code}
        table.add_row(towns.get(code, code), *(cells.get(band.value, "") for band in IncomeBand))
    console.print(table)
