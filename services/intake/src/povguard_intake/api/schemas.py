"""Request and response bodies of the intake API (one per use). Field titles are the national form's names."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from povguard_contracts.intake import MemberFacts, Place, VisitForm
from povguard_contracts.numbers import Year, Yuan
from povguard_contracts.vocab import (
    ChangeReason,
    Department,
    HouseholdKind,
    LeadSource,
    MonitoringCategory,
    MonitoringStatus,
    PriorityGroup,
    WarningKind,
)
from povguard_platform.batch import MAX_ITEMS


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class HouseholdCreate(_In):
    code: str = Field(min_length=1, max_length=40, title="户编号")
    place: Place = Field(title="住址")
    kind: HouseholdKind = Field(title="户类型")
    lifted_year: Year | None = Field(default=None, title="脱贫年度")
    category: MonitoringCategory | None = Field(default=None, title="监测对象类别")
    status: MonitoringStatus = Field(default=MonitoringStatus.NOT_MONITORED, title="监测状态")
    flags: list[PriorityGroup] = Field(default_factory=list, title="重点排查类型")
    members: list[MemberFacts] = Field(min_length=1, max_length=30, title="家庭成员")


class MemberCreate(_In):
    facts: MemberFacts = Field(title="成员信息")
    reason: ChangeReason = Field(title="增加原因")
    effective: date = Field(title="变更日期")
    note: str = Field(default="", max_length=200, title="说明")


class MemberUpdate(MemberCreate):
    reason: ChangeReason = Field(default=ChangeReason.CORRECTION, title="变更原因")


class MemberRemoval(_In):
    reason: ChangeReason = Field(title="减少原因")
    effective: date = Field(title="变更日期")
    note: str = Field(default="", max_length=200, title="说明")


class FlagsUpdate(_In):
    flags: list[PriorityGroup] = Field(title="重点排查类型")
    reason: str = Field(min_length=1, max_length=200, title="调整原因")


class VisitCreate(_In):
    form: VisitForm = Field(title="入户调查信息采集表")


class VisitItem(VisitCreate):
    household_id: str = Field(min_length=1, max_length=64)
    expected_version: int | None = Field(default=None, ge=0, le=2**31 - 1,
                                         description="the household's version the form was filled against (If-Match)")
    corrects: str | None = Field(default=None, max_length=64, title="更正的采集记录",
                                 description="a correction: the visit_id it replaces (both records are kept)")
    reason: str | None = Field(default=None, max_length=200, title="更正原因", description="required with corrects")


class VisitBatch(_In):
    """采集终端同步: the forms a collector filled offline, uploaded together."""

    items: list[VisitItem] = Field(min_length=1, max_length=MAX_ITEMS)


class VisitRecordedItem(BaseModel):
    household_id: str
    visit_id: str
    version: int = Field(description="the household's version after the visit (its new ETag)")


class VisitCorrection(_In):
    form: VisitForm = Field(title="更正后的采集表")
    reason: str = Field(min_length=1, max_length=200, title="更正原因")


class LeadCreate(_In):
    source: LeadSource = Field(title="线索来源")
    lead_date: date = Field(title="线索日期", description="识别时限（15天）从此日起算")
    note: str = Field(default="", max_length=500, title="说明")


class WarningCreate(_In):
    department: Department = Field(title="报送部门")
    kind: WarningKind = Field(title="预警类型")
    id_number: str | None = Field(default=None, min_length=15, max_length=18, title="身份证号码")
    person_name: str | None = Field(default=None, max_length=30, title="姓名")
    household_id: str | None = Field(default=None, title="户ID")
    amount: Yuan | None = Field(default=None, title="金额（元）")
    occurred_on: date = Field(title="发生日期")
    reported_on: date | None = Field(default=None, title="报送日期", description="默认为今天")
    source_ref: str = Field(min_length=1, max_length=100, title="来源编号", description="部门系统中的记录编号")
    note: str = Field(default="", max_length=500, title="说明")


class WarningBatch(_In):
    """A department's day of warnings (部门数据比对推送), each handled as if sent alone."""

    items: list[WarningCreate] = Field(min_length=1, max_length=MAX_ITEMS)


class IdNumberQuery(_In):
    id_number: str = Field(min_length=15, max_length=18, title="身份证号码")


class MemberPublic(BaseModel):
    member_id: str
    facts: dict[str, Any] = Field(description="成员信息（未授权或列表中证件号码、电话、健康状况已脱敏）")


class VisitSummary(BaseModel):
    visit_id: str
    visit_date: date
    collector: str
    corrects: str | None
    superseded_by: str | None


class LeadPublic(BaseModel):
    lead_id: str
    source: LeadSource
    lead_date: date
    warning_id: str | None
    note: str


class HouseholdPublic(BaseModel):
    household_id: str
    code: str = Field(title="户编号")
    place: Place
    kind: HouseholdKind
    lifted_year: int | None
    category: MonitoringCategory | None
    status: MonitoringStatus
    flags: list[PriorityGroup]
    members: list[MemberPublic]
    visits: list[VisitSummary] = Field(default_factory=list)
    leads: list[LeadPublic] = Field(default_factory=list)
    version: int
    personal_data: str = Field(description="masked: 已脱敏; shown: 已显示（本次读取已记入审计）")


class HouseholdsPublic(BaseModel):
    data: list[HouseholdPublic]
    next_cursor: str | None


class HistoryEntry(BaseModel):
    version: int
    type: str
    time: str
    actor: dict[str, str]
    data: dict[str, Any]


class WarningPublic(BaseModel):
    warning_id: str
    department: str
    kind: str
    id_number: str | None
    person_name: str | None
    household_id: str | None
    matched: bool
    amount: Yuan | None
    occurred_on: date
    source_ref: str


class WarningsPublic(BaseModel):
    data: list[WarningPublic]
    next_cursor: str | None
