from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from povguard_platform.service import ServiceRuntime
from povguard_platform.settings import Settings
from povguard_platform.web import create_app
from povguard_platform_sample.service import SAMPLE
from povguard_tools.testing import running


@pytest.fixture
def database_services() -> list[str]:
    """The platform's tests run the sample service only: its schema and roles are the ones provisioned."""
    return [SAMPLE.name]


@pytest.fixture
async def sample(settings: Settings) -> AsyncIterator[ServiceRuntime]:
    async with running(SAMPLE, settings) as runtime:
        yield runtime


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The sample service's HTTP API with its lifespan (relay, consumer) running."""
    app = create_app(SAMPLE, settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sample") as c:
            c.app = app  # type: ignore[attr-defined]
            yield c
