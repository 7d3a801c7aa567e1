from __future__ import annotations

from pathlib import Path

from povguard_platform.service import ServiceDef
from povguard_platform_sample.api import router
from povguard_platform_sample.consumers import PROJECTION

SAMPLE = ServiceDef(
    name="sample",
    title="platform sample",
    description="exercises the platform in its tests",
    default_port=8199,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=lambda: [router],
    consumers=[PROJECTION],
)
