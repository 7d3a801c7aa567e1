from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from assessment_helpers import Stack
from sqlalchemy.ext.asyncio import AsyncEngine

from povguard_assessment.service import SERVICE as ASSESSMENT
from povguard_intake.service import SERVICE as INTAKE
from povguard_platform.settings import Settings
from povguard_platform.web import create_app


@pytest.fixture
async def stack(settings: Settings, admin_engine: AsyncEngine) -> AsyncIterator[Stack]:
    """Intake and assessment, each with its HTTP app, relay and consumers, on fresh PostgreSQL and NATS."""
    intake_app, assessment_app = create_app(INTAKE, settings), create_app(ASSESSMENT, settings)
    async with intake_app.router.lifespan_context(intake_app), \
            assessment_app.router.lifespan_context(assessment_app), \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=intake_app), base_url="http://intake") as intake, \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=assessment_app), base_url="http://assess") as assess:
        yield Stack(settings, intake, assess, assessment_app.state.runtime, admin_engine)
