"""RFC 9457 problem details: every error leaves as application/problem+json, and invalid input names every bad
field (pydantic's full error list, not the first one)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://povguard.cn/problems/"


class FieldError(BaseModel):
    field: str  # dotted path in the request, e.g. body.members.0.id_number
    message: str
    type: str


class Problem(BaseModel):
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


def problem_response(status: int, title: str, kind: str | None, detail: str | None, request: Request,
                     errors: list[FieldError] | None = None, **extra: Any) -> JSONResponse:
    body = Problem(type=TYPE_BASE + kind if kind else "about:blank", title=title, status=status, detail=detail,
                   instance=str(request.url.path), errors=errors).model_dump(exclude_none=True)
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def install_problem_handlers(app: FastAPI) -> None:
    from povguard_platform.errors import DomainConflict, DomainNotFound, RuleViolations
    from povguard_platform.eventstore import ConcurrencyError

    @app.exception_handler(RuleViolations)
    async def _rules(request: Request, exc: RuleViolations) -> JSONResponse:
        errors = [FieldError(field="body." + v.field if v.field else "body", message=v.message, type=v.code)
                  for v in exc.violations]
        detail = f"{len(errors)} rule(s) broken: " + "; ".join(f"{e.field}: {e.message}" for e in errors)
        return problem_response(422, "Invalid input", "invalid-input", detail, request, errors)

    @app.exception_handler(DomainConflict)
    async def _domain_conflict(request: Request, exc: DomainConflict) -> JSONResponse:
        return problem_response(409, "Conflict", "conflict", str(exc), request, None, **exc.extra)

    @app.exception_handler(DomainNotFound)
    async def _not_found(request: Request, exc: DomainNotFound) -> JSONResponse:
        return problem_response(404, "Not found", "not-found", str(exc), request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [FieldError(field=_field(e.get("loc", ())), message=e.get("msg", ""), type=e.get("type", ""))
                  for e in exc.errors()]
        return problem_response(422, "Invalid input", "invalid-input",
                                f"{len(errors)} field(s) are invalid: " + ", ".join(e.field for e in errors),
                                request, errors)

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc.status, exc.title, exc.kind, exc.detail, request, exc.errors, **exc.extra)

    @app.exception_handler(ConcurrencyError)
    async def _conflict(request: Request, exc: ConcurrencyError) -> JSONResponse:
        return problem_response(409, "Concurrent change", "concurrency-conflict",
                                f"{exc}; reload and try again", request,
                                expected_version=exc.expected, actual_version=exc.actual)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(exc.status_code, str(exc.detail), None, None, request)
