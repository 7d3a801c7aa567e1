from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from povguard_platform.settings import Settings
from povguard_platform.web import create_app
from povguard_reporting.service import SERVICE


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(SERVICE, settings)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://s") as c:
        c.app = app  # type: ignore[attr-defined]
        yield c
