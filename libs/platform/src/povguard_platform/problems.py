"""RFC 9457 problem details: every error leaves as application/problem+json, and invalid input names every bad
field (pydantic's full error list, not the first one)."""

from __future__ import annotations

import errno
import logging
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry import trace
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://povguard.cn/problems/"

log = logging.getLogger(__name__)


class FieldError(BaseModel):
    field: str  # dotted path in the request, e.g. body.members.0.id_number
    message: str
    type: str


class Problem(BaseModel):
    model_config = ConfigDict(extra="allow")  # extension members, e.g. current_stage, duplicates

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None


class ProblemError(Exception):
    """A domain or platform error with its HTTP status; subclasses name the kind."""

    status = 400
    kind = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, errors: list[FieldError] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.extra = extra


class Unauthorized(ProblemError):
    status, kind, title = 401, "unauthorized", "Authentication required"


class Forbidden(ProblemError):
    status, kind, title = 403, "forbidden", "Not allowed"


class NotFound(ProblemError):
    status, kind, title = 404, "not-found", "Not found"


class Conflict(ProblemError):
    status, kind, title = 409, "conflict", "Conflict"


class InvalidInput(ProblemError):
    status, kind, title = 422, "invalid-input", "Invalid input"


class ContentTooLarge(StarletteHTTPException):
    """A request body beyond its limit. An HTTPException rather than a ProblemError because it is raised from inside
    `receive`, where FastAPI turns any other exception into a 400 "error parsing the body"."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"请求体超过上限 {limit} 字节（the request body is larger than {limit} bytes）")
        self.limit = limit


def problem_response(status: int, title: str, kind: str | None, detail: str | None, request: Request,
                     errors: list[FieldError] | None = None, **extra: Any) -> JSONResponse:
    body = Problem(type=TYPE_BASE + kind if kind else "about:blank", title=title, status=status, detail=detail,
                   instance=str(request.url.path), errors=errors).model_dump(exclude_none=True)
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


_TRANSIENT = {"40001", "40P01"}  # serialization failure, deadlock detected: the same command may simply be retried


def _documented(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}


# What every operation may answer besides its success, all as RFC 9457 problem details (web.create_app puts them on
# every route, so the OpenAPI document says what a client must handle).
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _documented("Bad request"),
    401: _documented("Missing or invalid bearer token"),
    403: _documented("The role or org unit may not do this"),
    404: _documented("Not found (or not within your org unit)"),
    409: _documented("Conflicts with what is recorded (a concurrent change, a duplicate, the wrong stage)"),
    412: _documented("If-Match names a version that is no longer current: reload and try again"),
    413: _documented("The body is larger than allowed"),
    422: _documented("Invalid input: `errors` names every bad field"),
    428: _documented("This change requires If-Match"),
    500: _documented("Internal error: quote the trace id"),
    503: _documented("The database or the bus is briefly unavailable: retry after Retry-After seconds"),
}


def problem_of(exc: BaseException, field_prefix: str = "body") -> Problem | None:
    """The problem details of a known domain or platform error (None for anything else, a bug). Field names are
    prefixed with where the command sat in the request (`body`, or `body.items.3` for an item of a batch)."""
    from povguard_platform.errors import DomainConflict, DomainForbidden, DomainNotFound, RuleViolations
    from povguard_platform.eventstore import ConcurrencyError

    def at(name: str) -> str:
        return f"{field_prefix}.{name}" if name else field_prefix

    if isinstance(exc, RuleViolations):
        errors = [FieldError(field=at(v.field), message=v.message, type=v.code) for v in exc.violations]
        detail = f"{len(errors)} rule(s) broken: " + "; ".join(f"{e.field}: {e.message}" for e in errors)
        return Problem(type=TYPE_BASE + "invalid-input", title="Invalid input", status=422, detail=detail,
                       errors=errors)
    if isinstance(exc, DomainConflict):
        return Problem(type=TYPE_BASE + "conflict", title="Conflict", status=409, detail=str(exc), **exc.extra)
    if isinstance(exc, DomainForbidden):
        return Problem(type=TYPE_BASE + "forbidden", title="Not allowed", status=403, detail=str(exc), **exc.extra)
    if isinstance(exc, DomainNotFound):
        return Problem(type=TYPE_BASE + "not-found", title="Not found", status=404, detail=str(exc))
    if isinstance(exc, ProblemError):
        return Problem(type=TYPE_BASE + exc.kind, title=exc.title, status=exc.status, detail=exc.detail,
                       errors=exc.errors, **exc.extra)
    if isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in _TRANSIENT:
        return Problem(type=TYPE_BASE + "concurrency-conflict", title="Concurrent change", status=409,
                       detail="另一项操作同时修改了同一记录，请重试（concurrent change; try again)")
    if isinstance(exc, ConcurrencyError):
        return Problem(type=TYPE_BASE + "concurrency-conflict", title="Concurrent change", status=409,
                       detail=f"{exc}; reload and try again", expected_version=exc.expected,
                       actual_version=exc.actual)
    return None


_NETWORK_ERRNOS = frozenset({errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE, errno.ETIMEDOUT,
                             errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENOTCONN})
RETRY_AFTER_SECONDS = 5  # what an outage answer asks a client to wait: a restart by the supervisor takes about that


def is_outage(exc: BaseException) -> bool:
    """The database or the bus is away (refused, shutting down, starting up, connection lost, pool exhausted): not a
    fault of the request nor a bug, so the answer is 503 and the same request may simply be sent again later."""
    import nats.errors
    from sqlalchemy.exc import InterfaceError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, (ConnectionError, TimeoutError, PoolTimeout, InterfaceError, nats.errors.ConnectionClosedError,
                          nats.errors.NoServersError, nats.errors.StaleConnectionError)):
            return True
        if isinstance(e, OSError) and e.errno in _NETWORK_ERRNOS:
            return True
        if isinstance(e, DBAPIError) and e.connection_invalidated:
            return True
        if str(getattr(e, "sqlstate", "") or "").startswith(("08", "57P")):  # connection exception, shutdown
            return True
        todo += [getattr(e, "orig", None), e.__cause__, e.__context__]
    return False


def is_retryable(exc: BaseException) -> bool:
    """An outage, a deadlock or a serialization failure: the same work may simply be done again (consumers retry
    their batch whole, never counting it against a handler)."""
    # asyncpg is also used directly (the event store's append, the consumer's batch statements)
    state = getattr(exc.orig if isinstance(exc, DBAPIError) else exc, "sqlstate", None)
    return is_outage(exc) or state in _TRANSIENT


def install_problem_handlers(app: FastAPI) -> None:
    from povguard_platform.errors import DomainConflict, DomainForbidden, DomainNotFound, RuleViolations
    from povguard_platform.eventstore import ConcurrencyError

    async def _known(request: Request, exc: Exception) -> JSONResponse:
        problem = problem_of(exc)
        assert problem is not None
        if isinstance(exc, ConcurrencyError) and getattr(request.state, "if_match", False):
            # the client's own precondition (If-Match) failed: RFC 9110 §13.1.1 says 412, not 409
            problem = problem.model_copy(update={"status": 412, "title": "Precondition failed",
                                                 "type": TYPE_BASE + "precondition-failed"})
        body = problem.model_copy(update={"instance": str(request.url.path)}).model_dump(exclude_none=True)
        headers = {"WWW-Authenticate": "Bearer"} if problem.status == 401 else None
        return JSONResponse(body, status_code=problem.status, media_type=PROBLEM_JSON, headers=headers)

    for known in (RuleViolations, DomainConflict, DomainForbidden, DomainNotFound, ProblemError, ConcurrencyError):
        app.add_exception_handler(known, _known)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [FieldError(field=_field(e.get("loc", ())), message=e.get("msg", ""), type=e.get("type", ""))
                  for e in exc.errors()]
        return problem_response(422, "Invalid input", "invalid-input",
                                f"{len(errors)} field(s) are invalid: " + ", ".join(e.field for e in errors),
                                request, errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, ContentTooLarge):
            return content_too_large(request, exc)
        return problem_response(exc.status_code, str(exc.detail), None, None, request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if is_outage(exc):
            log.warning("outage in %s %s: %r", request.method, request.url.path, exc)
            response = problem_response(
                503, "Service unavailable", "unavailable",
                "数据库或消息总线暂时不可用，请稍后重试（the database or the bus is briefly unavailable; retry)",
                request, retry_after=RETRY_AFTER_SECONDS)
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
        # A bug: the exception's text may hold data or internals, so the caller gets only a trace id to quote, and
        # the log (with the same id) gets the traceback.
        span = trace.get_current_span().get_span_context()
        trace_id = format(span.trace_id, "032x") if span.is_valid else secrets.token_hex(16)
        log.error("unexpected error in %s %s (trace id %s)", request.method, request.url.path, trace_id,
                  exc_info=exc)
        detail = f"内部错误，请联系运维并提供追踪号 {trace_id}（internal error; quote trace id {trace_id}）"
        return problem_response(500, "Internal server error", "internal-error", detail, request, trace_id=trace_id)


def content_too_large(request: Request, exc: ContentTooLarge) -> JSONResponse:
    return problem_response(413, "Content too large", "content-too-large", str(exc.detail), request,
                            max_bytes=exc.limit)
