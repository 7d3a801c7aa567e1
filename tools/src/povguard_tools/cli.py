"""The `povguard` command line: run the system, issue development tokens, run benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from povguard_platform.actor import Actor, Role

app = typer.Typer(help="povguard: 防止返贫监测 — run, operate and inspect the system.", no_args_is_help=True)
console = Console(stderr=True)


@app.command()
def up(
    data_dir: Annotated[Path, typer.Option(help="where NATS and PostgreSQL keep their data")] = Path("var"),
    intake_port: int = 8101,
    assessment_port: int = 8102,
    review_port: int = 8103,
    support_port: int = 8104,
    audit_port: int = 8105,
    reporting_port: int = 8106,
    nats_port: Annotated[int, typer.Option(help="embedded NATS port (ignored when NATS_URL is set)")] = 4222,
    pg_port: Annotated[int, typer.Option(help="embedded PostgreSQL port (ignored when DATABASE_URL is set)")] = 55432,
    nats_nodes: Annotated[int, typer.Option(min=1, max=5, help="NATS nodes: 3 is a JetStream cluster on the client "
                                            "ports nats-port, +1, +2, the events stream on each")] = 1,
    replicas: Annotated[int, typer.Option(min=1, max=8, help="processes per service, sharing its port")] = 1,
    read_replica: Annotated[bool, typer.Option(help="a streaming replica of the embedded PostgreSQL on pg-port + 1 "
                                               "for lists, reports and exports")] = False,
) -> None:
    """Start NATS (JetStream), PostgreSQL and every service; Ctrl-C stops everything."""
    from povguard_platform.serve import service_definitions
    from povguard_tools.runtime.supervisor import up as start
    from povguard_tools.runtime.supervisor import wait_for_signal

    wanted = {"intake": intake_port, "assessment": assessment_port, "review": review_port,
              "support": support_port, "audit": audit_port, "reporting": reporting_port}
    ports = {name: wanted.get(name, d.default_port) for name, d in service_definitions().items()}
    with console.status("starting NATS, PostgreSQL and the services…"):
        try:
            stack = start(data_dir.resolve(), ports, nats_port, pg_port,
                          on_ready=lambda name: console.log(f"{name} ready"), nats_nodes=nats_nodes,
                          replicas=replicas, read_replica=read_replica)
        except (RuntimeError, TimeoutError) as exc:
            console.print(f"[red]povguard up failed:[/red] {exc}")
            raise typer.Exit(1) from exc
    urls = "  ".join(f"{name} {url}" for name, url in stack.urls.items())
    shape = f"{replicas} replicas of each service sharing its port; " if replicas > 1 else ""
    print(f"povguard is up: {urls}  ({shape}NATS {stack.nats_url}, "
          f"PostgreSQL {stack.database_url or 'per-service URLs'}"
          f"{f', its read replica on port {stack.standby.port}' if stack.standby else ''}; "
          f"API docs at <url>/docs; the dashboard at {stack.urls.get('reporting', '')}/dashboard; "
          f"crashed processes restart by themselves, `povguard status` shows them; "
          f"Ctrl-C stops)", flush=True)
    code = 1
    try:
        code = wait_for_signal(stack, report=lambda line: console.print(f"[yellow]{line}[/yellow]"))
    finally:
        console.print("stopping…")
        stack.stop()
    raise typer.Exit(code)


@app.command()
def status(
    data_dir: Annotated[Path, typer.Option(help="the data dir of a running `povguard up`")] = Path("var"),
) -> None:
    """Each process of a running `povguard up`: pid, state, restarts, last exit code, and whether it is ready."""
    import json
    import time

    import httpx
    from rich.table import Table

    path = data_dir / "status.json"
    if not path.exists():
        console.print(f"[red]no {path}: is `povguard up --data-dir {data_dir}` running?[/red]")
        raise typer.Exit(2)
    status = json.loads(path.read_text())
    age = time.time() - status["updated"]
    table = Table(title=f"povguard up in {data_dir} (status {age:.0f} s old)")
    for column in ("process", "pid", "state", "restarts", "last exit", "up for", "ready", "url"):
        table.add_column(column)
    healthy = age < 30
    for p in status["processes"]:
        url = p.get("url") or status["urls"].get(p["name"])  # a replica's own port; a NATS node's client URL
        ready = "—"
        if url and url.startswith("http"):
            try:
                ready = "yes" if httpx.get(f"{url}/readyz", timeout=2).status_code == 200 else "no (503)"
            except httpx.HTTPError:
                ready = "no (unreachable)"
        healthy = healthy and p["state"] == "running" and ready in ("yes", "—")
        style = {"running": "green", "restarting": "yellow"}.get(p["state"], "red")
        table.add_row(p["name"], str(p["pid"]), f"[{style}]{p['state']}[/{style}]", str(p["restarts"]),
                      "" if p["last_exit"] is None else str(p["last_exit"]),
                      f"{time.time() - p['since']:.0f} s", ready, url or "")
    Console().print(table)
    if age >= 30:
        console.print("[red]the status is stale: `povguard up` is not supervising any more[/red]")
    raise typer.Exit(0 if healthy else 1)


@app.command()
def demo(
    households: Annotated[int, typer.Option(help="size of the synthetic county")] = 1000,
    seed: Annotated[int, typer.Option(help="same seed, same county")] = 2022,
    data_dir: Annotated[Path, typer.Option(help="where the demo keeps its system and files")] = Path("var/demo"),
    use_running: Annotated[bool, typer.Option(help="use a `povguard up` already serving the default ports")] = True,
) -> None:
    """Run a whole screening campaign on a synthetic county through the public APIs, then show what came out."""
    from povguard_tools.demo.runner import run_demo

    wide = Console(stderr=True, width=max(console.width, 140))  # the result tables are wide
    raise typer.Exit(run_demo(households, seed, data_dir.resolve(), wide, use_running))


@app.command()
def generate(
    out: Annotated[Path, typer.Argument(help="registry file (.xlsx or .csv) or a directory")],
    households: Annotated[int, typer.Option(help="number of households")] = 2000,
    seed: Annotated[int, typer.Option(help="same seed, same county")] = 2022,
) -> None:
    """Write a synthetic county in the import template, with its campaign files (visits, warnings, checks)."""
    from povguard_tools.synthetic import generate_to

    with console.status(f"generating {households:,} households…"):
        county = generate_to(out, households, seed)
    console.print(f"wrote {len(county.households):,} households, {county.members:,} people to {out}")


@app.command()
def token(
    role: Annotated[Role, typer.Option(help="the actor's role")],
    org: Annotated[str, typer.Option(help="org unit: an administrative division code, e.g. 533123 (county); "
                                          "a department's is the county it serves")],
    user: Annotated[str, typer.Option(help="user name")] = "dev",
    dept: Annotated[str | None, typer.Option(help="a department token's department, e.g. 公安")] = None,
    hours: int = 12,
) -> None:
    """Print a development bearer token (signed with JWT_SECRET) for local use."""
    from datetime import timedelta

    from povguard_platform.auth import issue_token, token_problem
    from povguard_platform.settings import get_settings

    actor = Actor(user=user, role=role, org=org, dept=dept)
    problem = token_problem(actor)
    if problem:
        raise typer.BadParameter(problem)
    print(issue_token(actor, get_settings(), timedelta(hours=hours)))


@app.command()
def replay(service: Annotated[str, typer.Argument(help="intake, assessment, ...")]) -> None:
    """Drop a service's read models and rebuild them from its events (DATABASE_URL; the service may keep running:
    the rebuild is one transaction)."""
    import asyncio

    from povguard_platform.serve import service_definitions
    from povguard_platform.service import ServiceRuntime
    from povguard_platform.settings import get_settings

    definition = service_definitions().get(service)
    if definition is None or definition.rebuild is None:
        console.print(f"[red]{service} has no read models to rebuild[/red]")
        raise typer.Exit(2)
    rebuild = definition.rebuild

    async def run() -> int:
        runtime = ServiceRuntime.create(definition, get_settings())
        try:
            async with runtime.engine.begin() as conn:
                return await rebuild(runtime, conn)
        finally:
            await runtime.engine.dispose()

    with console.status(f"rebuilding {service}'s read models…"):
        count = asyncio.run(run())
    console.print(f"{service}: rebuilt {count:,}")


def _add_report_commands() -> None:
    from povguard_tools.report import app as report_app

    app.add_typer(report_app, name="report")


db_app = typer.Typer(help="The database: each service's roles and schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("provision")
def db_provision(
    admin_url: Annotated[str, typer.Argument(help="a superuser's URL of the database to prepare, e.g. "
                                                  "postgresql://postgres@db.example:5432/povguard")],
    service: Annotated[list[str] | None, typer.Option(help="only this service (repeatable); default: all")] = None,
    passwords: Annotated[bool, typer.Option(help="give every role a new random password (in the printed URLs)")]
    = False,
) -> None:
    """Create each service's owner and runtime roles and its schema in ADMIN_URL's database, then print the URLs
    each service runs and migrates with (an env file: <SVC>_DATABASE_URL, <SVC>_MIGRATION_DATABASE_URL). Run it
    once per database; running it again is harmless, and hands a database migrated before the roles to them."""
    import asyncio
    import secrets

    from povguard_platform.roles import login_urls, owner_role, provision, runtime_role
    from povguard_platform.serve import service_definitions

    known = list(service_definitions())
    names = service or known
    unknown = sorted(set(names) - set(known))
    if unknown:
        console.print(f"[red]no such service: {', '.join(unknown)}[/red] (installed: {', '.join(known)})")
        raise typer.Exit(2)
    roles = [r for name in names for r in (owner_role(name), runtime_role(name))]
    secret = {r: secrets.token_urlsafe(24) for r in roles} if passwords else None
    asyncio.run(provision(admin_url, names, secret))
    runtime_urls, owner_urls = login_urls(admin_url, names, secret)
    for name in names:
        print(f"{name.upper()}_DATABASE_URL={runtime_urls[name]}")
        print(f"{name.upper()}_MIGRATION_DATABASE_URL={owner_urls[name]}")
    console.print(f"provisioned {', '.join(names)}" + ("; the passwords are in the URLs above" if passwords else ""))


bench_app = typer.Typer(help="Benchmarks: print figures and write JSON under var/bench/.")
app.add_typer(bench_app, name="bench")


@bench_app.command("eventstore")
def bench_eventstore(
    events: Annotated[int, typer.Option(help="events per measured case")] = 20_000,
    out: Path = Path("var/bench"),
) -> None:
    """Appends per second (batch 1/100/1000, 1 and 8 writers), relay throughput and delay; ratios to the
    eventsourcing library and to a raw COPY on the same server."""
    _run_bench("eventstore", ["--events", str(events), "--out", str(out)])


def _add_service_commands() -> None:
    """Services contribute command groups (e.g. `povguard audit ...`) through the `povguard.commands` entry
    points, and top-level commands through `povguard.toplevel`: each names a Typer app."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="povguard.commands"):
        app.add_typer(ep.load(), name=ep.name)
    for ep in entry_points(group="povguard.toplevel"):  # commands that read best at the top: `povguard import`
        app.registered_commands.extend(ep.load().registered_commands)


@bench_app.command("e2e")
def bench_e2e(households: Annotated[int, typer.Option(help="size of the synthetic county")] = 2000,
              out: Path = Path("var/bench")) -> None:
    """The whole campaign through the public APIs: households/s, events/s, visit→proposal delay, REST latency under
    wrk, peak memory per process."""
    _run_bench("e2e", ["--households", str(households), "--out", str(out)])


def _run_bench(name: str, args: list[str]) -> None:
    import runpy
    import sys

    script = Path(f"bench/{name}.py")
    if not script.exists():
        console.print(f"[red]run this from the povguard checkout ({script} not found)[/red]")
        raise typer.Exit(2)
    sys.argv = [str(script), *args]
    runpy.run_path(str(script), run_name="__main__")


def main() -> None:
    _add_service_commands()
    _add_report_commands()
    app()


if __name__ == "__main__":
    main()
