"""/v1/notices/{village_code}: the printable 公示名单 of a village (XLSX or HTML)."""

from __future__ import annotations

from datetime import date
from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, Response
from sqlalchemy import text

from povguard_platform.actor import Role
from povguard_platform.auth import require_org
from povguard_platform.service import Runtime
from povguard_review.api.deps import Reader, ReviewDep
from povguard_review.domain.case import Case
from povguard_review.notice import Notice, NoticeRow, to_html, to_xlsx

router = APIRouter(prefix="/v1/notices", tags=["notices"])


@router.get("/{village_code}", operation_id="village_notice",
            summary="打印公示名单（XLSX 或 HTML）：不显示身份证号码、电话、银行账号和健康状况",
            response_class=Response,
            responses={200: {"content": {"text/html": {}, "application/vnd.openxmlformats-officedocument."
                                                         "spreadsheetml.sheet": {}}}})
async def village_notice(village_code: str, runtime: Runtime, review: ReviewDep, actor: Reader,
                         format: Literal["html", "xlsx"] = "html", as_of: date | None = None) -> Response:
    if actor.role not in (Role.COUNTY_BUREAU, Role.INSPECTOR, Role.ADMIN):
        require_org(actor, village_code)
    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(text("""
            SELECT c.state, h.head_name, h.group_name, h.members, h.village, h.township
            FROM review.cases c LEFT JOIN review.households h USING (household_id)
            WHERE c.village_code = :v AND c.notice_ends_on IS NOT NULL
              AND (CAST(:as_of AS date) IS NULL OR c.notice_ends_on >= :as_of)
            ORDER BY h.group_name NULLS LAST, c.case_id"""), {"v": village_code, "as_of": as_of})).all()
    items: list[NoticeRow] = []
    village, township = village_code, ""
    for state, head, group, members, village_name, township_name in rows:
        case = Case.model_validate(state)
        if case.notice is None or not case.noticed:
            continue
        village, township = village_name or village, township_name or township
        items.append(NoticeRow(group=group or "", head_name=head or "（户主姓名待登记）", members=members,
                               outcome=case.outcome.value, category=case.category.value if case.category else "",
                               period=(case.notice.acted_on, case.notice.ends_on)))
    notice = Notice(township=township, village=village, village_code=village_code, rows=items,
                    working_days=review.policy.calendar.notice_working_days)
    name = quote(f"{village}公示名单")
    if format == "xlsx":
        return Response(to_xlsx(notice),
                        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}.xlsx"})
    return Response(to_html(notice), media_type="text/html; charset=utf-8")
