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
    nats_port: Annotated[int, typer.Option(help="embedded NATS port (ignored when NATS_URL is set)")] = 4222,
    pg_port: Annotated[int, typer.Option(help="embedded PostgreSQL port (ignored when DATABASE_URL is set)")] = 55432,
) -> None:
    """Start NATS (JetStream), PostgreSQL and every service; Ctrl-C stops everything."""
    from povguard_platform.serve import service_definitions
    from povguard_tools.runtime.supervisor import up as start
    from povguard_tools.runtime.supervisor import wait_for_signal

    wanted = {"intake": intake_port, "assessment": assessment_port, "review": review_port,
              "support": support_port, "audit": audit_port}
    ports = {name: wanted.get(name, d.default_port) for name, d in service_definitions().items()}
    with console.status("starting NATS, PostgreSQL and the services…"):
        try:
            stack = start(data_dir.resolve(), ports, nats_port, pg_port,
                          on_ready=lambda name: console.log(f"{name} ready"))
        except (RuntimeError, TimeoutError) as exc:
            console.print(f"[red]povguard up failed:[/red] {exc}")
            raise typer.Exit(1) from exc
    urls = "  ".join(f"{name} {url}" for name, url in stack.urls.items())
    print(f"povguard is up: {urls}  (NATS {stack.nats_url}, PostgreSQL {stack.database_url}; "
          f"API docs at <url>/docs; Ctrl-C stops)", flush=True)
    code = 1
    try:
        code = wait_for_signal(stack)
    finally:
        console.print("stopping…")
        stack.stop()
    raise typer.Exit(code)


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
    app()


if __name__ == "__main__":
    main()
