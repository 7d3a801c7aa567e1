"""The audit service's own schedule: a checkpoint when the last one is older than `checkpoint_seconds` and there are
new entries (so a quiet log still gets signed), and the full re-check every `recheck_seconds`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from povguard_audit import checkpoints
from povguard_audit.checkpoints import InconsistentLedger
from povguard_audit.recheck import recheck
from povguard_audit.settings import audit_settings
from povguard_platform.service import ServiceRuntime

log = logging.getLogger(__name__)


async def run_schedule(runtime: ServiceRuntime) -> None:
    settings = audit_settings()
    tick = min(settings.checkpoint_seconds, settings.recheck_seconds, 30.0)
    next_recheck = time.monotonic() + settings.recheck_seconds
    while not runtime.stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runtime.stop.wait(), tick)
        if runtime.stop.is_set():
            return
        try:
            async with runtime.engine.begin() as conn:
                await checkpoints.sign(conn, settings)  # no-op when the latest checkpoint covers the tree
            if time.monotonic() >= next_recheck:
                next_recheck = time.monotonic() + settings.recheck_seconds
                result = await recheck(runtime.engine, settings)
                log.info("scheduled re-check: %s", result.detail)
        except InconsistentLedger as exc:
            log.error("scheduled checkpoint refused: %s", exc)
        except Exception:  # the schedule must outlive a database outage
            log.exception("audit schedule round failed")
