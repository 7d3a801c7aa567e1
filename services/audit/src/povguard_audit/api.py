"""The audit API under /v1/audit: checkpoints, proofs, public keys, inspection queries (each entry with its
inclusion proof), household timelines, bundles, witness cosignatures, re-checks and findings. Inspectors
(纪检监察) read everything in their org unit and change nothing.

Reach: entries, timelines, disputes, bundles and findings are limited to the reader's org unit (an entry belongs
to its event's township); what concerns the county's whole ledger (signing, re-checks, witnesses, whole or time-range
bundles) needs an actor of the county. Checkpoints, proofs and public keys are hashes and signatures only, meant to
be checked by anyone holding a token (a transparency log's witnesses included). What an outsider needs comes without
a token: the verifier keys (`/.well-known/povguard-audit/keys`), and the log as C2SP tlog-tiles under
`/v1/audit/log/` (the checkpoint and the hash tiles; entry bundles name who acted on which household, so they need
a ledger reader of the county). Every read that returns stored events or entries unmasked is entered in the ledger
(`access.record_read`). The leaf encoding and the hashes' base64: service.py (the OpenAPI description)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from povguard_audit import access, bundle, checkpoints, dispute, keys, ledger, note, recheck, tiles
from povguard_audit.settings import audit_settings
from povguard_platform.actor import Actor, Role
from povguard_platform.api import Int64
from povguard_platform.auth import CurrentActor, org_prefix, require_org, require_roles
from povguard_platform.problems import Conflict, InvalidInput, NotFound, ProblemError
from povguard_platform.service import Runtime

Reader = Annotated[Actor, Depends(require_roles(Role.INSPECTOR, Role.COUNTY_BUREAU))]
Operator = Annotated[Actor, Depends(require_roles(Role.COUNTY_BUREAU))]
Admin = Annotated[Actor, Depends(require_roles())]
Purpose = Annotated[str, Query(min_length=1, max_length=100, description="why the stored events are read (recorded)")]


def _county() -> str:
    return audit_settings().county


def _scope(actor: Actor) -> dict[str, str]:
    """Parameters of `ledger.org_unit()` LIKE :prefix: the entries in the actor's org unit."""
    return {"county": _county(), "prefix": org_prefix(actor) + "%"}


async def _household_in_scope(conn: Any, actor: Actor, household: str) -> str:
    """The household's org unit, once the actor may read it (404 when the ledger has nothing on it)."""
    place = await access.household_place(conn, household, _county())
    if place is None:
        raise NotFound(f"no ledger entries for household {household}")
    require_org(actor, place)
    return place


def _b64(items: list[bytes]) -> list[str]:
    return [base64.b64encode(x).decode() for x in items]


def b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


LEAF_ENCODING = ("leaf = SHA-256(0x00 ‖ RFC 8785 canonical JSON of the entry object); node = SHA-256(0x01 ‖ left ‖ "
                 "right) (RFC 9162 §2.1); standard padded base64")


class SigningRefused(ProblemError):
    status, kind, title = 503, "signing-key-refused", "No usable signing key"


class CheckpointPublic(BaseModel):
    id: int
    origin: str
    tree_size: int
    root_hash: str = Field(description="base64, as in the checkpoint")
    signed_at: datetime
    note: str = Field(description="the C2SP signed note (checkpoint body, blank line, signature lines)")
    cosignatures: list[str]


def _checkpoint(c: checkpoints.StoredCheckpoint) -> CheckpointPublic:
    return CheckpointPublic(id=c.id, origin=c.origin, tree_size=c.tree_size,
                            root_hash=base64.b64encode(c.root).decode(), signed_at=c.signed_at, note=c.note,
                            cosignatures=c.cosignatures)


class InclusionProof(BaseModel):
    leaf_index: int
    tree_size: int
    leaf_hash: str = Field(description=LEAF_ENCODING)
    root_hash: str = Field(description="base64, as in the checkpoint")
    proof: list[str] = Field(description="RFC 9162 inclusion path, deepest sibling first, each base64")


class ConsistencyProof(BaseModel):
    first: int
    second: int
    first_root: str
    second_root: str
    proof: list[str]


