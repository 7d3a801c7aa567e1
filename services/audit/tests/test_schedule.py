"""The audit service signs a quiet log on its own after `checkpoint_seconds` and runs the full re-check on its
schedule (no request, no cron)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text

from povguard_audit.service import SERVICE as AUDIT
from povguard_audit.settings import audit_settings
from povguard_intake.service import SERVICE as INTAKE
from povguard_platform.envelope import StreamRef
from povguard_platform.settings import Settings
from povguard_tools.testing import eventually, running


async def test_quiet_log_is_signed_and_rechecked_on_schedule(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, write: Callable[..., Awaitable[Any]], ev: Any,
    count: Callable[[Any], Awaitable[int]],
) -> None:
    monkeypatch.setenv("AUDIT_CHECKPOINT_SECONDS", "0.3")
    monkeypatch.setenv("AUDIT_RECHECK_SECONDS", "0.6")
    audit_settings.cache_clear()
    async with running(INTAKE, settings) as intake, running(AUDIT, settings) as audit:
        await write(intake, [(StreamRef("household", "h-sched"), ev.Noted(note=str(i))) for i in range(3)])

        async def recorded() -> bool:
            return await count(audit) == 3

        await eventually(recorded)

        async def signed_and_rechecked() -> bool:
            async with audit.engine.connect() as conn:
                size = (await conn.execute(text("SELECT max(tree_size) FROM audit.checkpoints"))).scalar_one()
                runs = (await conn.execute(text("SELECT count(*) FROM audit.recheck_runs WHERE ok"))).scalar_one()
            return bool(size == 3 and runs >= 1)

        await eventually(signed_and_rechecked, within=20)
