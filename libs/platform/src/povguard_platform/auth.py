"""Identity and authorisation: a bearer JWT names the actor (user, role, org unit). Missing or invalid token: 401;
a role or org unit that may not act: 403."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from povguard_platform.actor import Actor, Role
from povguard_platform.problems import Forbidden, Unauthorized
from povguard_platform.settings import Settings, get_settings

_bearer = HTTPBearer(auto_error=False, description="A povguard token (`povguard token --role ... --org ...`)")


def issue_token(actor: Actor, settings: Settings, ttl: timedelta = timedelta(hours=12)) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": actor.user, "role": actor.role.value, "org": actor.org,
        "iss": settings.jwt_issuer, "aud": settings.jwt_audience,
        "iat": now, "exp": now + ttl,
    }
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")


def decode_token(token: str, settings: Settings) -> Actor:
    try:
        claims = jwt.decode(
            token, settings.jwt_secret.get_secret_value(), algorithms=["HS256"],
            audience=settings.jwt_audience, issuer=settings.jwt_issuer,
            options={"require": ["sub", "exp", "iss", "aud"]},
        )
        return Actor(user=claims["sub"], role=Role(claims["role"]), org=claims["org"])
    except (jwt.PyJWTError, KeyError, ValueError) as exc:
        raise Unauthorized(f"invalid token: {exc}") from exc


async def current_actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("a bearer token is required")
    actor = decode_token(credentials.credentials, request.app.state.settings)
    request.state.actor = actor
    return actor


CurrentActor = Annotated[Actor, Depends(current_actor)]


def require_roles(*roles: Role) -> Callable[..., Coroutine[Any, Any, Actor]]:
    """A dependency that admits only the given roles (administrators always)."""
    allowed = {*roles, Role.ADMIN}

    async def check(actor: CurrentActor) -> Actor:
        if actor.role not in allowed:
            raise Forbidden(f"role {actor.role.value} may not do this; allowed: "
                            + ", ".join(sorted(r.value for r in allowed)))
        return actor

    return check


def require_org(actor: Actor, org_code: str) -> None:
    """Refuse an actor acting outside its org unit (a township acts on its own villages only)."""
    if actor.role in (Role.ADMIN, Role.INSPECTOR, Role.SYSTEM):
        return
    if not actor.covers(org_code):
        raise Forbidden(f"org unit {actor.org} may not act on {org_code}")


__all__ = ["CurrentActor", "current_actor", "decode_token", "get_settings", "issue_token", "require_org",
           "require_roles"]
