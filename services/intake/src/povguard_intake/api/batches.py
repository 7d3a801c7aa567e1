"""/v1/batches: what the field sends in bulk. A collector's tablet syncs the forms filled offline; a department's
system pushes a day of warnings. Each item is handled as if sent alone, and the refused ones come back with why."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from fastapi import APIRouter

from povguard_contracts.intake import VisitCorrected, VisitRecorded
from povguard_contracts.payload import EventPayload
from povguard_intake.api.deps import Collector, DepartmentClient, IntakeDep, scope
from povguard_intake.api.schemas import VisitBatch, VisitItem, VisitRecordedItem, WarningBatch, WarningPublic
from povguard_intake.api.warnings import receive
from povguard_intake.domain import household as domain
from povguard_intake.domain.household import Household
from povguard_platform.batch import BatchResult, apply_each, failure
from povguard_platform.errors import RuleViolations
from povguard_platform.service import Runtime

router = APIRouter(prefix="/v1/batches", tags=["batches"])


@router.post("/visits", operation_id="record_visits",
             summary="批量同步入户调查信息采集表及更正（采集终端离线采集后上传；每户单独校验，一户不成不影响其他）")
async def record_visits(body: VisitBatch, runtime: Runtime, intake: IntakeDep,
                        actor: Collector) -> BatchResult[VisitRecordedItem]:
    today = intake.today()

    def decide(item: VisitItem) -> Callable[[Household], EventPayload]:
        if item.corrects is not None:
            corrects = item.corrects

            def correct(state: Household) -> EventPayload:
                try:
                    return domain.correct_visit(state, corrects, item.form, item.reason or "", intake.policy, today)
                except RuleViolations as exc:  # the record it replaces is `corrects` here, not a path's visit_id
                    raise RuleViolations([replace(v, field="corrects") if v.field == "visit_id" else v
                                          for v in exc.violations]) from None

            return correct
        return lambda state: domain.record_visit(state, item.form, intake.policy, today)

    async with runtime.engine.begin() as conn:
        done, refused = await intake.change_many(
            conn, actor, [(i.household_id, i.expected_version, decide(i)) for i in body.items], scope(actor))
    return BatchResult[VisitRecordedItem](
        recorded=len(done), failed=[failure(index, body.items[index].household_id, exc) for index, exc in refused],
        data=[VisitRecordedItem(household_id=state.household_id, visit_id=event.visit_id, version=state.version)
              for _, state, event in done if isinstance(event, VisitRecorded | VisitCorrected)])



@router.post("/warnings", operation_id="receive_warnings",
             summary="行业部门批量报送预警信息（每条单独处理：匹配形成线索、未匹配保留；一条不成不影响其他）")
async def receive_warnings(body: WarningBatch, runtime: Runtime, intake: IntakeDep,
                           actor: DepartmentClient) -> BatchResult[WarningPublic]:
    async with runtime.engine.begin() as conn:
        return await apply_each(conn, body.items, lambda w: w.source_ref, lambda w: receive(conn, intake, actor, w))
