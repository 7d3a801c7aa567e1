from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel, Field
from sqlalchemy import text

from povguard_platform.actor import Actor, Role
from povguard_platform.api import Int64
from povguard_platform.auth import require_org, require_roles
from povguard_platform.envelope import Metadata, NewEvent, StreamRef
from povguard_platform.ids import uuid7
from povguard_platform.problems import NotFound
from povguard_platform.service import Runtime
from povguard_platform_sample.domain import fold
from povguard_platform_sample.events import SampleIncremented, SampleOpened

router = APIRouter(prefix="/v1/samples", tags=["samples"])
Writer = Annotated[Actor, Depends(require_roles(Role.COLLECTOR, Role.VILLAGE_CLERK))]
Reader = Annotated[Actor, Depends(require_roles(Role.COLLECTOR, Role.VILLAGE_CLERK, Role.INSPECTOR))]


class SampleCreate(BaseModel):
    name: str = Field(min_length=1, max_length=50)
    township: str = Field(pattern=r"^\d{9}$")


class Increment(BaseModel):
    by: int = Field(ge=1, le=1000)
    note: str = Field(default="", max_length=200)
    expected_version: int = Field(ge=1)


class SamplePublic(BaseModel):
    id: str
    name: str
    township: str
    total: int
    version: int


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="open_sample")
async def open_sample(body: SampleCreate, runtime: Runtime, actor: Writer) -> SamplePublic:
    require_org(actor, body.township)
    stream = StreamRef("sample", str(uuid7()))
    event = NewEvent(stream, body.township, SampleOpened(name=body.name, township=body.township))
    async with runtime.engine.begin() as conn:
        await runtime.store.append(conn, [event], {stream: 0}, Metadata(actor=actor))
    return SamplePublic(id=stream.id, name=body.name, township=body.township, total=0, version=1)


@router.post("/{sample_id}/increments", operation_id="increment_sample")
async def increment(sample_id: str, body: Increment, runtime: Runtime, actor: Writer) -> SamplePublic:
    stream = StreamRef("sample", sample_id)
    async with runtime.engine.begin() as conn:
        state = fold(runtime.store.decode_all(await runtime.store.load(conn, stream)))
        if state.version == 0:
            raise NotFound(f"no sample {sample_id}")
        require_org(actor, state.township)
        event = NewEvent(stream, state.township, SampleIncremented(by=body.by, note=body.note))
        await runtime.store.append(conn, [event], {stream: body.expected_version}, Metadata(actor=actor))
    return SamplePublic(id=sample_id, name=state.name, township=state.township, total=state.total + body.by,
                        version=body.expected_version + 1)


@router.get("/{sample_id}", operation_id="get_sample")
async def get_sample(
    sample_id: str, runtime: Runtime, actor: Reader,
    version: Annotated[Int64 | None, Query(ge=1)] = None, as_of: datetime | None = None,
) -> SamplePublic:
    async with runtime.engine.connect() as conn:
        events = await runtime.store.load(conn, StreamRef("sample", sample_id), to_version=version, as_of=as_of)
    if not events:
        raise NotFound(f"no sample {sample_id}")
    state = fold(runtime.store.decode_all(events))
    return SamplePublic(id=sample_id, name=state.name, township=state.township, total=state.total,
                        version=state.version)


@router.get("/{sample_id}/projection", operation_id="get_sample_projection")
async def projection(sample_id: str, runtime: Runtime, actor: Reader) -> dict[str, int]:
    async with runtime.engine.connect() as conn:
        row = (await conn.execute(text("SELECT total, applied FROM sample.totals WHERE id = :i"),
                                  {"i": sample_id})).first()
    if row is None:
        raise NotFound(f"no projection for {sample_id}")
    return {"total": row.total, "applied": row.applied}
