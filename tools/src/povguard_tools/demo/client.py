"""The demo's HTTP side: one client per service, a bearer token per (role, org, user), bounded concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from povguard_platform.actor import Actor, Role
from povguard_platform.auth import issue_token
from povguard_platform.settings import Settings

T = TypeVar("T")


class DemoError(RuntimeError):
    pass


@dataclass(frozen=True)
class Who:
    """An actor of the campaign: a role in an org unit, by name (a department actor also names its department)."""

    role: Role
    org: str
    user: str
    dept: str | None = None


@dataclass
class Api:
    """The running system as the demo sees it: base URLs per service and tokens minted for each actor."""

    urls: dict[str, str]
    settings: Settings
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    _tokens: dict[Who, str] = field(default_factory=dict)

    async def __aenter__(self) -> Api:
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        self.clients = {name: httpx.AsyncClient(base_url=url, timeout=120, limits=limits)
                        for name, url in self.urls.items()}
        return self

    async def __aexit__(self, *exc: object) -> None:
        for client in self.clients.values():
            await client.aclose()

    def headers(self, who: Who) -> dict[str, str]:
        if who not in self._tokens:
            self._tokens[who] = issue_token(Actor(user=who.user, role=who.role, org=who.org, dept=who.dept),
                                             self.settings)
        return {"Authorization": f"Bearer {self._tokens[who]}"}

    async def call(self, service: str, method: str, path: str, who: Who, *, ok: Iterable[int] = (200, 201, 202),
                   headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        response = await self.clients[service].request(method, path, headers={**self.headers(who), **(headers or {})},
                                                        **kwargs)
        if response.status_code not in set(ok):
            raise DemoError(f"{method} {service}{path} → {response.status_code}: {response.text[:500]}")
        return response


async def every_page(api: Api, service: str, path: str, who: Who, params: dict[str, Any]) -> list[dict[str, Any]]:
    """All items of a cursor-paginated list ({data, next_cursor})."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = (await api.call(service, "GET", path, who, params={**params, **({"cursor": cursor} if cursor else {})})
                ).json()
        items += page["data"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


# requests in flight per step: a service spends most of a batch request waiting on PostgreSQL (its append lock, its
# commits), so four left both cores half idle; eight keep them busy without queueing on a service's 20 connections
IN_FLIGHT = 8


async def gather_bounded(items: Iterable[T], work: Callable[[T], Awaitable[Any]], limit: int = IN_FLIGHT,
                         on_done: Callable[[], None] | None = None) -> list[Any]:
    """Run `work` over items with at most `limit` in flight; results in input order."""
    semaphore = asyncio.Semaphore(limit)

    async def one(item: T) -> Any:
        async with semaphore:
            result = await work(item)
        if on_done:
            on_done()
        return result

    return list(await asyncio.gather(*(one(i) for i in items)))


async def wait_until(check: Callable[[], Awaitable[bool]], within: float, what: str, interval: float = 0.5) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise DemoError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(interval)
