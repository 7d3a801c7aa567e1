"""The log's signing keys, from outside the audit database: a database superuser who could read a seed could re-sign
a rewritten log. Seeds come from AUDIT_SIGNING_KEY_FILE and AUDIT_SIGNING_KEYS (settings.py); without either, a
development or test process generates one into a file under its data dir (mode 0600), production refuses."""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path

from povguard_audit.note import Signer
from povguard_audit.settings import AuditSettings

log = logging.getLogger(__name__)
SEED_BYTES = 32


class NoSigningKey(Exception):
    """No usable signing key (production without one configured, a malformed seed, or a key in the database)."""


def _decode(part: str, where: str) -> bytes:
    try:
        seed = base64.b64decode(part, validate=True)
    except ValueError as exc:
        raise NoSigningKey(f"{where}: not base64: {exc}") from exc
    if len(seed) != SEED_BYTES:
        raise NoSigningKey(f"{where}: each key is a base64 Ed25519 seed of {SEED_BYTES} bytes")
    return seed


def configured_seeds(settings: AuditSettings) -> list[bytes]:
    """Seeds from the key file (one a line, '#' comments) and the environment secret, in that order."""
    seeds: list[bytes] = []
    if settings.signing_key_file is not None:
        try:
            lines = settings.signing_key_file.read_text().splitlines()
        except OSError as exc:
            raise NoSigningKey(f"AUDIT_SIGNING_KEY_FILE {settings.signing_key_file}: {exc.strerror}") from exc
        seeds += [_decode(ln.strip(), "AUDIT_SIGNING_KEY_FILE") for ln in lines
                  if ln.strip() and not ln.lstrip().startswith("#")]
    seeds += [_decode(p.strip(), "AUDIT_SIGNING_KEYS")
              for p in settings.signing_keys.get_secret_value().split(",") if p.strip()]
    return list(dict.fromkeys(seeds))


def development_key_file(settings: AuditSettings) -> Path:
    return settings.data_dir / "signing-key"


def write_key_file(path: Path, seed: bytes) -> None:
    """A seed file readable by its owner only, written whole or not at all, never over an existing one (two
    processes generating at once both end up with the first one's key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(seed).decode() + "\n")
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def current(settings: AuditSettings, adopt: bytes | None = None) -> tuple[list[Signer], str]:
    """The keys that sign new checkpoints and their source ('configured' or 'generated-development'). Without a
    configured key, development uses (or creates) its key file: from `adopt` (a seed a development database held
    before keys left it) or fresh random bytes."""
    seeds = configured_seeds(settings)
    if seeds:
        return [Signer.from_seed(settings.origin, s) for s in seeds], "configured"
    if settings.environment == "production":
        raise NoSigningKey("production signs only with AUDIT_SIGNING_KEY_FILE or AUDIT_SIGNING_KEYS "
                           "(`povguard audit keygen` makes a seed); neither is set")
    path = development_key_file(settings)
    if not path.exists():
        write_key_file(path, adopt or os.urandom(SEED_BYTES))
        log.warning("no AUDIT_SIGNING_KEY_FILE or AUDIT_SIGNING_KEYS: development signing key in %s", path)
    return [Signer.from_seed(settings.origin, _decode(path.read_text().strip(), str(path)))], "generated-development"
