"""/v1/notices: the cases on public notice (公示) in one's org unit, cursor-paged; /v1/notices/{village_code}: the
printable 公示名单 of a village (XLSX or HTML)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Response
from sqlalchemy import text

from povguard_platform.api import cursor_key, cursor_of
from povguard_platform.auth import org_prefix, require_org
from povguard_platform.service import Runtime
from povguard_review.api.deps import Reader, ReviewDep
from povguard_review.domain.case import Case
from povguard_review.notice import Notice, NoticeRow, to_html, to_xlsx

router = APIRouter(prefix="/v1/notices", tags=["notices"])


@router.get("", operation_id="list_notices", summary="公示中的案件（本单位范围内，按村分页）：不显示个人敏感信息")
async def list_notices(runtime: Runtime, actor: Reader, as_of: Annotated[date | None, Query(
                           description="only notices still on the board on this day")] = None,
                       cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> dict[str, Any]:
    after = cursor_key(cursor, 2) or ("", "")
    async with runtime.read() as conn:
        rows = (await conn.execute(text("""
            SELECT c.case_id, c.household_id, c.township_code, c.village_code, c.state, h.head_name, h.group_name
            FROM review.cases c LEFT JOIN review.households h USING (household_id)
            WHERE c.notice_ends_on IS NOT NULL AND c.village_code LIKE :prefix
              AND (CAST(:as_of AS date) IS NULL OR c.notice_ends_on >= :as_of)
              AND (c.village_code, c.case_id) > (:after_village, :after_case)
            ORDER BY c.village_code, c.case_id LIMIT :n"""),
            {"prefix": org_prefix(actor) + "%", "as_of": as_of, "after_village": after[0],
             "after_case": after[1], "n": limit + 1})).all()
    more = len(rows) > limit
    data = []
    for r in rows[:limit]:
        case = Case.model_validate(r.state)
        if case.notice is None:
            continue
        data.append({"case_id": r.case_id, "household_id": r.household_id, "township_code": r.township_code,
                     "village_code": r.village_code, "group": r.group_name, "head_name": r.head_name,
                     "outcome": case.outcome.value, "category": case.category.value if case.category else None,
                     "starts_on": case.notice.acted_on.isoformat(), "ends_on": case.notice.ends_on.isoformat(),
                     "noticed": case.noticed})
    last = rows[limit - 1] if more else None
    return {"data": data, "next_cursor": cursor_of(last.village_code, last.case_id) if last else None}


@router.get("/{village_code}", operation_id="village_notice",
            summary="打印公示名单（XLSX 或 HTML）：不显示身份证号码、电话、银行账号和健康状况",
            response_class=Response,
            responses={200: {"content": {"text/html": {}, "application/vnd.openxmlformats-officedocument."
                                                         "spreadsheetml.sheet": {}}}})
async def village_notice(village_code: str, runtime: Runtime, review: ReviewDep, actor: Reader,
                         format: Literal["html", "xlsx"] = "html", as_of: date | None = None) -> Response:
    require_org(actor, village_code)
    async with runtime.read() as conn:
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