class PublicKey(BaseModel):
    vkey: str = Field(description="C2SP note verifier key: name+keyid+base64(0x01‖Ed25519 public key)")
    active: bool = Field(description="signs new checkpoints; false: a previous key, still verifies what it signed")
    created_at: datetime | None = Field(description="first recorded; null for a configured key not yet used")
    retired_at: datetime | None


class PublishedKeys(BaseModel):
    origin: str = Field(description="the checkpoints' origin line")
    log: str = Field(description="the C2SP tlog-tiles prefix (checkpoint, tile/...) on this server")
    keys: list[PublicKey] = Field(description="current keys first, then previous ones; pin them out of band")


def _keys(found: list[checkpoints.PublishedKey]) -> list[PublicKey]:
    return [PublicKey(vkey=k.vkey, active=k.active, created_at=k.created_at, retired_at=k.retired_at)
            for k in found]


class EntryPublic(BaseModel):
    entry: dict[str, Any] = Field(description="the entry as hashed: RFC 8785 canonical JSON of this object is the "
                                              "leaf data (its hashes inside are hex, as hashed)")
    leaf_hash: str = Field(description=LEAF_ENCODING)
    inclusion: InclusionProof | None = Field(description="against the latest checkpoint; null until one covers it")


class EntriesPublic(BaseModel):
    data: list[EntryPublic]
    next_cursor: str | None
    checkpoint: CheckpointPublic | None


class TimelineItem(BaseModel):
    entry: EntryPublic
    event: dict[str, Any] | None = Field(description="the stored event; null once personal data was redacted")


class Timeline(BaseModel):
    household: str
    as_of: datetime | None
    items: list[TimelineItem]
    state: dict[str, Any] = Field(description="the household's facts as of `as_of`, replayed from its events "
                                              "(latest value of each payload field)")


class Dispute(BaseModel):
    household: str
    as_of: datetime
    state: dict[str, Any] = Field(description="latest value of each payload field of the household's events")
    facts: dict[str, Any] = Field(description="the household's facts as assessment folds them, as of `as_of`")
    policy: dict[str, Any] = Field(description="policy version recorded on the events and the one applied")
    recomputed: dict[str, Any] | None = Field(description="income, risk, proposal as assessment computes them "
                                                          "from those facts; null before registration")
    recorded: dict[str, Any] = Field(description="IncomeAssessed, OutcomeProposed and CountyDecided recorded up "
                                                 "to `as_of`, each with its ledger entry")
    comparison: dict[str, Any]


class Cosignature(BaseModel):
    line: str = Field(description="a C2SP cosignature/v1 line: '— <witness> <base64>'")


class Witness(BaseModel):
    vkey: str


class RecheckPublic(BaseModel):
    tree_size: int
    ok: bool
    first_bad_index: int | None
    kind: str | None
    detail: str


class FindingPublic(BaseModel):
    id: int
    kind: str
    household: str | None
    actor: str | None
    evidence: dict[str, Any]
    found_at: datetime


checkpoint_router = APIRouter(prefix="/v1/audit/checkpoints", tags=["checkpoints"])
proof_router = APIRouter(prefix="/v1/audit/proofs", tags=["proofs"])
keys_router = APIRouter(prefix="/v1/audit/keys", tags=["keys"])
entries_router = APIRouter(prefix="/v1/audit/entries", tags=["entries"])
households_router = APIRouter(prefix="/v1/audit/households", tags=["households"])
bundles_router = APIRouter(prefix="/v1/audit/bundles", tags=["bundles"])
witness_router = APIRouter(prefix="/v1/audit/witnesses", tags=["witnesses"])
ops_router = APIRouter(prefix="/v1/audit", tags=["integrity"])


@checkpoint_router.get("/latest", operation_id="get_latest_checkpoint")
async def latest_checkpoint(runtime: Runtime, actor: CurrentActor) -> CheckpointPublic:
    async with runtime.engine.connect() as conn:
        c = await checkpoints.latest(conn)
    if c is None:
        raise NotFound("no checkpoint has been signed yet")
    return _checkpoint(c)


