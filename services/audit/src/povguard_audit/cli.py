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


EXIT_UNREADABLE = 3  # 0 verified, 1 not verified (tampering, unsigned entries), 3 an unreadable bundle or key


@app.command()
def verify(
    bundle: Annotated[Path, typer.Argument(help="a bundle exported by `povguard audit export` or the API")],
    key: Annotated[list[str], typer.Option(help="the log's public key (vkey) or a file of them; repeatable")],
    witness_key: Annotated[list[str] | None, typer.Option(help="a witness's public key, to report cosigners")]
    = None,
    tiles: Annotated[str | None, typer.Option(help="a tlog-tiles mirror (directory or URL prefix): recompute each "
                                                   "entry's inclusion from its tiles and pinned checkpoint")] = None,
    accept_unsigned_tail: Annotated[bool, typer.Option(
        "--accept-unsigned-tail", help="pass even if some entries are signed by no checkpoint in the bundle "
                                       "(they are still named, as unverified)")] = False,
) -> None:
    """Check a bundle offline with nothing but the public keys, in one pass; say what it proved, or name the first
    bad entry. Exit 0 verified, 1 not verified, 3 an unreadable bundle or key."""
    from povguard_audit.note import NoteError
    from povguard_audit.verify import verify_file

    if tiles is not None:
        from povguard_audit.mirror import fetcher, verify_against

        try:
            with bundle.open("rb") as lines:
                mirrored = verify_against((json.loads(line) for line in lines if line.strip()), read_keys(key),
                                          fetcher(tiles))
        except (OSError, ValueError) as exc:
            print(f"UNREADABLE BUNDLE: {exc}")
            raise typer.Exit(EXIT_UNREADABLE) from None
        print("\n".join(mirrored.lines))
        if not mirrored.ok:
            raise typer.Exit(1)
    try:
        report = verify_file(bundle, read_keys(key), read_keys(witness_key or []),
                             accept_unsigned_tail=accept_unsigned_tail)
    except NoteError as exc:
        print(f"UNREADABLE KEY: {exc}")
        raise typer.Exit(EXIT_UNREADABLE) from None
    except OSError as exc:
        print(f"UNREADABLE BUNDLE: {exc}")
        raise typer.Exit(EXIT_UNREADABLE) from None
    print(report.summary())
    for finding in sorted(report.findings)[1:6]:
        print(f"  also: entry {finding.index} ({finding.kind}): {finding.detail}")
    if report.unsigned and (report.findings or report.problem):
        print(f"  also: {report.unsigned_count} entries no checkpoint in the bundle signs")
    raise typer.Exit(0 if report.ok else EXIT_UNREADABLE if report.malformed else 1)


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
    out: Annotated[Path, typer.Argument(help="where to write the bundle (JSON Lines)")],
    household: str | None = None,
    since: Annotated[datetime | None, typer.Option(help="recorded at or after")] = None,
    until: Annotated[datetime | None, typer.Option(help="recorded before")] = None,
    payloads: Annotated[bool, typer.Option(help="include the stored events")] = False,
) -> None:
    """Export a bundle (household, time range, or the whole ledger) up to the latest signed checkpoint, streamed
    to the file line by line."""
    from povguard_audit import bundle

    async def go(engine: AsyncEngine) -> tuple[int, int]:
        entries = tree_size = 0
        async with engine.connect() as conn:
            with out.open("w", encoding="utf-8") as f:
                async for line in bundle.export(conn, household=household, since=since, until=until,
                                                include_payloads=payloads):
                    f.write(json.dumps(line, ensure_ascii=False) + "\n")
                    tree_size = line.get("tree_size", tree_size)
                    entries = line["end"]["entries"] if "end" in line else entries
        return entries, tree_size

    try:
        with console.status("exporting…"):
            entries, tree_size = _run(go)
    except bundle.NothingSigned as exc:
        console.print(f"nothing to export: {exc}")
        raise typer.Exit(1) from None
    console.print(f"{entries} entries up to checkpoint size {tree_size} → {out}")


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
