"""The campaign's stages in the plan's order: the one list the demo and the end-to-end bench run."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from povguard_tools.demo.clearance import stage_clearance
from povguard_tools.demo.collection import stage_assessment, stage_import, stage_visits, stage_warnings
from povguard_tools.demo.inspection import stage_audit
from povguard_tools.demo.procedure import stage_review, stage_support
from povguard_tools.demo.state import Campaign

Stage = Callable[[Campaign], Awaitable[None]]

STAGES: list[tuple[str, Stage]] = [
    ("import", stage_import), ("warnings", stage_warnings), ("visits", stage_visits),
    ("assessment", stage_assessment), ("review", stage_review), ("support", stage_support),
    ("clearance", stage_clearance), ("audit", stage_audit),
]