@checkpoint_router.post("", operation_id="sign_checkpoint", status_code=status.HTTP_201_CREATED)
async def sign_checkpoint(runtime: Runtime, actor: Operator) -> CheckpointPublic:
    """Sign a checkpoint of the ledger now (after checking consistency with the previous one)."""
    require_org(actor, _county())
    try:
        async with runtime.engine.begin() as conn:
            c = await checkpoints.sign(conn, audit_settings())
    except checkpoints.InconsistentLedger as exc:
        raise Conflict(f"refused to sign: {exc}") from exc
    except keys.NoSigningKey as exc:
        raise SigningRefused(str(exc)) from exc
    if c is None:
        raise Conflict("the ledger is empty")
    return _checkpoint(c)


@checkpoint_router.post("/{checkpoint_id}/cosignatures", operation_id="add_cosignature",
                        status_code=status.HTTP_201_CREATED)
async def add_cosignature(checkpoint_id: Int64, body: Cosignature, runtime: Runtime, actor: CurrentActor
                          ) -> CheckpointPublic:
    """Collect a witness's cosignature; it is checked against the registered witness keys."""
    try:
        async with runtime.engine.begin() as conn:
            await checkpoints.add_cosignature(conn, checkpoint_id, body.line)
    except LookupError as exc:
        raise NotFound(str(exc)) from exc
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    async with runtime.engine.connect() as conn:
        row = (await conn.execute(text("SELECT tree_size FROM audit.checkpoints WHERE id = :i"),
                                  {"i": checkpoint_id})).scalar_one()
        c = await checkpoints.at_size(conn, int(row))
    assert c is not None
    return _checkpoint(c)


@proof_router.get("/inclusion", operation_id="get_inclusion_proof")
async def inclusion_proof(runtime: Runtime, actor: CurrentActor, index: Annotated[Int64, Query(ge=0)],
                          tree_size: Annotated[Int64 | None, Query(ge=1)] = None) -> InclusionProof:
    async with runtime.engine.connect() as conn:
        size = tree_size or await _latest_size(conn)
        if index >= size or size > await ledger.size(conn):
            raise InvalidInput(f"no entry {index} in a tree of size {size}")
        [proof] = await ledger.inclusion_proofs(conn, [index], size)
        leaf = (await ledger.nodes(conn, [(0, index)]))[(0, index)]
        root = await ledger.root_at(conn, size)
    return InclusionProof(leaf_index=index, tree_size=size, leaf_hash=b64(leaf),
                          root_hash=base64.b64encode(root).decode(), proof=_b64(proof))


@proof_router.get("/consistency", operation_id="get_consistency_proof")
async def consistency_proof(runtime: Runtime, actor: CurrentActor, first: Annotated[Int64, Query(ge=1)],
                            second: Annotated[Int64, Query(ge=1)]) -> ConsistencyProof:
    async with runtime.engine.connect() as conn:
        if first > second or second > await ledger.size(conn):
            raise InvalidInput(f"no consistency proof from {first} to {second}")
        proof = await ledger.consistency_proof(conn, first, second)
        r1, r2 = await ledger.root_at(conn, first), await ledger.root_at(conn, second)
    return ConsistencyProof(first=first, second=second, first_root=base64.b64encode(r1).decode(),
                            second_root=base64.b64encode(r2).decode(), proof=_b64(proof))


@keys_router.get("", operation_id="list_public_keys")
async def public_keys(runtime: Runtime, actor: CurrentActor) -> list[PublicKey]:
    """Every log key, current and previous: old checkpoints stay verifiable. The same as the public
    `/.well-known/povguard-audit/keys`, for API clients that hold a token anyway."""
    async with runtime.engine.connect() as conn:
        return _keys(await checkpoints.published_keys(conn, audit_settings()))


async def _latest_size(conn: Any) -> int:
    c = await checkpoints.latest(conn)
    if c is None:
        raise NotFound("no checkpoint has been signed yet")
    return int(c.tree_size)


