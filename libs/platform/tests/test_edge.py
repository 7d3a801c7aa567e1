"""The edge every route shares (povguard_platform.edge): request bodies are bounded and refused with 413 before
they are read, no body is read without a valid bearer token, text and integers the database cannot store are 422
naming the field, and an unexpected error leaves as problem details with a trace id and nothing of its text."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from helpers import bearer
from pydantic import ValidationError
from sqlalchemy import text

from povguard_platform.actor import Role
from povguard_platform.service import Runtime
from povguard_platform.settings import DEV_JWT_SECRET, MiB, Settings
from povguard_platform.web import create_app
from povguard_platform_sample.service import SAMPLE
from povguard_tools.testing import eventually

TOWN = "533123101"
PROBLEM = "application/problem+json"


class Upload:
    """A request body streamed in chunks (`head`, then spaces up to `size`) that counts what the server pulled."""

    def __init__(self, size: int, head: bytes = b"", chunk: int = MiB) -> None:
        self.size, self.head, self.chunk, self.sent = size, head, chunk, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.size:
            n = min(self.chunk, self.size - self.sent)
            part = self.head[self.sent:self.sent + n].ljust(n)
            self.sent += n
            yield part


async def _events(client: httpx.AsyncClient) -> int:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.engine.connect() as conn:
        count: int = (await conn.execute(text("SELECT count(*) FROM sample.events"))).scalar_one()
    return count


async def test_a_60_mb_body_is_413_before_it_is_read_with_or_without_a_token(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    size = 60 * 1000 * 1000
    for headers in ({}, bearer(settings)):
        declared = Upload(size)
        r = await client.post("/v1/samples", content=declared,
                              headers={**headers, "Content-Type": "application/json", "Content-Length": str(size)})
        assert r.status_code == 413 and r.headers["content-type"] == PROBLEM
        assert r.json()["type"].endswith("/content-too-large") and r.json()["max_bytes"] == settings.max_body_bytes
        assert declared.sent == 0  # refused on its Content-Length: not one byte pulled
    chunked = Upload(size)  # no Content-Length: counted as it streams, refused once past the limit
    r = await client.post("/v1/samples", content=chunked,
                          headers={**bearer(settings), "Content-Type": "application/json"})
    assert r.status_code == 413 and r.headers["content-type"] == PROBLEM
    assert settings.max_body_bytes < chunked.sent <= settings.max_body_bytes + chunked.chunk
    assert await _events(client) == 0


async def test_no_body_is_read_without_a_valid_token(client: httpx.AsyncClient, settings: Settings) -> None:
    other = Settings(**{**settings.model_dump(), "jwt_secret": "another-secret-that-is-at-least-32-bytes"})
    body = json.dumps({"name": "a", "township": TOWN}).encode()
    for headers in ({}, {"Authorization": "Bearer nonsense"}, bearer(other)):
        upload = Upload(len(body), body)
        r = await client.post("/v1/samples", content=upload, headers={**headers, "Content-Type": "application/json"})
        assert r.status_code == 401 and r.headers["content-type"] == PROBLEM, headers
        assert upload.sent == 0, headers
    r = await client.post("/v1/samples", content=body, headers={**bearer(settings), "Content-Type": "application/json"})
    assert r.status_code == 201


@pytest.fixture
async def small_limits(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    limited = Settings(**{**settings.model_dump(), "max_body_bytes": 1000, "max_upload_bytes": 5000})
    app = create_app(SAMPLE, limited)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://s") as c:
        yield c


async def test_the_limits_come_from_settings_and_uploads_have_their_own(
    small_limits: httpx.AsyncClient, settings: Settings
) -> None:
    h = {**bearer(settings), "Content-Type": "application/json"}
    fits = json.dumps({"name": "a" * 40, "township": TOWN}).encode().ljust(1000)
    assert (await small_limits.post("/v1/samples", content=fits, headers=h)).status_code == 201
    over = await small_limits.post("/v1/samples", content=fits + b" ", headers=h)
    assert over.status_code == 413 and over.json()["max_bytes"] == 1000
    token = bearer(settings)
    upload = await small_limits.post("/v1/samples", files={"file": ("a.xlsx", b"x" * 3000)}, headers=token)
    assert upload.status_code == 422  # past the JSON limit, within the upload limit: the route itself answers
    upload = await small_limits.post("/v1/samples", files={"file": ("a.xlsx", b"x" * 6000)}, headers=token)
    assert upload.status_code == 413 and upload.json()["max_bytes"] == 5000


async def test_a_real_server_answers_413_while_the_client_is_still_sending(settings: Settings) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(SAMPLE, settings), host="127.0.0.1", port=port,
                                           log_config=None, access_log=False))
    serving = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /v1/samples HTTP/1.1\r\nHost: sample\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 60000000\r\n\r\n" + b" " * 65536)  # 64 KiB of the 60 MB sent so far
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 413 ") and b"content-type: application/problem+json" in head.lower()
        writer.close()
    finally:
        server.should_exit = True
        await serving


async def test_nul_and_integers_beyond_64_bits_are_422_naming_the_field(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    h = bearer(settings)
    r = await client.post("/v1/samples", json={"name": "a\x00b", "township": TOWN}, headers=h)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert [e["field"] for e in r.json()["errors"]] == ["body.name"]
    raw = b'{"by": 1, "expected_version": 18446744073709551616, "note": "\\ud800"}'  # a lone surrogate
    r = await client.post("/v1/samples/x%00y/increments", content=raw,
                          headers={**h, "Content-Type": "application/json"})
    assert {(e["field"], e["type"]) for e in r.json()["errors"]} == {
        ("path.sample_id", "string_nul"), ("body.expected_version", "int_out_of_range"),
        ("body.note", "string_surrogate")}
    raw = json.dumps({"name": "a\ud800", "township": TOWN}, ensure_ascii=False).encode("utf-8", "surrogatepass")
    r = await client.post("/v1/samples", content=raw, headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["body.name"]  # not UTF-8 either
    r = await client.get("/v1/samples/x", params={"version": str(2**64)}, headers=h)
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["query.version"]
    r = await client.get("/v1/samples/x", params={"version": str(2**40)}, headers=h)  # 64 bits, not 32: found
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    r = await client.get("/v1/samples/x", params={"as_of": "2022-05-01\x00"}, headers=h)
    assert r.status_code == 422 and [(e["field"], e["type"]) for e in r.json()["errors"]] == [
        ("query.as_of", "string_nul")]
    r = await client.get("/v1/ops/dead-letters", params={"after": str(2**64)}, headers=bearer(settings, Role.ADMIN))
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["query.after"]
    assert await _events(client) == 0


async def test_an_unexpected_error_is_500_problem_details_with_a_trace_id_and_none_of_its_text(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(SAMPLE, settings)

    async def leaky(runtime: Runtime) -> dict[str, Any]:  # a route that lets unstorable text reach PostgreSQL
        async with runtime.engine.connect() as conn:
            await conn.execute(text("SELECT CAST(:t AS text)"), {"t": "身份证 533123197503090011 \x00"})
        return {}

    app.add_api_route("/v1/leaky", leaky)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://s") as c:
        with caplog.at_level(logging.ERROR):
            r = await c.get("/v1/leaky")
    assert r.status_code == 500 and r.headers["content-type"] == PROBLEM
    problem = r.json()
    assert re.fullmatch(r"[0-9a-f]{32}", problem["trace_id"]) and problem["trace_id"] in problem["detail"]
    assert "533123197503090011" not in r.text and "0x00" not in r.text and "UTF8" not in r.text
    logged = [rec for rec in caplog.records if problem["trace_id"] in rec.getMessage()]
    assert logged and logged[0].exc_info is not None  # the operator finds the traceback by the trace id


def test_production_refuses_a_jwt_secret_shorter_than_32_bytes() -> None:
    for weak in ("x", "a" * 31, "密" * 10, DEV_JWT_SECRET):  # 密 is 3 bytes: 30 bytes in all
        with pytest.raises(ValidationError, match="JWT_SECRET") as refused:
            Settings(environment="production", jwt_secret=weak)
        assert weak not in str(refused.value)  # the secret never reaches a log
    assert Settings(environment="production", jwt_secret="a" * 32).environment == "production"
    assert Settings(environment="production", jwt_secret="密" * 11).environment == "production"  # 33 bytes
    assert Settings(environment="development", jwt_secret="x").environment == "development"


def test_a_service_with_a_weak_secret_does_not_start() -> None:
    env = {"ENVIRONMENT": "production", "JWT_SECRET": "x", "PATH": "/usr/bin:/bin"}
    started = subprocess.run([sys.executable, "-m", "povguard_platform.serve", "intake", "--port", "1"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert started.returncode == 1
    assert "JWT_SECRET is 1 bytes" in started.stderr and "RFC 7518" in started.stderr
