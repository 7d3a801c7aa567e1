"""The last stage: the inspectors' offline verification of the audit ledger."""

from __future__ import annotations

from povguard_tools.demo.client import DemoError
from povguard_tools.demo.state import COUNTY_BUREAU, INSPECTOR, Campaign, settle


async def stage_audit(c: Campaign) -> None:
    """Audit: wait until the ledger holds every event, sign a checkpoint, export the bundle and verify it offline."""
    from povguard_audit.verify import verify_lines

    task = c.task("审计账本核验", None)

    await settle(c, "the audit ledger")
    signed = (await c.api.call("audit", "POST", "/v1/audit/checkpoints", COUNTY_BUREAU)).json()
    bundle = (await c.api.call("audit", "GET", "/v1/audit/bundles", INSPECTOR)).text  # JSON Lines
    keys = [k["vkey"] for k in (await c.api.call("audit", "GET", "/v1/audit/keys", INSPECTOR)).json()]
    report = verify_lines(bundle.splitlines(), keys)
    c.advance(task)
    c.figures["audit"] = {"tree_size": report.tree_size, "checkpoint": signed, "verified": report.ok,
                          "problem": report.problem, "first_bad": str(report.first_bad) if report.first_bad else None}
    if not report.ok:
        raise DemoError(f"audit verification failed: {report.problem or report.first_bad}")
