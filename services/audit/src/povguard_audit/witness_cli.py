"""`povguard witness ...`: run a witness for another office: keep the last checkpoint seen, check consistency,
cosign and submit."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path
from typing import Annotated

import httpx
import typer

from povguard_audit import note, witness
from povguard_audit.cli import read_keys

app = typer.Typer(help="A witness: check the audit log's new checkpoints against the last one seen, and cosign.",
                  no_args_is_help=True)


@app.command()
def keygen(name: Annotated[str, typer.Option(help="the witness's name, e.g. 纪检监察室")],
           out: Annotated[Path, typer.Option(help="file for the private seed (keep it secret)")]) -> None:
    """Make a witness key: the seed goes to OUT, the public key (to register with the log) to stdout."""
    seed = os.urandom(32)
    out.write_text(f"{name}\n{base64.b64encode(seed).decode()}\n")
    out.chmod(0o600)
    print(note.Signer.from_seed(name, seed, note.ALG_COSIGNATURE_V1).vkey)


def load_signer(path: Path) -> note.Signer:
    name, seed = path.read_text().splitlines()[:2]
    return note.Signer.from_seed(name, base64.b64decode(seed), note.ALG_COSIGNATURE_V1)


@app.command()
def cosign(
    url: Annotated[str, typer.Option(help="the audit service, e.g. http://127.0.0.1:8105")],
    token: Annotated[str, typer.Option(envvar="POVGUARD_TOKEN", help="bearer token")],
    log_key: Annotated[list[str], typer.Option(help="the log's public key or a file of them")],
    key: Annotated[Path, typer.Option(help="the witness key file from `povguard witness keygen`")],
    state: Annotated[Path, typer.Option(help="where the last checkpoint seen is kept")] = Path("witness.state"),
) -> None:
    """Check the latest checkpoint against the last one seen and cosign it; refuse (exit 1) if inconsistent."""
    verifiers = [note.Verifier.from_vkey(k) for k in read_keys(log_key)]
    last = state.read_text() if state.exists() else None

    async def go() -> str:
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
            seen, _ = await witness.run_once(client, last, verifiers, load_signer(key))
            return str(seen)

    try:
        new_note = asyncio.run(go())
    except witness.WitnessRefused as exc:
        print(f"REFUSED: {exc}")
        raise typer.Exit(1) from exc
    state.write_text(new_note)
    print(f"cosigned: {new_note.splitlines()[0]} size {new_note.splitlines()[1]}")
