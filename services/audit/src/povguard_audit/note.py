"""C2SP signed notes with Ed25519: tlog-checkpoint bodies, log signatures and witness cosignatures
(tlog-cosignature, `cosignature/v1`). Pure: no I/O.

A note is its text body (ending in a newline), a blank line, then one line per signature:
"— <key name> <base64(key id(4) ‖ signature)>". The key id is the first 4 bytes of SHA-256(name ‖ "\\n" ‖ alg ‖
public key); alg 0x01 is Ed25519 over the body, 0x04 a cosignature over "cosignature/v1\\ntime <t>\\n" ‖ body,
whose signature bytes are key id ‖ uint64 t ‖ Ed25519 signature. A cosignature at time t proves that the witness
saw this checkpoint, hence every entry below its size, no later than t.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from povguard_audit import householdmap

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
DASH = "\u2014"


class NoteError(ValueError):
    pass


def _key_id(name: str, alg: int, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public).digest()[:4]


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def checkpoint_body(origin: str, size: int, root: bytes, map_root: bytes | None = None) -> str:
    """A tlog-checkpoint body; the household map's root, when given, is its one extension line."""
    if not origin or "\n" in origin:
        raise NoteError("an origin is one non-empty line")
    extension = "" if map_root is None else f"{householdmap.EXTENSION} {base64.b64encode(map_root).decode()}\n"
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n{extension}"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    map_root: bytes | None = None  # the household map's root (extension line), absent in older checkpoints


def parse_checkpoint(body: str) -> Checkpoint:
    lines = body.split("\n")
    if len(lines) < 4 or lines[-1] != "" or not lines[0]:
        raise NoteError("a checkpoint body is origin, size and root hash, each on its own line")
    try:
        size = int(lines[1])
        root = base64.b64decode(lines[2], validate=True)
    except ValueError as exc:
        raise NoteError(f"bad checkpoint body: {exc}") from exc
    if size < 0 or str(size) != lines[1] or len(root) != 32:
        raise NoteError("bad checkpoint size or root hash")
    map_root = None
    for line in lines[3:-1]:
        name, _, value = line.partition(" ")
        if name == householdmap.EXTENSION:
            try:
                map_root = base64.b64decode(value, validate=True)
            except ValueError as exc:
                raise NoteError(f"bad household map root: {exc}") from exc
            if len(map_root) != 32:
                raise NoteError("bad household map root")
    return Checkpoint(lines[0], size, root, map_root)


@dataclass(frozen=True)
class Signer:
    """A log key (alg 0x01) or a witness key (alg 0x04)."""

    name: str
    private: Ed25519PrivateKey
    alg: int = ALG_ED25519

    @classmethod
    def from_seed(cls, name: str, seed: bytes, alg: int = ALG_ED25519) -> Signer:
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed), alg)

    @property
    def public(self) -> bytes:
        return _raw(self.private.public_key())

    @property
    def key_id(self) -> bytes:
        return _key_id(self.name, self.alg, self.public)

    @property
    def vkey(self) -> str:
        """The published verifier key: name+hex(key id)+base64(alg ‖ public key)."""
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(bytes([self.alg]) + self.public).decode()}"

    def sign(self, body: str) -> str:
        if self.alg != ALG_ED25519:
            raise NoteError("a witness key cosigns; it does not sign notes")
        sig = self.private.sign(body.encode())
        return f"{DASH} {self.name} {base64.b64encode(self.key_id + sig).decode()}\n"

    def cosign(self, body: str, timestamp: int) -> str:
        if self.alg != ALG_COSIGNATURE_V1:
            raise NoteError("only a witness key cosigns")
        sig = self.private.sign(cosigned_message(body, timestamp))
        blob = self.key_id + timestamp.to_bytes(8, "big") + sig
        return f"{DASH} {self.name} {base64.b64encode(blob).decode()}\n"


def cosigned_message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode()


@dataclass(frozen=True)
class Verifier:
    name: str
    key_id: bytes
    alg: int
    public: Ed25519PublicKey

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        try:
            name, hexid, b64 = vkey.strip().split("+", 2)  # base64 may itself hold "+"
            raw = base64.b64decode(b64, validate=True)
            key_id = bytes.fromhex(hexid)
        except ValueError as exc:
            raise NoteError(f"not a verifier key: {vkey!r}") from exc
        if len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE_V1):
            raise NoteError(f"not an Ed25519 verifier key: {vkey!r}")
        if _key_id(name, raw[0], raw[1:]) != key_id:
            raise NoteError(f"verifier key id does not match its key: {vkey!r}")
        return cls(name, key_id, raw[0], Ed25519PublicKey.from_public_bytes(raw[1:]))

    def verify_line(self, body: str, line: str) -> int | None:
        """True-ish when `line` is this key's valid signature on `body`: 0 for a log signature, the timestamp for
        a cosignature; None otherwise."""
        parts = line.rstrip("\n").split(" ")
        if len(parts) != 3 or parts[0] != DASH or parts[1] != self.name:
            return None
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except ValueError:
            return None
        if blob[:4] != self.key_id:
            return None
        try:
            if self.alg == ALG_ED25519 and len(blob) == 68:
                self.public.verify(blob[4:], body.encode())
                return 0
            if self.alg == ALG_COSIGNATURE_V1 and len(blob) == 76:
                t = int.from_bytes(blob[4:12], "big")
                self.public.verify(blob[12:], cosigned_message(body, t))
                return t
        except InvalidSignature:
            return None
        return None


def sign_note(body: str, signers: list[Signer]) -> str:
    if not signers:
        raise NoteError("no signing key")
    return body + "\n" + "".join(s.sign(body) for s in signers)


def split_note(text: str) -> tuple[str, list[str]]:
    """The body and the signature lines of a note."""
    head, sep, sigs = text.rpartition("\n\n")
    if not sep:
        raise NoteError("a note has a body, a blank line and signature lines")
    lines = [line + "\n" for line in sigs.split("\n") if line]
    return head + "\n", lines


def verified_by(text: str, verifiers: list[Verifier]) -> tuple[str, list[Verifier]]:
    """The note's body and the given log keys that signed it (empty if none did)."""
    body, lines = split_note(text)
    good = [v for v in verifiers if v.alg == ALG_ED25519 and any(v.verify_line(body, ln) == 0 for ln in lines)]
    return body, good
