"""返贫致贫风险 with their evidence, 三保障 and water gaps, rigid spending against income, labour capacity
(整户无劳动力) and the consistency rules of DOMAIN.md (因病 needs 合规自付支出 > 0; 因务工就业不稳 needs a member with
labour capacity).

A 两不愁三保障 or drinking-water gap is a 返贫致贫风险 whatever the income (seed §二(一)1, §二(三)): each gap brings
its risk type (RISK-GAP-*): 义务教育 → 因学, 基本医疗 (a member uninsured or the form's answer) → 因病, 住房安全,
饮水安全 and 两不愁 → 其他 (the national list has no type of their own). The 因病 of an uninsured member is evidence
of its own, so it is not subject to the 合规自付支出 rule, which checks a 因病 noted on the form."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from povguard_contracts.assessment import DetectedRisk, Evidence
from povguard_contracts.intake import MemberFacts, VisitForm
from povguard_contracts.vocab import (
    LABOUR_CAPABLE,
    Health,
    MedicalInsurance,
    RiskType,
    SchoolStatus,
    WarningKind,
)
from povguard_rules.facts import SeenWarning
from povguard_rules.income import IncomeResult
from povguard_rules.policy import AssessmentPolicy

GAP_FOOD, GAP_SCHOOL, GAP_MEDICAL, GAP_HOUSING, GAP_WATER = "两不愁", "义务教育", "基本医疗", "住房安全", "饮水安全"
ZERO, SHARE = Decimal(0), Decimal("0.0001")
IN_SCHOOL = frozenset(set(SchoolStatus) - {SchoolStatus.PRESCHOOL_CHILD})
GAP_RISK = {GAP_FOOD: RiskType.OTHER, GAP_SCHOOL: RiskType.SCHOOLING, GAP_MEDICAL: RiskType.ILLNESS,
            GAP_HOUSING: RiskType.OTHER, GAP_WATER: RiskType.OTHER}
_GAP_RULE = {GAP_FOOD: "RISK-GAP-FOOD", GAP_SCHOOL: "RISK-GAP-SCHOOL", GAP_MEDICAL: "RISK-GAP-MEDICAL",
             GAP_HOUSING: "RISK-GAP-HOUSING", GAP_WATER: "RISK-GAP-WATER"}
_WARNING_RISK = {WarningKind.DISASTER: RiskType.NATURAL_DISASTER,
                 WarningKind.UNEMPLOYMENT: RiskType.UNSTABLE_EMPLOYMENT,
                 WarningKind.ACCIDENT: RiskType.ACCIDENT, WarningKind.NEW_DISABILITY: RiskType.DISABILITY,
                 WarningKind.HIGH_MEDICAL_SPENDING: RiskType.ILLNESS}


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


@dataclass(frozen=True, slots=True)
class RiskResult:
    risks: list[DetectedRisk]
    gaps: list[str]
    no_labour: bool
    labour_capable_members: int
    rigid_spending: Decimal
    rigid_heavy: Evidence | None
    income_drop: Evidence | None
    consistency: list[Evidence]

    @property
    def types(self) -> list[RiskType]:
        return [r.type for r in self.risks]


def out_of_school(form: VisitForm, members: dict[str, MemberFacts], school_ages: tuple[int, int]) -> list[str]:
    """Members of compulsory-school age on the visit day who are not in school (失学辍学)."""
    low, high = school_ages
    return [mid for mid, m in sorted(members.items())
            if low <= age_on(m.birth_date, form.visit_date) <= high and m.school_status is None]


def uninsured(members: dict[str, MemberFacts]) -> list[str]:
    return [mid for mid, m in sorted(members.items()) if m.medical_insurance is MedicalInsurance.NONE]


def gaps_of(form: VisitForm, members: dict[str, MemberFacts], school_ages: tuple[int, int]) -> list[str]:
    """两不愁三保障和饮水安全 not secured: as the collector recorded them, plus what the member records show whatever
    the form says (a member without basic medical insurance; a child of compulsory-school age out of school)."""
    g = form.guarantees
    gaps = [name for name, ok in ((GAP_FOOD, g.food_and_clothing), (GAP_SCHOOL, g.compulsory_education),
                                  (GAP_MEDICAL, g.basic_medical), (GAP_HOUSING, g.housing_safe),
                                  (GAP_WATER, g.drinking_water_safe)) if not ok]
    if GAP_MEDICAL not in gaps and uninsured(members):
        gaps.append(GAP_MEDICAL)
    if GAP_SCHOOL not in gaps and out_of_school(form, members, school_ages):
        gaps.append(GAP_SCHOOL)
    return gaps


def _gap_text(gap: str, form: VisitForm, members: dict[str, MemberFacts], school_ages: tuple[int, int]) -> str:
    if gap == GAP_SCHOOL and (names := [members[mid].name for mid in out_of_school(form, members, school_ages)]):
        return f"义务教育阶段适龄成员{'、'.join(names)}失学辍学，义务教育无保障"
    if gap == GAP_MEDICAL and (names := [members[mid].name for mid in uninsured(members)]):
        return f"{'、'.join(names)}未参加基本医疗保险，基本医疗无保障"
    return f"采集表填写{gap}无保障"


def assess_risks(form: VisitForm, members: dict[str, MemberFacts], income: IncomeResult,
                 warnings: list[SeenWarning], section: AssessmentPolicy) -> RiskResult:
    noted = set(form.risks_noted)
    capable = [mid for mid, m in sorted(members.items()) if m.labour_skill in LABOUR_CAPABLE]
    medical = form.spending.medical_out_of_pocket
    rigid_by_kind: dict[RiskType, Decimal] = {}
    for item in form.spending.other_rigid:
        rigid_by_kind[item.kind] = rigid_by_kind.get(item.kind, ZERO) + item.amount
    rigid = medical + sum(rigid_by_kind.values(), ZERO)
    found: dict[RiskType, list[Evidence]] = {}
    consistency: list[Evidence] = []

    def add(kind: RiskType, rule: str, text: str, **facts: Decimal | int | str | bool | None) -> None:
        found.setdefault(kind, []).append(Evidence(rule_id=rule, text=text, facts=facts))

    for w in sorted(warnings, key=lambda w: (w.occurred_on, w.warning_id)):
        if (kind := _WARNING_RISK.get(w.kind)) is not None:
            add(kind, "RISK-WARNING", f"部门预警：{w.kind.value}（{w.occurred_on.isoformat()}）",
                warning_id=w.warning_id,
                amount=w.amount)

    # 因病: needs 合规自付支出 > 0 (a consistency rule of the national checks)
    ill = [mid for mid, m in sorted(members.items()) if {Health.SERIOUS_ILLNESS, Health.CHRONIC} & set(m.health)]
    if medical > 0 and (RiskType.ILLNESS in noted or ill or RiskType.ILLNESS in found):
        add(RiskType.ILLNESS, "RISK-ILL",
            f"合规自付医疗支出{medical:.0f}元" + (f"，{len(ill)}名成员患病" if ill else ""),
            合规自付支出=medical, 患病成员数=len(ill))
    elif RiskType.ILLNESS in noted or RiskType.ILLNESS in found:
        found.pop(RiskType.ILLNESS, None)
        consistency.append(Evidence(rule_id="CONS-ILL", text="标注因病风险，但合规自付支出为0",
                                    facts={"合规自付支出": medical}))
    # 因学
    pupils = [mid for mid, m in sorted(members.items()) if m.school_status in IN_SCHOOL]
    if RiskType.SCHOOLING in noted or rigid_by_kind.get(RiskType.SCHOOLING, 0) > 0:
        if pupils:
            spent = rigid_by_kind.get(RiskType.SCHOOLING, ZERO)
            add(RiskType.SCHOOLING, "RISK-SCHOOL", f"{len(pupils)}名在校生，就学支出{spent:.0f}元",
                在校生数=len(pupils), 就学支出=spent)
        else:
            consistency.append(Evidence(rule_id="CONS-SCHOOL", text="标注因学风险，但家中没有在校生"))
    # 因残
    disabled = [mid for mid, m in sorted(members.items()) if Health.DISABLED in m.health]
    if RiskType.DISABILITY in noted or RiskType.DISABILITY in found:
        if disabled:
            add(RiskType.DISABILITY, "RISK-DISABLED", f"{len(disabled)}名成员残疾", 残疾成员数=len(disabled))
        else:
            found.pop(RiskType.DISABILITY, None)
            consistency.append(Evidence(rule_id="CONS-DISABLED", text="标注因残风险，但没有残疾成员"))
    for kind, rule in ((RiskType.NATURAL_DISASTER, "RISK-DISASTER"), (RiskType.ACCIDENT, "RISK-ACCIDENT"),
                       (RiskType.INDUSTRY_FAILURE, "RISK-INDUSTRY"), (RiskType.OTHER, "RISK-OTHER")):
        spent = rigid_by_kind.get(kind, ZERO)
        if kind in noted or spent > 0:
            add(kind, rule, f"采集表记录{kind.value}" + (f"，刚性支出{spent:.0f}元" if spent else ""), 刚性支出=spent)
    # 因务工就业不稳: needs a member with labour capacity
    lines = income.lines
    total_income = lines["工资性收入"] + lines["生产经营性收入"] + lines["财产性收入"] + income.transfers
    wage_share = income.lines["工资性收入"] / total_income if total_income > 0 else ZERO
    short = [mid for mid, m in sorted(members.items())
             if m.migrant_months is not None and 0 < m.migrant_months < section.unstable_migrant_months]
    unstable = RiskType.UNSTABLE_EMPLOYMENT in noted or RiskType.UNSTABLE_EMPLOYMENT in found or (
        wage_share >= section.migrant_income_share and bool(short))
    if unstable:
        if capable:
            add(RiskType.UNSTABLE_EMPLOYMENT, "RISK-EMPLOY",
                f"工资性收入占{wage_share:.0%}，{len(short)}名成员务工不足{section.unstable_migrant_months}个月",
                工资性收入占比=wage_share.quantize(SHARE, ROUND_HALF_UP), 务工不稳成员数=len(short))
        else:
            found.pop(RiskType.UNSTABLE_EMPLOYMENT, None)
            consistency.append(Evidence(rule_id="CONS-EMPLOY", text="标注因务工就业不稳，但家中没有劳动力"))
    # 缺劳动力 / 整户无劳动力
    no_labour = not capable
    if no_labour:
        add(RiskType.LACK_OF_LABOUR, "RISK-NOLABOUR", "整户无劳动力（无普通、技能或弱劳动力成员）", 劳动力人数=0)
    elif RiskType.LACK_OF_LABOUR in noted:
        add(RiskType.LACK_OF_LABOUR, "RISK-LABOUR", f"标注缺劳动力，劳动力{len(capable)}人/家庭{len(members)}人",
            劳动力人数=len(capable))

    rigid_heavy = None
    if rigid > 0 and (income.net_income <= 0 or rigid >= section.rigid_spending_share * income.net_income):
        rigid_heavy = Evidence(rule_id="RISK-RIGID",
                               text=f"刚性支出{rigid:.0f}元，达到家庭纯收入{income.net_income:.0f}元的"
                                    f"{section.rigid_spending_share:.0%}以上",
                               facts={"刚性支出": rigid, "家庭纯收入": income.net_income})
    income_drop = None
    if income.change_ratio is not None and income.change_ratio <= -section.income_drop_share:
        income_drop = Evidence(rule_id="RISK-DROP",
                               text=f"人均纯收入由{income.previous_per_capita:.0f}元降至{income.per_capita:.0f}元，"
                                    f"减少{-income.change_ratio:.0%}",
                               facts={"上年度人均纯收入": income.previous_per_capita, "人均纯收入": income.per_capita,
                                      "变化": income.change_ratio})
    gaps = gaps_of(form, members, section.compulsory_school_ages)
    for gap in gaps:
        add(GAP_RISK[gap], _GAP_RULE[gap], _gap_text(gap, form, members, section.compulsory_school_ages), 短板=gap)
    order = list(RiskType)
    risks = [DetectedRisk(type=k, evidence=found[k]) for k in sorted(found, key=order.index)]
    return RiskResult(risks=risks, gaps=gaps, no_labour=no_labour,
                      labour_capable_members=len(capable), rigid_spending=rigid, rigid_heavy=rigid_heavy,
                      income_drop=income_drop, consistency=consistency)
