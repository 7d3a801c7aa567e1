"""A witness (for example the discipline-inspection office, 纪检监察): it keeps the last checkpoint it saw, checks
that the log's new checkpoint is signed and consistent with it, and only then cosigns. Pure except `run_once`,
which talks to the audit API over HTTP."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any

import httpx

from povguard_audit import merkle, note


class WitnessRefused(Exception):
    """The new checkpoint is unsigned, from another log, smaller, or not consistent with the last one seen."""


@dataclass(frozen=True)
class Cosigned:
    checkpoint: note.Checkpoint
    line: str


def check_and_cosign(last_note: str | None, new_note: str, proof: list[bytes], log_keys: list[note.Verifier],
                     signer: note.Signer, now: int | None = None) -> Cosigned:
    body, good = note.verified_by(new_note, log_keys)
    if not good:
        raise WitnessRefused("the new checkpoint carries no valid signature of the log")
    new = note.parse_checkpoint(body)
    if last_note is not None:
        old_body, _ = note.split_note(last_note)
        old = note.parse_checkpoint(old_body)
        if old.origin != new.origin:
            raise WitnessRefused(f"checkpoint of another log: {new.origin} (expected {old.origin})")
        if not merkle.verify_consistency(old.size, old.root, new.size, new.root, proof):
            raise WitnessRefused(f"checkpoint of size {new.size} is not consistent with the size {old.size} seen "
                                 "before: the log was rewritten")
    return Cosigned(new, signer.cosign(body, int(time.time()) if now is None else now))


async def run_once(client: httpx.AsyncClient, last_note: str | None, log_keys: list[note.Verifier],
                   signer: note.Signer) -> tuple[str, dict[str, Any]]:
    """Fetch the latest checkpoint, check it against the last one seen, cosign and submit. Returns the new note
    (to keep as the last seen) and the checkpoint as the log now serves it."""
    r = await client.get("/v1/audit/checkpoints/latest")
    r.raise_for_status()
    latest = r.json()
    proof: list[bytes] = []
    if last_note is not None:
        old = note.parse_checkpoint(note.split_note(last_note)[0])
        if old.size > latest["tree_size"]:
            raise WitnessRefused(f"the log shrank from {old.size} to {latest['tree_size']}")
        if old.size < latest["tree_size"]:
            c = await client.get("/v1/audit/proofs/consistency",
                                 params={"first": old.size, "second": latest["tree_size"]})
            c.raise_for_status()
            proof = [base64.b64decode(p) for p in c.json()["proof"]]
    cosigned = check_and_cosign(last_note, latest["note"], proof, log_keys, signer)
    posted = await client.post(f"/v1/audit/checkpoints/{latest['id']}/cosignatures", json={"line": cosigned.line})
    posted.raise_for_status()
    return latest["note"], posted.json()
