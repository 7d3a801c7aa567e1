"""Events of the intake service (the household registry) and the value objects they carry.

Field titles are the Chinese names of the national form; they appear in the OpenAPI documents and the import
template. Amounts are yuan for the campaign's accounting window."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from povguard_contracts.catalogue import CATALOGUE
from povguard_contracts.numbers import Count, Finite, Year, Yuan
from povguard_contracts.payload import EventPayload
from povguard_contracts.vocab import (
    ChangeReason,
    Department,
    DisabilityCategory,
    Education,
    Health,
    HouseholdKind,
    LabourSkill,
    LeadSource,
    MedicalInsurance,
    MigrantPlace,
    MonitoringCategory,
    MonitoringStatus,
    PensionInsurance,
    PriorityGroup,
    Relation,
    RiskType,
    SchoolStatus,
    Sex,
    WarningKind,
)

ZERO = Decimal(0)


class Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Place(Value):
    """住址: county → township (乡镇) → administrative village (行政村) → village group (村民小组)."""

    county_code: str = Field(pattern=r"^\d{6}$", title="县代码")
    county: str = Field(min_length=1, max_length=30, title="县")
    township_code: str = Field(pattern=r"^\d{9}$", title="乡镇代码")
    township: str = Field(min_length=1, max_length=30, title="乡镇")
    village_code: str = Field(pattern=r"^\d{12}$", title="行政村代码")
    village: str = Field(min_length=1, max_length=30, title="行政村")
    group_code: str = Field(pattern=r"^\d{15}$", title="村民小组代码")
    group: str = Field(min_length=1, max_length=30, title="村民小组")


class MemberFacts(Value):
    """家庭成员信息 as on the national form."""

    name: str = Field(min_length=1, max_length=30, title="姓名")
    id_number: str = Field(min_length=15, max_length=18, title="证件号码", description="18位居民身份证号码")
    sex: Sex = Field(title="性别")
    birth_date: date = Field(title="出生日期")
    relation: Relation = Field(title="与户主关系")
    ethnicity: str | None = Field(default=None, max_length=20, title="民族")
    education: Education | None = Field(default=None, title="文化程度", description="不在校的成员填写")
    school_status: SchoolStatus | None = Field(default=None, title="在校生状况", description="在校生填写")
    health: list[Health] = Field(min_length=1, title="健康状况")
    disability_category: DisabilityCategory | None = Field(default=None, title="残疾类别")
    labour_skill: LabourSkill = Field(title="劳动技能")
    migrant_months: int | None = Field(default=None, ge=0, le=12, title="务工时间（月）")
    migrant_place: MigrantPlace | None = Field(default=None, title="务工所在地")
    public_welfare_job: bool = Field(default=False, title="是否公益性岗位")
    medical_insurance: MedicalInsurance = Field(title="基本医疗保险")
    serious_illness_insurance: bool = Field(default=False, title="是否参加大病保险")
    pension_insurance: PensionInsurance = Field(default=PensionInsurance.NONE, title="基本养老保险")
    dibao: bool = Field(default=False, title="是否享受低保")
    tekun: bool = Field(default=False, title="是否特困供养")
    phone: str | None = Field(default=None, pattern=r"^1\d{10}$", title="联系电话")


class Member(Value):
    member_id: str = Field(title="成员编号")
    facts: MemberFacts


class IncomeLines(Value):
    """收入 for the accounting window (seed §二(一)2)."""

    wages: Yuan = Field(default=ZERO, title="工资性收入")
    public_welfare_job_income: Yuan = Field(default=ZERO, title="其中：公益性岗位收入")
    business: Yuan = Field(default=ZERO, title="生产经营性收入")
    property: Yuan = Field(default=ZERO, title="财产性收入")
    asset_dividend: Yuan = Field(default=ZERO, title="其中：资产收益扶贫分红收入")
    pension: Yuan = Field(default=ZERO, title="养老金或离退休金")
    family_planning: Yuan = Field(default=ZERO, title="计划生育金")
    eco_compensation: Yuan = Field(default=ZERO, title="生态补偿金")
    dibao: Yuan = Field(default=ZERO, title="最低生活保障金")
    tekun: Yuan = Field(default=ZERO, title="特困人员救助供养金")
    other_transfer: Yuan = Field(default=ZERO, title="其他转移性收入")
    industry_reward: Yuan = Field(default=ZERO, title="产业奖励")
    employment_reward: Yuan = Field(default=ZERO, title="就业奖励")
    insurance_claims: Yuan = Field(default=ZERO, title="家庭理赔收入")


class RigidSpending(Value):
    kind: RiskType = Field(title="支出原因")
    amount: Yuan = Field(title="金额")
    note: str = Field(default="", max_length=200, title="说明")


class SpendingLines(Value):
    business_expense: Yuan = Field(default=ZERO, title="生产经营性支出")
    medical_out_of_pocket: Yuan = Field(default=ZERO, title="合规自付支出", description="医疗合规自付费用")
    other_rigid: list[RigidSpending] = Field(default_factory=list, max_length=20, title="其他刚性支出")


class Guarantees(Value):
    """两不愁三保障和饮水安全: true = secured."""

    food_and_clothing: bool = Field(title="两不愁（吃穿不愁）")
    compulsory_education: bool = Field(title="义务教育有保障", description="无义务教育阶段失学辍学")
    basic_medical: bool = Field(title="基本医疗有保障", description="成员均参加基本医疗保险")
    housing_safe: bool = Field(title="住房安全有保障")
    drinking_water_safe: bool = Field(title="饮水安全有保障")


class Housing(Value):
    structure: str = Field(default="", max_length=20, title="房屋结构", description="砖混、砖木、土木、其他")
    area_m2: Finite = Field(default=0, ge=0, le=5000, title="住房面积（平方米）")
    appraisal: str | None = Field(default=None, pattern=r"^[ABCD]级$", title="房屋安全等级")


class Vehicle(Value):
    kind: str = Field(max_length=20, title="车辆类型")
    value: Yuan = Field(default=ZERO, title="估值")


class PropertyItem(Value):
    kind: str = Field(max_length=20, title="房产类型")
    location: str = Field(default="", max_length=60, title="所在地")


class Business(Value):
    name: str = Field(max_length=60, title="经营实体名称")
    kind: str = Field(default="", max_length=30, title="类型")


class Assets(Value):
    """家庭资产 as declared by the family."""

    vehicles: list[Vehicle] = Field(default_factory=list, title="车辆")
    properties: list[PropertyItem] = Field(default_factory=list, title="房产（本宅以外）")
    businesses: list[Business] = Field(default_factory=list, title="经营实体")


class VisitForm(Value):
    """入户调查信息采集表 (附件2-1)."""

    visit_date: date = Field(title="调查日期")
    collector: str = Field(min_length=1, max_length=30, title="信息采集员")
    income: IncomeLines = Field(title="家庭收入")
    spending: SpendingLines = Field(title="家庭支出")
    guarantees: Guarantees = Field(title="两不愁三保障及饮水安全")
    housing: Housing = Field(default_factory=Housing, title="住房情况")
    assets: Assets = Field(default_factory=Assets, title="家庭资产")
    risks_noted: list[RiskType] = Field(default_factory=list, max_length=5, title="发现的风险")
    difficulties: str = Field(default="", max_length=500, title="家庭困难及诉求")
    previous_year_per_capita: Yuan | None = Field(default=None, title="上年度人均纯收入",
                                                  description="已知时填写，用于判断收入明显减少")
    application_signed: bool = Field(default=False, title="是否签署申请书")
    authorisation_signed: bool = Field(default=False, title="是否签署授权承诺书")


# --- events -------------------------------------------------------------------------------------------------------


class _Intake(EventPayload):
    service = "intake"


@CATALOGUE.register
class HouseholdRegistered(_Intake):
    event_type = "HouseholdRegistered"
    household_id: str
    code: str = Field(title="户编号")
    place: Place
    kind: HouseholdKind
    lifted_year: Year | None = None
    category: MonitoringCategory | None = None
    status: MonitoringStatus
    flags: list[PriorityGroup]
    members: list[Member]
    source: str = Field(description="手工登记 or 批量导入:<file>")


@CATALOGUE.register
class MemberAdded(_Intake):
    event_type = "MemberAdded"
    household_id: str
    member: Member
    reason: ChangeReason
    effective: date
    note: str = ""


@CATALOGUE.register
class MemberUpdated(_Intake):
    event_type = "MemberUpdated"
    household_id: str
    member_id: str
    facts: MemberFacts
    reason: ChangeReason
    effective: date
    note: str = ""


@CATALOGUE.register
class MemberRemoved(_Intake):
    event_type = "MemberRemoved"
    household_id: str
    member_id: str
    reason: ChangeReason
    effective: date
    note: str = ""


@CATALOGUE.register
class PriorityFlagsSet(_Intake):
    event_type = "PriorityFlagsSet"
    household_id: str
    flags: list[PriorityGroup]
    reason: str


@CATALOGUE.register
class VisitRecorded(_Intake):
    event_type = "VisitRecorded"
    household_id: str
    visit_id: str
    form: VisitForm


@CATALOGUE.register
class VisitCorrected(_Intake):
    event_type = "VisitCorrected"
    household_id: str
    visit_id: str
    corrects: str
    form: VisitForm
    reason: str


@CATALOGUE.register
class LeadOpened(_Intake):
    """A lead (线索): the 15-day identification clock starts at `lead_date`."""

    event_type = "LeadOpened"
    household_id: str
    lead_id: str
    source: LeadSource
    lead_date: date
    warning_id: str | None = None
    note: str = ""


@CATALOGUE.register
class MonitoringStatusChanged(_Intake):
    """The household's kind and monitoring status as decided by review."""

    event_type = "MonitoringStatusChanged"
    household_id: str
    kind: HouseholdKind
    category: MonitoringCategory | None
    status: MonitoringStatus
    decided_on: date
    case_id: str | None = None


@CATALOGUE.register
class WarningReceived(_Intake):
    """部门筛查预警: kept even when the person is not in the registry (then unmatched)."""

    event_type = "WarningReceived"
    warning_id: str
    department: Department
    kind: WarningKind
    id_number: str | None
    person_name: str | None
    household_id: str | None
    member_id: str | None
    amount: Yuan | None
    occurred_on: date
    source_ref: str
    note: str = ""


@CATALOGUE.register
class WarningMatched(_Intake):
    """An unmatched warning found its household (the person was registered later)."""

    event_type = "WarningMatched"
    warning_id: str
    household_id: str
    member_id: str


@CATALOGUE.register
class PersonalDataRead(_Intake):
    """An unmasked read of personal data (ID numbers, phones, health), for the audit trail."""

    event_type = "PersonalDataRead"
    household_id: str
    fields: list[str]
    purpose: str


@CATALOGUE.register
class PersonalDataExported(_Intake):
    """The registry of an org unit exported with personal data, for the audit trail."""

    event_type = "PersonalDataExported"
    org: str
    households: Count
    members: Count
    sha256: str
    purpose: str
