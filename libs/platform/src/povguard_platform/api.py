"""Helpers every service's routes share: integers the database can hold, optimistic concurrency over HTTP
(ETag = the aggregate's version, If-Match = the version the client saw), keyset cursors over more than one
column, and a JSON response serialised once."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any

from annotated_types import Interval
from fastapi import Depends, Header, Request, Response
from pydantic_core import to_json

from povguard_platform.problems import FieldError, InvalidInput, ProblemError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# The type of every integer a route takes from its path, query or headers (ids, cursors, versions, limits): what
# PostgreSQL's bigint holds, so that a larger one is a 422 naming the parameter, never a database error. Narrow it
# further where it is used: `Annotated[Int64, Query(ge=0)]`.
Int64 = Annotated[int, Interval(ge=INT64_MIN, le=INT64_MAX)]

_ETAG = re.compile(r'(?:W/)?"?([0-9]{1,19})"?')


class PreconditionRequired(ProblemError):
    status, kind, title = 428, "precondition-required", "Precondition required"


async def expected_version(
    request: Request,
    if_match: Annotated[str | None, Header(description='the ETag of the version you saw ("3"), or * for any '
                                                       "version; a stale one gets 412 (RFC 9110 §13.1.1)")] = None,
) -> int | None:
    """The version the client saw (If-Match), or None for none or `*` (any current version: the route still needs
    the resource to exist). A stale one fails the append with a ConcurrencyError, which the edge answers with 412
    because the request carried the precondition (see `problems.install_problem_handlers`)."""
    if if_match is None or if_match.strip() == "*":
        return None
    found = _ETAG.fullmatch(if_match.strip())
    if found is None or int(found[1]) > INT64_MAX:
        raise InvalidInput('If-Match must be the ETag of a version, e.g. "3", or *',
                           [FieldError(field="header.if-match", message='not the ETag of a version, e.g. "3"',
                                       type="etag")])
    request.state.if_match = True
    return int(found[1])


async def required_version(request: Request, if_match: Annotated[str | None, Header(
        description='required: the ETag of the version you saw ("3"), or * for any version')] = None) -> int | None:
    """For changes that must not be made blind (a member's facts, a removal): no If-Match is 428 (RFC 6585 §3)."""
    if if_match is None:
        raise PreconditionRequired("此操作须带 If-Match（您看到的版本 ETag，或 *）：防止覆盖他人刚做的修改"
                                   "（If-Match is required: the ETag of the version you saw, or *)",
                                   [FieldError(field="header.if-match", message="required", type="missing")])
    return await expected_version(request, if_match)


ExpectedVersion = Annotated[int | None, Depends(expected_version)]
RequiredVersion = Annotated[int | None, Depends(required_version)]


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


def cursor_of(*key: str) -> str:
    """An opaque cursor for a keyset page ordered by several columns: the last row's sort key."""
    return base64.urlsafe_b64encode(json.dumps(key, ensure_ascii=False).encode()).decode().rstrip("=")


def cursor_key(cursor: str | None, width: int) -> tuple[str, ...] | None:
    """The sort key a `cursor_of` cursor holds (None for the first page); anything else is 422 naming the cursor."""
    if cursor is None:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        key = None
    if not (isinstance(key, list) and len(key) == width and all(isinstance(k, str) and "\x00" not in k for k in key)):
        raise InvalidInput("cursor must be the next_cursor of the previous page",
                           [FieldError(field="query.cursor", message="not a cursor of this list", type="cursor")])
    return tuple(key)


def json_response(content: Any, headers: Mapping[str, str] | None = None) -> Response:
    """JSON values (already what the route's response model would give) serialised once, in Rust. A route that
    returns a model has FastAPI validate it against its response model, dump it to Python and then to JSON: on a
    hot read that work is most of the request. Declare the model with `response_model=` so the API documents it."""
    return Response(to_json(content), media_type="application/json", headers=headers)
