"""The HTTP edge every route shares, before any handler runs. A request body is bounded (413 on its Content-Length,
and on the bytes streamed so far for a chunked upload, before anything is parsed) and read only for a caller with
a valid bearer token (401). Text and integers PostgreSQL cannot store (NUL, unpaired surrogates, integers beyond
64 bits) are refused as 422 naming each field, so that they never reach the database."""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from povguard_platform.api import INT64_MAX, INT64_MIN
from povguard_platform.auth import decode_token
from povguard_platform.problems import (
    ContentTooLarge,
    FieldError,
    InvalidInput,
    Unauthorized,
    content_too_large,
    problem_response,
)
from povguard_platform.settings import Settings


class BodyGuard:
    """ASGI middleware: the body limit (uploads as multipart/form-data get `max_upload_bytes`, everything else
    `max_body_bytes`) and the bearer token checked before the first byte of a body is read."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = _content_length(headers)
        multipart = headers.get("content-type", "").lower().startswith("multipart/form-data")
        limit = self.settings.max_upload_bytes if multipart else self.settings.max_body_bytes
        request = Request(scope)
        if declared is not None and declared > limit:
            await content_too_large(request, ContentTooLarge(limit))(scope, receive, send)
            return
        if declared or "transfer-encoding" in headers:  # a body follows: only for a caller we know
            try:
                _authenticate(headers.get("authorization"), self.settings)
            except Unauthorized as exc:
                await problem_response(exc.status, exc.title, exc.kind, exc.detail, request)(scope, receive, send)
                return

        received = 0

        async def bounded() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise ContentTooLarge(limit)
            return message

        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded, watched)
        except ContentTooLarge as exc:  # read outside the routes' problem handlers
            if started:
                raise
            await content_too_large(request, exc)(scope, receive, send)


def _content_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


def _authenticate(authorization: str | None, settings: Settings) -> None:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("a bearer token is required")
    decode_token(token.strip(), settings)


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Raw JSON that may hold an unstorable string (escaped, or a surrogate encoded as bytes, which json.loads lets
# through) or an integer of 19 digits or more: only such bodies are walked.
_SUSPECT_JSON = re.compile(rb"\\u0000|\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]|[0-9]{19}")


async def storable_input(request: Request) -> None:
    """A dependency of every route: refuse text PostgreSQL cannot store and integers beyond 64 bits in the query,
    the path and the body the route parsed, naming every such field (`query.x`, `path.x`, `body.a.0.b`)."""
    errors: list[FieldError] = []
    for name, value in request.query_params.multi_items():
        _check_text(f"query.{name}", name + value, errors)
    for name, value in request.path_params.items():
        if isinstance(value, str):
            _check_text(f"path.{name}", value, errors)
    if getattr(request.scope.get("route"), "body_field", None) is not None:
        await _check_body(request, errors)
    if errors:
        raise InvalidInput(f"{len(errors)} field(s) are invalid: " + ", ".join(e.field for e in errors), errors)


async def _check_body(request: Request, errors: list[FieldError]) -> None:
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form()  # already parsed by the route, cached
        for name, value in form.multi_items():
            if isinstance(value, str):
                _check_text(f"body.{name}", name + value, errors)
        return
    if not _SUSPECT_JSON.search(await request.body()):
        return
    try:
        document = await request.json()  # already parsed by the route, cached
    except (ValueError, RecursionError):
        return  # not JSON the route parsed: its own validation says so
    _walk("body", document, errors)


def _walk(at: str, value: Any, errors: list[FieldError]) -> None:
    """Every string (keys too) and integer of a JSON document, in document order; iterative, as deep as it is."""
    stack: list[tuple[str, Any]] = [(at, value)]
    while stack:
        at, value = stack.pop()
        if isinstance(value, dict):
            for key in value:
                _check_text(f"{at}.{key}", key, errors)
            stack.extend(reversed([(f"{at}.{key}", item) for key, item in value.items()]))
        elif isinstance(value, list):
            stack.extend(reversed([(f"{at}.{index}", item) for index, item in enumerate(value)]))
        elif isinstance(value, str):
            _check_text(at, value, errors)
        elif isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
            errors.append(FieldError(field=at, message=f"must be between {INT64_MIN} and {INT64_MAX} (64 bits)",
                                     type="int_out_of_range"))


def _check_text(at: str, text: str, errors: list[FieldError]) -> None:
    found = _UNSTORABLE.search(text)
    if found is None:
        return
    if found[0] == "\x00":
        errors.append(FieldError(field=at, message="不能包含空字符 NUL（must not contain the NUL character U+0000）",
                                 type="string_nul"))
    else:
        errors.append(FieldError(field=at, message="不能包含孤立的代理字符（must not contain an unpaired surrogate; "
                                 "not valid UTF-8）", type="string_surrogate"))
