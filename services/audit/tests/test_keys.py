"""Keys out of the database, published without a token: the verifier keys and the latest checkpoint are public and
cacheable; production signs only with a key from AUDIT_SIGNING_KEY_FILE or AUDIT_SIGNING_KEYS and refuses while the
audit database holds a private seed; development keeps its generated key in a file under its data dir; rotating the
key file keeps the old key published as a previous key that still verifies what it signed."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from povguard_audit import note
from povguard_audit.settings import audit_settings
from povguard_platform.actor import Role
from povguard_platform.envelope import StreamRef
from povguard_platform.service import ServiceRuntime
from povguard_tools.testing import eventually

Api = tuple[ServiceRuntime, httpx.AsyncClient]


async def _fill(api: Api, write: Any, ev: Any, auth: Callable[..., dict[str, str]], n: int, total: int) -> None:
    intake, client = api
    await write(intake, [(StreamRef("household", f"hh-{i % 3}"), ev.Noted(note=str(i))) for i in range(n)])

    async def recorded() -> bool:
        r = await client.get("/v1/audit/entries", params={"limit": 200}, headers=auth())
        return len(r.json()["data"]) == total

    await eventually(recorded)


def _seed_file(path: Path, byte: int) -> str:
    """Write a one-seed key file; return its vkey."""
    seed = bytes([byte]) * 32
    path.write_text("# the log's signing seed\n" + base64.b64encode(seed).decode() + "\n")
    return note.Signer.from_seed(audit_settings().origin, seed).vkey


async def _seeds_in_db(admin: AsyncEngine) -> int:
    async with admin.connect() as conn:
        return int((await conn.execute(text(
            "SELECT count(*) FROM audit.signing_keys WHERE seed IS NOT NULL"))).scalar_one())


async def test_keys_and_checkpoint_are_public_and_the_development_key_lives_in_a_file(
        api: Api, write: Any, ev: Any, auth: Callable[..., dict[str, str]], admin_engine: AsyncEngine) -> None:
    _, client = api
    assert (await client.get("/v1/audit/log/checkpoint")).status_code == 404  # nothing signed yet
    await _fill(api, write, ev, auth, 5, 5)
    signed = (await client.post("/v1/audit/checkpoints", headers=auth(Role.COUNTY_BUREAU))).json()

    r = await client.get("/.well-known/povguard-audit/keys")  # no token
    assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=300"
    published = r.json()
    assert published["origin"] == audit_settings().origin and published["log"] == "/v1/audit/log/"
    [key] = published["keys"]
    assert key["active"] and key["retired_at"] is None
    cp = await client.get("/v1/audit/log/checkpoint")  # no token: the C2SP checkpoint, sizes and roots only
    assert cp.status_code == 200 and cp.headers["content-type"] == "text/plain; charset=utf-8"
    assert cp.headers["cache-control"] == "public, max-age=10"
    body, good = note.verified_by(cp.text, [note.Verifier.from_vkey(key["vkey"])])
    parsed = note.parse_checkpoint(body)
    assert good and (parsed.origin, parsed.size, parsed.root) == (
        audit_settings().origin, 5, base64.b64decode(signed["root_hash"]))
    assert parsed.map_root is not None  # the household map's root, an extension line
    assert body.startswith(f"{audit_settings().origin}\n5\n{signed['root_hash']}\n")  # then any extension lines

    # The development key: in a file under the data dir (owner only), not in the database.
    key_file = audit_settings().data_dir / "signing-key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    seed = base64.b64decode(key_file.read_text().strip())
    assert note.Signer.from_seed(audit_settings().origin, seed).vkey == key["vkey"]
    assert await _seeds_in_db(admin_engine) == 0

    spec = (await client.get("/openapi.json")).json()  # the leaf encoding, where API clients read
    assert "RFC 8785 canonical JSON of the entry object" in spec["info"]["description"]
    assert "SHA-256(0x00" in spec["components"]["schemas"]["InclusionProof"]["properties"]["leaf_hash"]["description"]
    assert "/.well-known/povguard-audit/keys" in spec["paths"] and "/v1/audit/log/checkpoint" in spec["paths"]


async def test_a_development_seed_left_in_the_database_moves_into_the_key_file(
        api: Api, write: Any, ev: Any, auth: Callable[..., dict[str, str]], admin_engine: AsyncEngine) -> None:
    _, client = api
    legacy = note.Signer.from_seed(audit_settings().origin, b"\x07" * 32)
    async with admin_engine.begin() as conn:  # as databases created before keys left the database hold it
        await conn.execute(text("INSERT INTO audit.signing_keys (vkey, name, source, seed, active) "
                                "VALUES (:v, :n, 'generated-development', :s, true)"),
                           {"v": legacy.vkey, "n": legacy.name, "s": b"\x07" * 32})
    await _fill(api, write, ev, auth, 3, 3)
    cp = (await client.post("/v1/audit/checkpoints", headers=auth(Role.COUNTY_BUREAU))).json()
    assert note.verified_by(cp["note"], [note.Verifier.from_vkey(legacy.vkey)])[1]  # the same key signs on
    assert base64.b64decode((audit_settings().data_dir / "signing-key").read_text()) == b"\x07" * 32
    assert await _seeds_in_db(admin_engine) == 0


async def test_production_refuses_a_key_in_the_database_and_rotates_with_the_key_file(
        api: Api, write: Any, ev: Any, auth: Callable[..., dict[str, str]], admin_engine: AsyncEngine,
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _, client = api
    bureau = auth(Role.COUNTY_BUREAU)
    await _fill(api, write, ev, auth, 4, 4)
    dev = (await client.post("/v1/audit/checkpoints", headers=bureau)).json()  # development: a generated key
    stray = note.Signer.from_seed("stray", b"\x05" * 32)
    async with admin_engine.begin() as conn:  # a seed in the database, as before keys left it
        await conn.execute(text("INSERT INTO audit.signing_keys (vkey, name, source, seed, active) "
                                "VALUES (:v, :n, 'generated-development', :s, false)"),
                           {"v": stray.vkey, "n": stray.name, "s": b"\x05" * 32})
    monkeypatch.setenv("ENVIRONMENT", "production")
    audit_settings.cache_clear()
    await _fill(api, write, ev, auth, 2, 6)

    refused = await client.post("/v1/audit/checkpoints", headers=bureau)  # no key configured
    assert refused.status_code == 503 and refused.headers["content-type"] == "application/problem+json"
    assert "AUDIT_SIGNING_KEY_FILE" in refused.json()["detail"]
    key_file = tmp_path / "signing-key.secret"
    first = _seed_file(key_file, 1)
    monkeypatch.setenv("AUDIT_SIGNING_KEY_FILE", str(key_file))
    audit_settings.cache_clear()
    refused = await client.post("/v1/audit/checkpoints", headers=bureau)  # a key file, but a seed in the database
    assert refused.status_code == 503
    assert f"audit.signing_keys holds the private seed of {stray.vkey}" in refused.json()["detail"]
    latest = (await client.get("/v1/audit/checkpoints/latest", headers=auth())).json()
    assert latest["tree_size"] == 4  # nothing was signed

    async with admin_engine.begin() as conn:
        await conn.execute(text("UPDATE audit.signing_keys SET seed = NULL"))
    one = (await client.post("/v1/audit/checkpoints", headers=bureau)).json()
    assert one["tree_size"] == 6 and one["note"].count("\n— ") == 1

    second = _seed_file(key_file, 2)  # rotation: the new seed replaces the old one in the mounted file
    await _fill(api, write, ev, auth, 1, 7)
    two = (await client.post("/v1/audit/checkpoints", headers=bureau)).json()
    keys = (await client.get("/.well-known/povguard-audit/keys")).json()["keys"]
    assert [k["vkey"] for k in keys if k["active"]] == [second]
    previous = {k["vkey"] for k in keys if not k["active"]}
    assert first in previous and len(previous) == 3  # the development key, the first file key, the stray row
    old, new = note.Verifier.from_vkey(first), note.Verifier.from_vkey(second)
    assert note.verified_by(one["note"], [old])[1] and not note.verified_by(one["note"], [new])[1]
    assert note.verified_by(two["note"], [new])[1] and not note.verified_by(two["note"], [old])[1]
    assert not note.verified_by(dev["note"], [old, new])[1]
