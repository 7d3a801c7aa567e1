"""Identity and authorisation: a bearer JWT names the actor (user, role, org unit; a department also its
department). Missing or invalid token: 401; a role or org unit that may not act: 403.

One rule of reach, for every role on every route: an actor acts and reads only inside its org unit, the division
code it serves and what lies under it (`Actor.covers`). County-level roles (县乡村振兴局, 行业部门, 纪检监察,
administrators) reach their own county, never another."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from povguard_contracts.vocab import Department
from povguard_platform.actor import Actor, Role
from povguard_platform.problems import Forbidden, Unauthorized
from povguard_platform.settings import Settings, get_settings

_bearer = HTTPBearer(auto_error=False,
                     description="A povguard token (`povguard token --role ... --org ... [--dept ...]`)")
_DIVISION = re.compile(r"^\d{6,15}$")
_DEPARTMENTS = frozenset(d.value for d in Department)
# the subject token of records that are not (yet) placed in a township, e.g. a warning about a person not in the
# registry: such records belong to the county of the campaign
UNPLACED = "000000000"


def issue_token(actor: Actor, settings: Settings, ttl: timedelta = timedelta(hours=12)) -> str:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": actor.user, "role": actor.role.value, "org": actor.org,
        "iss": settings.jwt_issuer, "aud": settings.jwt_audience,
        "iat": now, "exp": now + ttl,
    }
    if actor.dept is not None:
        claims["dept"] = actor.dept
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")


# Verified tokens, briefly: a client sends the same token with every request, and checking its HS256 signature
# and claims again each time (about 60 µs, twice for a request with a body) buys nothing. Keyed by a hash of the
# token and of the settings that verified it (never the token itself); an entry lasts until the token expires or
# TOKEN_CACHE_SECONDS pass, whichever is first, and invalid tokens are never cached (each is refused afresh).
TOKEN_CACHE_SECONDS = 60.0
TOKEN_CACHE_SIZE = 4096
_verified: dict[bytes, tuple[float, Actor]] = {}


def decode_token(token: str, settings: Settings) -> Actor:
    key = hashlib.sha256("\x00".join((settings.jwt_secret.get_secret_value(), settings.jwt_audience,
                                      settings.jwt_issuer, token)).encode()).digest()
    now = time.time()
    cached = _verified.get(key)
    if cached is not None and now < cached[0]:
        return cached[1]
    actor, expires = _verify(token, settings)
    if len(_verified) >= TOKEN_CACHE_SIZE:
        _verified.clear()  # many distinct tokens at once: start afresh rather than track their age
    _verified[key] = (min(expires, now + TOKEN_CACHE_SECONDS), actor)
    return actor


def _verify(token: str, settings: Settings) -> tuple[Actor, float]:
    """The actor a token names and when the token expires (epoch seconds), or 401."""
    try:
        claims = jwt.decode(
            token, settings.jwt_secret.get_secret_value(), algorithms=["HS256"],
            audience=settings.jwt_audience, issuer=settings.jwt_issuer,
            options={"require": ["sub", "exp", "iss", "aud"]},
        )
        actor = Actor(user=claims["sub"], role=Role(claims["role"]), org=claims["org"], dept=claims.get("dept"))
    except (jwt.PyJWTError, KeyError, ValueError) as exc:
        raise Unauthorized(f"invalid token: {exc}") from exc
    problem = token_problem(actor)
    if problem:
        raise Unauthorized(f"invalid token: {problem}")
    return actor, float(claims["exp"])


def token_problem(actor: Actor) -> str | None:
    """Why an actor cannot hold a token (None when it can): the org is always a division code, so that reach is
    decided by it alone; a department names its department in `dept` (org is the county it serves)."""
    if actor.role == Role.SYSTEM:
        return "the system role acts on events only, never with a token"
    if not _DIVISION.match(actor.org):
        return (f"org {actor.org!r} is not an administrative division code (6 to 15 digits); a department's token "
                "carries the county it serves as org and its department as dept")
    if actor.role == Role.DEPARTMENT and actor.dept not in _DEPARTMENTS:
        return f"a department token names its department in dept (one of {'、'.join(sorted(_DEPARTMENTS))})"
    if actor.role != Role.DEPARTMENT and actor.dept is not None:
        return "only a department token carries dept"
    return None


async def current_actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    return _actor(request, credentials)


def _actor(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Actor:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("a bearer token is required")
    actor = decode_token(credentials.credentials, request.app.state.settings)
    request.state.actor = actor
    return actor


class ActorBearer(HTTPBearer):
    """The bearer scheme (in OpenAPI exactly as `HTTPBearer`) as one dependency that also names the actor and, given
    roles, admits only those (administrators always; their org unit still applies). It stands where a route had
    three nested ones (the scheme, the actor, the role check): FastAPI solves every dependency with passes over
    its path, query, header and cookie parameters, which on a small GET cost more than the checks themselves."""

    def __init__(self, roles: Iterable[Role] | None = None) -> None:
        super().__init__(auto_error=False, description=_bearer.model.description, scheme_name="HTTPBearer")
        self.allowed = None if roles is None else frozenset({*roles, Role.ADMIN})

    async def __call__(self, request: Request) -> Actor:  # type: ignore[override]
        actor = _actor(request, await super().__call__(request))
        if self.allowed is not None and actor.role not in self.allowed:
            raise Forbidden(f"role {actor.role.value} may not do this; allowed: "
                            + ", ".join(sorted(r.value for r in self.allowed)), code="role")
        return actor


CurrentActor = Annotated[Actor, Depends(ActorBearer())]


def require_roles(*roles: Role) -> ActorBearer:
    """A dependency that admits only the given roles (administrators always; their org unit still applies)."""
    return ActorBearer(roles)


def require_org(actor: Actor, org_code: str) -> None:
    """Refuse an actor acting or reading outside its org unit: the one rule, for every role on every route."""
    if not actor.covers(org_code):
        raise Forbidden(f"org unit {actor.org} may not act on {org_code} (不在本单位范围内)", code="org_scope")


def org_prefix(actor: Actor) -> str:
    """The code prefix (SQL LIKE) of everything an actor may list: its own org unit, for every role."""
    return actor.org


def placed(code: str | None, county: str) -> str:
    """The org unit a record belongs to: its division code, or the campaign's county for a record without one."""
    return county if not code or code == UNPLACED else code


def placed_sql(column: str) -> str:
    """`placed` in SQL, for scoping a query by `LIKE :prefix`: the column's code, or `:county` without one."""
    return f"(CASE WHEN coalesce({column}, '') IN ('', '{UNPLACED}') THEN CAST(:county AS text) ELSE {column} END)"


def department_of(actor: Actor) -> Department | None:
    """The department a department actor answers for (None for every other role)."""
    return Department(actor.dept) if actor.role == Role.DEPARTMENT and actor.dept else None


__all__ = ["ActorBearer", "CurrentActor", "current_actor", "decode_token", "department_of", "get_settings",
           "issue_token", "org_prefix", "placed", "placed_sql", "require_org", "require_roles", "token_problem"]
