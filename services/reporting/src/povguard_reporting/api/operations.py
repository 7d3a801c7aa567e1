"""/v1/operations: the 运行 page — per service its readiness, consumer and relay lag, dead letters and request
errors, read from each service's own /readyz, /metrics and /v1/ops/dead-letters with the caller's token; an
administrator retries a dead letter through the service's own operator API.

Scoped like every figure: an org unit within the caller's (default its own). The dead letters listed and counted
are those of events in that unit (each service also applies the reach rule to the forwarded token); the
deployment's own figures (lags, request counts) are the whole county's, so only a county-wide view shows them."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Path, Request

from povguard_platform.actor import Actor, Role
from povguard_platform.api import Int64
from povguard_platform.auth import placed, require_roles
from povguard_platform.problems import NotFound, ProblemError
from povguard_platform.service import Runtime
from povguard_reporting.api.deps import OrgQuery, PolicyDep, scope_of
from povguard_reporting.settings import service_urls

router = APIRouter(prefix="/v1/operations", tags=["operations"])
Operator = Annotated[Actor, Depends(require_roles(Role.COUNTY_BUREAU, Role.INSPECTOR))]
_SAMPLE = re.compile(r'^(povguard_\w+)\{([^}]*)\} ([0-9.e+-]+)$', re.M)


class Upstream(ProblemError):
    status, kind, title = 502, "upstream", "Service unreachable"


def _metrics(body: str) -> dict[str, Any]:
    lag = relay = dead = errors = requests = 0.0
    for name, labels, value in _SAMPLE.findall(body):
        v = float(value)
        if name == "povguard_consumer_lag_messages":
            lag += v
        elif name == "povguard_relay_lag_events":
            relay += v
        elif name == "povguard_dead_letters":
            dead += v
        elif name == "povguard_http_requests_total":
            requests += v
            if 'status="5' in labels:
                errors += v
    return {"consumer_lag": int(lag), "relay_lag": int(relay), "dead_letters": int(dead),
            "requests": int(requests), "server_errors": int(errors)}


async def _dead_letters(client: httpx.AsyncClient, url: str, auth: str) -> list[dict[str, Any]] | None:
    """Every unresolved dead letter the service shows the caller (None: the caller's role may not see them)."""
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        r = await client.get(f"{url}/v1/ops/dead-letters", headers={"Authorization": auth},
                             params={"limit": 500, "after": after})
        if r.status_code != 200:
            return None
        page = r.json()
        found += page["data"]
        if page["next_cursor"] is None:
            return found
        after = page["next_cursor"]


async def _one(client: httpx.AsyncClient, name: str, url: str, auth: str | None, org: str,
               county: str) -> dict[str, Any]:
    row: dict[str, Any] = {"service": name, "url": url, "docs": f"{url}/docs"}
    try:
        ready = await client.get(f"{url}/readyz")
        row["ready"], row["checks"] = ready.status_code == 200, ready.json().get("checks", {})
        if org == county:
            row.update(_metrics((await client.get(f"{url}/metrics")).text))
        letters = await _dead_letters(client, url, auth) if auth else None
        if letters is not None:
            mine = [d for d in letters if placed(d["event"].get("township"), county).startswith(org)]
            row["dead_letters"], row["dead_letter_list"] = len(mine), mine[:20]
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        row["ready"], row["error"] = False, f"{type(exc).__name__}: {exc}"
    return row


@router.get("", operation_id="operations",
            summary="运行：各服务就绪状态、消费积压、转发积压、死信、请求错误（本单位范围内的死信；积压与请求计数仅全县）")
async def operations(request: Request, runtime: Runtime, actor: Operator, policy: PolicyDep,
                     org: OrgQuery = None) -> dict[str, Any]:
    scope = scope_of(actor, policy, org, None, runtime.clock.today())
    auth = request.headers.get("authorization")
    async with httpx.AsyncClient(timeout=3) as client:
        rows = await asyncio.gather(*(_one(client, n, u, auth, scope.org, policy.county_code)
                                      for n, u in service_urls().urls().items()))
    return {"org": scope.org, "services": list(rows)}


@router.post("/{service}/dead-letters/{dead_letter_id}/retry", operation_id="retry_service_dead_letter",
             summary="重试某服务的一条死信（仅管理员；由该服务自己的运维接口执行）")
async def retry(request: Request, _: Annotated[Actor, Depends(require_roles())],
                service: Annotated[str, Path(pattern=r"^[a-z]+$")], dead_letter_id: Int64) -> Any:
    url = service_urls().urls().get(service)
    if url is None:
        raise NotFound(f"no service {service}")
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await client.post(f"{url}/v1/ops/dead-letters/{dead_letter_id}/retry",
                                       headers={"Authorization": request.headers.get("authorization", "")})
    except httpx.HTTPError as exc:
        raise Upstream(f"{service}: {type(exc).__name__}") from exc
    if answer.status_code >= 400:
        raise _passthrough(answer)
    return answer.json()


def _passthrough(answer: httpx.Response) -> ProblemError:
    """The service's own problem, status and all."""
    problem = answer.json()
    error = ProblemError(problem.get("detail") or problem.get("title") or "failed")
    error.status, error.kind, error.title = answer.status_code, "upstream", problem.get("title", "Upstream error")
    return error
