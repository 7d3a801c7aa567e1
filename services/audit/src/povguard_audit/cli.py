"""`povguard audit ...`: verify a bundle offline, export bundles, sign checkpoints, run the full re-check, make keys."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

app = typer.Typer(help="The audit ledger: offline verification, bundles, checkpoints, re-checks.",
                  no_args_is_help=True)
console = Console(stderr=True)
T = TypeVar("T")


def read_keys(values: list[str]) -> list[str]:
    """Each --key is a verifier key (name+id+key) or a file holding one per line."""
    keys: list[str] = []
    for value in values:
        path = Path(value)
        if "+" not in value and path.exists():
            keys += [line.strip() for line in path.read_text().splitlines() if line.strip()]
        else:
            keys.append(value.strip())
    return keys


@app.command()
def verify(
    bundle: Annotated[Path, typer.Argument(help="a bundle exported by `povguard audit export` or the API")],
    key: Annotated[list[str], typer.Option(help="the log's public key (vkey) or a file of them; repeatable")],
    witness_key: Annotated[list[str] | None, typer.Option(help="a witness's public key, to report cosigners")]
    = None,
    tiles: Annotated[str | None, typer.Option(help="a tlog-tiles mirror (directory or URL prefix): recompute each "
                                                   "entry's inclusion from its tiles and pinned checkpoint")] = None,
) -> None:
    """Check a bundle offline with nothing but the public keys; name the first bad entry or say all is consistent."""
    from povguard_audit.verify import verify_bundle

    doc = json.loads(bundle.read_bytes())
    if tiles is not None:
        from povguard_audit.mirror import fetcher, verify_against

        mirrored = verify_against(doc, read_keys(key), fetcher(tiles))
        print("\n".join(mirrored.lines))
        if not mirrored.ok:
            raise typer.Exit(1)
    report = verify_bundle(doc, read_keys(key), read_keys(witness_key or []))
    print(report.summary())
    for finding in sorted(report.findings)[1:6]:
        print(f"  also: entry {finding.index} ({finding.kind}): {finding.detail}")
    raise typer.Exit(0 if report.ok else 1)


def _engine() -> AsyncEngine:
    from povguard_platform.settings import get_settings, sqlalchemy_url

    return create_async_engine(sqlalchemy_url(get_settings().database_url_for("audit")))


def _run(fn: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    async def main() -> T:
        engine = _engine()
        try:
            return await fn(engine)
        finally:
            await engine.dispose()

    return asyncio.run(main())


@app.command()
def export(
    out: Annotated[Path, typer.Option(help="where to write the bundle (JSON)")],
    household: str | None = None,
    since: Annotated[datetime | None, typer.Option(help="recorded at or after")] = None,
    until: Annotated[datetime | None, typer.Option(help="recorded before")] = None,
    payloads: Annotated[bool, typer.Option(help="include the stored events")] = False,
) -> None:
    """Export a bundle (household, time range, or the whole ledger) up to the latest signed checkpoint."""
    from povguard_audit import bundle

    async def go(engine: AsyncEngine) -> dict[str, object]:
        async with engine.connect() as conn:
            found: dict[str, object] = await bundle.export(conn, household=household, since=since, until=until,
                                                           include_payloads=payloads)
            return found

    with console.status("exporting…"):
        doc = _run(go)
    out.write_text(json.dumps(doc, ensure_ascii=False))
    console.print(f"{len(doc['entries'])} entries up to checkpoint size {doc['tree_size']} → {out}")  # type: ignore[arg-type]


@app.command()
def checkpoint() -> None:
    """Sign a checkpoint of the ledger now."""
    from povguard_audit import checkpoints
    from povguard_audit.settings import audit_settings

    async def go(engine: AsyncEngine) -> str:
        async with engine.begin() as conn:
            c = await checkpoints.sign(conn, audit_settings())
        return "the ledger is empty" if c is None else c.note

    print(_run(go))


@app.command()
def recheck() -> None:
    """The full re-check (for cron): exit 1 and raise the alert event on any mismatch."""
    from povguard_audit import recheck as rc
    from povguard_audit.settings import audit_settings

    result = _run(lambda engine: rc.recheck(engine, audit_settings()))
    print(("OK: " if result.ok else f"MISMATCH at entry {result.first_bad_index}: ") + result.detail)
    raise typer.Exit(0 if result.ok else 1)


@app.command()
def keygen(name: Annotated[str, typer.Option(help="key name: the log's origin")] = "povguard.cn/audit/533123") -> None:
    """Print a new signing seed (for AUDIT_SIGNING_KEYS) on stdout and its public key on stderr."""
    from povguard_audit.note import Signer

    seed = os.urandom(32)
    print(base64.b64encode(seed).decode())
    print(Signer.from_seed(name, seed).vkey, file=sys.stderr)
