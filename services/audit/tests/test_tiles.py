"""The log as C2SP tlog-tiles, mirrored with plain HTTP GETs into a directory and checked against the independent
RFC 9162 transcription in test_merkle: the tiles' leaves are the entry bundles' hashes, the root recomputed from the
tiles is the signed root, inclusion proofs built from tiles are the served ones; then `povguard audit verify
--tiles` checks a household bundle against the mirror offline, with only the pinned key."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from test_merkle import _mth, _path
from typer.testing import CliRunner

from povguard_audit import note, tiles
from povguard_audit.cli import app as audit_cli
from povguard_platform.actor import Role
from povguard_platform.envelope import StreamRef
from povguard_platform.service import ServiceRuntime
from povguard_platform.settings import Settings
from povguard_tools.testing import eventually


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """One partition: these tests name ledger indices, and with several partitions the order in which the ledger
    takes two households' events depends on which partition's batch lands first."""
    return settings.model_copy(update={"partitions": 1})

Api = tuple[ServiceRuntime, httpx.AsyncClient]
SIZE = 600  # two full level-0 tiles and a partial one of 88; a partial level-1 tile of 2
LOG = "/v1/audit/log/"


def test_tile_paths_as_the_spec_writes_them() -> None:
    assert tiles.encode_index(1234067) == "x001/x234/067" and tiles.encode_index(0) == "000"
    assert tiles.parse("2", "x001/x234/067.p/8") == tiles.TileRef(2, 1234067, 8)
    assert tiles.parse("entries", "x001/000").path == "tile/entries/x001/000"
    # 70,000 entries: 273 full level-0 tiles and one of 112, one full level-1 tile and one of 17, level 2 of 1
    assert [tiles.available(0, n, 70_000) for n in (272, 273, 274)] == [256, 112, 0]
    assert [tiles.available(1, n, 70_000) for n in (0, 1)] == [256, 17] and tiles.available(2, 0, 70_000) == 1


async def _ledger(api: Api, write: Any, ev: Any, admin: AsyncEngine) -> None:
    intake, _ = api
    await write(intake, [(StreamRef("household", f"hh-{i % 7}"), ev.Noted(note=str(i))) for i in range(SIZE)])

    async def recorded() -> bool:
        async with admin.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM audit.ledger"))).scalar_one()) == SIZE

    await eventually(recorded, within=60)


async def _mirror(client: httpx.AsyncClient, dest: Path, headers: dict[str, str]) -> int:
    """What a mirror does: GET the checkpoint, every tile it needs and every entry bundle; store them as paths."""
    def keep(path: str, r: httpx.Response) -> None:
        assert r.status_code == 200, (path, r.text)
        (dest / path).parent.mkdir(parents=True, exist_ok=True)
        (dest / path).write_bytes(r.content)

    keep("checkpoint", await client.get(LOG + "checkpoint"))
    size = note.parse_checkpoint(note.split_note((dest / "checkpoint").read_text())[0]).size
    level = 0
    while size >> (tiles.HEIGHT * level):
        for n in range(-(-(size >> (tiles.HEIGHT * level)) // tiles.WIDTH)):
            ref = tiles.needed(level, n, size)
            keep(ref.path, await client.get(LOG + ref.path))  # no token
        level += 1
    for n in range(-(-size // tiles.WIDTH)):
        ref = tiles.needed(-1, n, size)
        keep(ref.path, await client.get(LOG + ref.path, headers=headers))
    return size


async def test_tiles_rebuild_the_signed_tree_and_its_proofs(
        api: Api, write: Any, ev: Any, auth: Callable[..., dict[str, str]], admin_engine: AsyncEngine,
        tmp_path: Path) -> None:
    _, client = api
    await _ledger(api, write, ev, admin_engine)
    cp = (await client.post("/v1/audit/checkpoints", headers=auth(Role.COUNTY_BUREAU))).json()
    root = base64.b64decode(cp["root_hash"])
    mirror = tmp_path / "mirror"
    assert await _mirror(client, mirror, auth()) == SIZE

    data = [e for n in ("000", "001", "002.p/88") for e in tiles.split_entries(
        (mirror / f"tile/entries/{n}").read_bytes())]
    assert [json.loads(d)["index"] for d in data] == list(range(SIZE))
    leaves = b"".join((mirror / f"tile/0/{n}").read_bytes() for n in ("000", "001", "002.p/88"))
    assert leaves == b"".join(hashlib.sha256(b"\x00" + d).digest() for d in data)
    assert _mth(data) == root  # the independent RFC 9162 recursion over the mirrored entries
    assert (mirror / "tile/1/000.p/2").read_bytes() == _mth(data[:256]) + _mth(data[256:512])

    reader = tiles.TileReader(SIZE, lambda path: (mirror / path).read_bytes())
    assert reader.root() == root
    for index in (0, 1, 255, 256, 300, 511, 512, 599):
        served = (await client.get("/v1/audit/proofs/inclusion", params={"index": index, "tree_size": SIZE},
                                   headers=auth())).json()
        assert base64.b64decode(served["leaf_hash"]) == hashlib.sha256(b"\x00" + data[index]).digest()
        assert reader.inclusion_proof(index) == [base64.b64decode(p) for p in served["proof"]] == _path(index, data)

    full, partial = await client.get(LOG + "tile/0/001"), await client.get(LOG + "tile/0/002.p/88")
    assert full.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert partial.headers["cache-control"] == "public, max-age=10"
    assert full.headers["content-type"] == "application/octet-stream" and len(full.content) == 256 * 32
    assert (await client.get(LOG + "tile/0/002.p/40")).content == partial.content[:40 * 32]  # a prefix
    entries = await client.get(LOG + "tile/entries/000", headers=auth())
    assert entries.headers["cache-control"] == "private, max-age=31536000, immutable"
    for path in ("tile/0/002", "tile/0/002.p/89", "tile/0/x000/001", "tile/00/000", "tile/64/000", "tile/2/000",
                 "tile/0/000.p/256", "tile/0/000.p/0"):
        r = await client.get(LOG + path)
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json", path
    assert (await client.get(LOG + "tile/entries/000")).status_code == 401
    township = auth(Role.INSPECTOR, org="533123101")  # entry bundles hold the whole county's: county readers only
    assert (await client.get(LOG + "tile/entries/000", headers=township)).status_code == 403
    reads = (await client.get("/v1/audit/entries", params={"action": "LedgerPayloadsRead"}, headers=auth())).json()
    assert len(reads["data"]) == 4 and {e["entry"]["actor"]["user"] for e in reads["data"]} == {"赵六"}


async def test_verify_a_household_against_a_tile_mirror_offline(
        api: Api, write: Any, ev: Any, auth: Callable[..., dict[str, str]], admin_engine: AsyncEngine,
        tmp_path: Path) -> None:
    _, client = api
    await _ledger(api, write, ev, admin_engine)
    await client.post("/v1/audit/checkpoints", headers=auth(Role.COUNTY_BUREAU))
    mirror = tmp_path / "mirror"
    await _mirror(client, mirror, auth())
    reply = await client.get("/v1/audit/bundles", params={"household": "hh-3"}, headers=auth())
    bundle = [json.loads(line) for line in reply.text.splitlines() if line.strip()]  # JSON Lines
    pinned = tmp_path / "log.vkeys"  # in real life from the county's 公示, not from the server
    pinned.write_text("\n".join(k["vkey"] for k in (await client.get(
        "/.well-known/povguard-audit/keys")).json()["keys"]) + "\n")

    def verify(lines: list[dict[str, Any]], key: Path = pinned) -> tuple[int, str]:
        path = tmp_path / "bundle.jsonl"
        path.write_text("".join(json.dumps(line) + "\n" for line in lines))
        r = CliRunner().invoke(audit_cli, ["verify", str(path), "--key", str(key), "--tiles", str(mirror)])
        return r.exit_code, r.output

    entries = [line for line in bundle if "entry" in line]
    assert bundle[0]["keys"] == pinned.read_text().split()  # the header's copy, for convenience only
    code, out = verify(bundle)
    assert code == 0, out
    assert f"all {len(entries)} entries are in the mirror's log of size {SIZE}" in out

    changed = json.loads(json.dumps(bundle))
    victim = [line for line in changed if "entry" in line][5]["entry"]
    victim["actor"]["user"] = "别人"
    for line in changed:
        line.pop("inclusion", None)  # the mirror check never reads the bundle's proofs
    code, out = verify(changed)
    assert code == 1 and f"entry {victim['index']}: its bytes do not hash to the leaf" in out

    stranger = tmp_path / "other.vkeys"
    stranger.write_text(note.Signer.from_seed("povguard.cn/audit/533123", b"\x09" * 32).vkey + "\n")
    code, out = verify(bundle, stranger)
    assert code == 1 and "its checkpoint carries no signature by the pinned keys" in out

    (mirror / "tile/0/001").write_bytes(b"\x00" * 32 + (mirror / "tile/0/001").read_bytes()[32:])  # a bad mirror
    code, out = verify(bundle)
    assert code == 1 and "tile/0/001 does not hash to its hash in the tile above: the mirror is corrupt" in out