async def _with_proofs(conn: Any, stored: list[ledger.StoredEntry]) -> tuple[list[EntryPublic],
                                                                             checkpoints.StoredCheckpoint | None]:
    head = await checkpoints.latest(conn)
    covered = [s for s in stored if head is not None and s.entry.index < head.tree_size]
    proofs: dict[int, InclusionProof] = {}
    if head is not None and covered:
        root = base64.b64encode(head.root).decode()
        for s, p in zip(covered, await ledger.inclusion_proofs(conn, [s.entry.index for s in covered],
                                                                head.tree_size), strict=True):
            proofs[s.entry.index] = InclusionProof(leaf_index=s.entry.index, tree_size=head.tree_size,
                                                   leaf_hash=b64(s.leaf_hash), root_hash=root, proof=_b64(p))
    return [EntryPublic(entry=s.entry.as_json(), leaf_hash=b64(s.leaf_hash), inclusion=proofs.get(s.entry.index))
            for s in stored], head


@entries_router.get("", operation_id="list_entries")
async def list_entries(
    runtime: Runtime, actor: Reader,
    household: str | None = None, actor_user: Annotated[str | None, Query(alias="actor")] = None,
    action: str | None = None, org: Annotated[str | None, Query(description="org unit prefix")] = None,
    since: datetime | None = None, until: datetime | None = None,
    cursor: Annotated[Int64 | None, Query(ge=0)] = None, limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> EntriesPublic:
    """Entries by household, actor, action type, org unit and recording time, oldest first, each with its
    inclusion proof against the latest checkpoint; only entries in the reader's org unit."""
    async with runtime.engine.connect() as conn:
        rows = await conn.execute(
            text(f"""SELECT {ledger.ENTRY_COLUMNS} FROM audit.ledger
                     WHERE idx > :after AND (CAST(:h AS text) IS NULL OR household = :h)
                       AND (CAST(:u AS text) IS NULL OR actor_user = :u)
                       AND (CAST(:a AS text) IS NULL OR action = :a)
                       AND (CAST(:o AS text) IS NULL OR actor_org LIKE :o || '%')
                       AND (CAST(:since AS timestamptz) IS NULL OR recorded_at >= :since)
                       AND (CAST(:until AS timestamptz) IS NULL OR recorded_at < :until)
                       AND {ledger.org_unit()} LIKE :prefix
                     ORDER BY idx LIMIT :n"""),
            {"after": -1 if cursor is None else cursor, "h": household, "u": actor_user, "a": action, "o": org,
             "since": since, "until": until, "n": limit + 1, **_scope(actor)})
        stored = [ledger.entry_from_row(r) for r in rows]
        page, more = stored[:limit], len(stored) > limit
        data, head = await _with_proofs(conn, page)
    return EntriesPublic(data=data, next_cursor=str(page[-1].entry.index) if more else None,
                         checkpoint=None if head is None else _checkpoint(head))


@entries_router.post("/{index}/redaction", operation_id="redact_entry_payload", status_code=status.HTTP_200_OK)
async def redact(index: Int64, runtime: Runtime, actor: Admin,
                 reason: Annotated[str, Query(min_length=1, max_length=500)]) -> dict[str, Any]:
    """Remove an entry's stored event (personal data). The entry keeps the payload hash: every proof still holds."""
    async with runtime.engine.begin() as conn:
        place = (await conn.execute(text(f"SELECT {ledger.org_unit()} FROM audit.ledger WHERE idx = :i"),
                                    {"i": index, "county": _county()})).scalar_one_or_none()
        if place is None:
            raise NotFound(f"no entry {index}")
        require_org(actor, place)
        if not await ledger.redact(conn, index, reason):
            raise NotFound(f"no unredacted payload for entry {index}")
    return {"index": index, "redacted": True}


@households_router.get("/{household_id}/timeline", operation_id="get_household_timeline")
async def household_timeline(household_id: str, runtime: Runtime, actor: Reader,
                             as_of: datetime | None = None, purpose: Purpose = "核查") -> Timeline:
    """The household's history across all services from the ledger's stored events, each entry with its proof,
    and its state as of a past time replayed from those events (see `/dispute` for the recomputed assessment).
    The events are shown as stored, personal data included: the read is entered in the ledger."""
    async with runtime.engine.connect() as conn:
        place = await _household_in_scope(conn, actor, household_id)
        rows = (await conn.execute(
            text(f"""SELECT {', '.join('l.' + c.strip() for c in ledger.ENTRY_COLUMNS.split(','))}, p.body
                     FROM audit.ledger l LEFT JOIN audit.payloads p USING (idx)
                     WHERE l.household = :h AND (CAST(:at AS timestamptz) IS NULL OR l.event_time <= :at)
                     ORDER BY l.idx"""), {"h": household_id, "at": as_of})).all()
        if not rows:
            raise NotFound(f"no ledger entries for household {household_id}")
        data, _ = await _with_proofs(conn, [ledger.entry_from_row(r) for r in rows])
    items: list[TimelineItem] = []
    state: dict[str, Any] = {}
    for entry, row in zip(data, rows, strict=True):
        event = None if row.body is None else json.loads(bytes(row.body))
        if event is not None:
            state.update(event.get("data") or {})
        items.append(TimelineItem(entry=entry, event=event))
    async with runtime.engine.begin() as conn:
        await access.record_read(conn, actor, household=household_id, view="timeline", entries=len(items),
                                 purpose=purpose, township=place)
    return Timeline(household=household_id, as_of=as_of, items=items, state=state)


@households_router.get("/{household_id}/dispute", operation_id="replay_household_dispute")
async def household_dispute(household_id: str, runtime: Runtime, actor: Reader, as_of: datetime,
                            purpose: Purpose = "争议复核") -> Dispute:
    """Dispute replay: the household as of `as_of` from the ledger's stored events (event time ≤ as_of), the
    assessment recomputed from those facts under the policy version recorded on the events, and the proposals and
    county decisions actually recorded up to then, side by side. Redacted payloads are left out of the replay."""
    async with runtime.engine.connect() as conn:
        place = await _household_in_scope(conn, actor, household_id)
        rows = (await conn.execute(
            text("""SELECT l.idx, p.body FROM audit.ledger l LEFT JOIN audit.payloads p USING (idx)
                    WHERE l.household = :h AND l.event_time <= :at ORDER BY l.idx"""),
            {"h": household_id, "at": as_of})).all()
    if not rows:
        raise NotFound(f"no ledger entries for household {household_id} as of {as_of.isoformat()}")
    events = [dispute.StoredEvent(int(r[0]), json.loads(bytes(r[1]))) for r in rows if r[1] is not None]
    found = dispute.replay(household_id, events, runtime.settings.campaign)
    async with runtime.engine.begin() as conn:
        await access.record_read(conn, actor, household=household_id, view="dispute", entries=len(events),
                                 purpose=purpose, township=place)
    return Dispute(household=household_id, as_of=as_of, **found)


@bundles_router.get("", operation_id="export_bundle", response_class=StreamingResponse,
                    responses={200: {"content": {"application/x-ndjson": {}},
                                     "description": "the bundle as JSON Lines (`povguard_audit/bundle.py`)"}})
async def export_bundle(runtime: Runtime, actor: Reader, household: str | None = None,
                        since: datetime | None = None, until: datetime | None = None,
                        payloads: bool = False, purpose: Purpose = "核查") -> StreamingResponse:
    """A bundle for `povguard audit verify`, streamed as JSON Lines: a household (in the reader's org unit), a time
    range, or (without either) the whole ledger (these two: an actor of the county). With `payloads` the stored
    events come along as stored, personal data included: the read is entered in the ledger before it starts."""
    async with runtime.engine.connect() as conn:
        place = await _household_in_scope(conn, actor, household) if household is not None else _county()
        if household is None:
            require_org(actor, place)
    conn = await runtime.engine.connect()
    lines = bundle.export(conn, household=household, since=since, until=until, include_payloads=payloads)
    try:
        header = await anext(lines)
        if payloads:
            async with runtime.engine.begin() as rec:
                n = await bundle.payload_count(rec, header["tree_size"], household=household, since=since,
                                               until=until)
                await access.record_read(rec, actor, household=household, view="bundle", entries=n,
                                         purpose=purpose, township=place)
    except bundle.NothingSigned as exc:
        await conn.close()
        raise NotFound(str(exc)) from exc
    except BaseException:
        await conn.close()
        raise

    async def body() -> AsyncIterator[bytes]:
        try:
            chunk = [json.dumps(header, ensure_ascii=False)]
            async for line in lines:  # sent a chunk of lines at a time: each send crosses every middleware
                chunk.append(json.dumps(line, ensure_ascii=False))
                if len(chunk) >= bundle.CHUNK:
                    yield ("\n".join(chunk) + "\n").encode()
                    chunk = []
            if chunk:
                yield ("\n".join(chunk) + "\n").encode()
        finally:
            await lines.aclose()
            await conn.close()

    return StreamingResponse(body(), media_type="application/x-ndjson")


@witness_router.post("", operation_id="register_witness", status_code=status.HTTP_201_CREATED)
async def register_witness(body: Witness, runtime: Runtime, actor: Admin) -> dict[str, str]:
    require_org(actor, _county())
    try:
        v = note.Verifier.from_vkey(body.vkey)
    except note.NoteError as exc:
        raise InvalidInput(str(exc)) from exc
    if v.alg != note.ALG_COSIGNATURE_V1:
        raise InvalidInput("a witness key is a cosignature/v1 key (alg 0x04)")
    async with runtime.engine.begin() as conn:
        await conn.execute(text("INSERT INTO audit.witnesses (name, vkey) VALUES (:n, :v) ON CONFLICT DO NOTHING"),
                           {"n": v.name, "v": body.vkey})
    return {"name": v.name, "vkey": body.vkey}


@witness_router.get("", operation_id="list_witnesses")
async def list_witnesses(runtime: Runtime, actor: CurrentActor) -> list[Witness]:
    async with runtime.engine.connect() as conn:
        return [Witness(vkey=v) for v in (await conn.execute(
            text("SELECT vkey FROM audit.witnesses ORDER BY name"))).scalars()]


@ops_router.post("/rechecks", operation_id="run_recheck")
async def run_recheck(runtime: Runtime, actor: Operator) -> RecheckPublic:
    """Re-hash every stored payload and entry and rebuild the tree against every signed checkpoint."""
    require_org(actor, _county())
    r = await recheck.recheck(runtime.engine, audit_settings())
    return RecheckPublic(tree_size=r.tree_size, ok=r.ok, first_bad_index=r.first_bad_index, kind=r.kind,
                         detail=r.detail)


@ops_router.get("/findings", operation_id="list_findings")
async def list_findings(runtime: Runtime, actor: Reader, kind: str | None = None,
                        cursor: Annotated[Int64 | None, Query(ge=0)] = None,
                        limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    """Anomaly findings in the reader's org unit: a household's where its entries are, one without a household
    (a person's burst of edits) the county's."""
    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(text(f"""
            SELECT f.id, f.kind, f.household, f.actor_user, f.evidence, f.found_at FROM audit.findings f
            WHERE f.id > :after AND (CAST(:k AS text) IS NULL OR f.kind = :k)
              AND coalesce((SELECT {ledger.org_unit("l")} FROM audit.ledger l WHERE l.household = f.household
                            ORDER BY l.idx DESC LIMIT 1), CAST(:county AS text)) LIKE :prefix
            ORDER BY f.id LIMIT :n"""),
            {"after": 0 if cursor is None else cursor, "k": kind, "n": limit + 1, **_scope(actor)})).all()
    page = rows[:limit]
    return {"data": [FindingPublic(id=r[0], kind=r[1], household=r[2], actor=r[3], evidence=r[4], found_at=r[5])
                     for r in page],
            "next_cursor": str(page[-1][0]) if len(rows) > limit else None}


# -- public: what an outsider needs, without a token ----------------------------------------------------------------

wellknown_router = APIRouter(prefix="/.well-known/povguard-audit", tags=["public"])
log_router = APIRouter(prefix="/v1/audit/log", tags=["public"])
LOG_PREFIX = "/v1/audit/log/"
IMMUTABLE = "max-age=31536000, immutable"  # a full tile never changes (its nodes are perfect)
SHORT = "max-age=10"  # the checkpoint and partial tiles: the next checkpoint supersedes them
OCTETS: dict[int | str, dict[str, Any]] = {200: {"content": {"application/octet-stream": {}}}}


@wellknown_router.get("/keys", operation_id="get_published_keys")
async def published_keys(runtime: Runtime, response: Response) -> PublishedKeys:
    """The log's verifier keys (C2SP signed-note vkeys), current and previous, without a token. A verifier must not
    trust this answer alone (the server that signs also serves it): pin the keys out of band (README, 公示)."""
    async with runtime.engine.connect() as conn:
        found = await checkpoints.published_keys(conn, audit_settings())
    response.headers["Cache-Control"] = "public, max-age=300"
    return PublishedKeys(origin=audit_settings().origin, log=LOG_PREFIX, keys=_keys(found))


async def _signed_size(conn: Any) -> int:
    c = await checkpoints.latest(conn)
    return 0 if c is None else int(c.tree_size)


@log_router.get("/checkpoint", operation_id="get_log_checkpoint",
                responses={200: {"content": {"text/plain": {}}}}, response_class=Response)
async def log_checkpoint(runtime: Runtime) -> Response:
    """The latest signed checkpoint (C2SP tlog-checkpoint: origin, tree size, base64 root hash, then the log's
    signatures and any witness cosignatures), without a token: sizes and roots only."""
    async with runtime.engine.connect() as conn:
        c = await checkpoints.latest(conn)
    if c is None:
        raise NotFound("no checkpoint has been signed yet")
    return Response("".join([c.note, *c.cosignatures]), media_type="text/plain; charset=utf-8",
                    headers={"Cache-Control": f"public, {SHORT}"})


def _tile_ref(level: str, index: str) -> tiles.TileRef:
    try:
        return tiles.parse(level, index)
    except tiles.TileError as exc:
        raise NotFound(str(exc)) from exc


def _servable(ref: tiles.TileRef, size: int) -> None:
    if tiles.available(ref.level, ref.index, size) < ref.width:
        raise NotFound(f"the signed tree (size {size}) has no {ref.path}")


@log_router.get("/tile/entries/{index:path}", operation_id="get_entry_bundle", responses=OCTETS,
                response_class=Response)
async def entry_bundle(index: str, runtime: Runtime, actor: Reader, purpose: Purpose = "镜像核查") -> Response:
    """Entry bundle N (tlog-tiles): the leaf data of level-0 tile N, each a big-endian uint16 length and the entry's
    RFC 8785 bytes. Entries name who acted on which household: a ledger reader of the county only, and the read
    is entered in the ledger."""
    require_org(actor, _county())
    ref = _tile_ref("entries", index)
    async with runtime.engine.begin() as conn:
        _servable(ref, await _signed_size(conn))
        first = ref.index * tiles.WIDTH
        rows = await conn.execute(text(f"SELECT {ledger.ENTRY_COLUMNS} FROM audit.ledger "
                                       "WHERE idx >= :a AND idx < :b ORDER BY idx"),
                                  {"a": first, "b": first + ref.width})
        body = tiles.bundle_entries([ledger.entry_from_row(r).entry.canonical() for r in rows])
        await access.record_read(conn, actor, household=None, view="entry-bundle", entries=ref.width,
                                 purpose=purpose, township=_county())
    return Response(body, media_type="application/octet-stream",
                    headers={"Cache-Control": f"private, {IMMUTABLE if ref.full else SHORT}"})


@log_router.get("/tile/{level}/{index:path}", operation_id="get_hash_tile", responses=OCTETS,
                response_class=Response)
async def hash_tile(level: str, index: str, runtime: Runtime) -> Response:
    """Hash tile `<L>/<N>[.p/<W>]` (tlog-tiles), without a token: up to 256 concatenated 32-byte hashes at tree
    height 8·L (level 0: leaf hashes), read from the ledger's stored perfect nodes, within the latest checkpoint.
    Full tiles are immutable; a partial tile is the first W hashes of its full tile."""
    ref = _tile_ref(level, index)
    async with runtime.engine.connect() as conn:
        _servable(ref, await _signed_size(conn))
        wanted = tiles.coords(ref)
        found = await ledger.nodes(conn, wanted)
    return Response(b"".join(found[c] for c in wanted), media_type="application/octet-stream",
                    headers={"Cache-Control": f"public, {IMMUTABLE if ref.full else SHORT}"})


def routers() -> list[APIRouter]:
    return [checkpoint_router, proof_router, keys_router, entries_router, households_router, bundles_router,
            witness_router, ops_router, wellknown_router, log_router]
