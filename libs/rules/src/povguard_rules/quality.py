"""数据质量问题 (seed §三 step 10; §二(五)): completeness (完整性), accuracy (准确性) and timeliness (及时性), per
household and per member. A problem's id is stable (household, rule, member), so the same problem found again is the
same problem, and one no longer found is cleared (问题清零).

Rule ids:
- DQ-C-INCOME 收入信息缺失 (every income line 0 on the latest visit)
- DQ-C-EXPENSE 生产经营性支出缺失 (生产经营性收入 > 0 but 生产经营性支出 = 0)
- DQ-C-PREVIOUS 上年度人均纯收入缺失 (脱贫户 and monitoring objects: needed for 收入变化)
- DQ-C-CATEGORY 监测对象类别缺失 (a monitoring object without a category)
- DQ-C-MEMBERS 家庭成员缺失 (no member in the registry)
- DQ-C-RISKTYPE 主要风险类型缺失 (a household proposed for monitoring without any 返贫致贫风险: held until one is
  established)
- DQ-A-CATEGORY 类别与户类型不符 (category without monitoring, 脱贫不稳定户 without a lifted year, ...)
- DQ-A-MEDICAL 基本医疗有保障 but a member has no basic medical insurance (per member)
- DQ-A-SCHOOL 义务教育有保障 but a member of compulsory-school age is not in school (per member)
- DQ-A-LABOUR a child under the labour age recorded with labour capacity (per member)
- DQ-A-DIBAO / DQ-A-TEKUN a member 享受低保 / 特困供养 while the household has no such transfer (per member)
- DQ-A-RISK a noted risk type contradicts the facts (因病 without 合规自付支出, 因务工就业不稳 without labour, ...)
- DQ-A-MEASURE a monitoring object with labour capacity whose implemented measures are all non-developmental
- DQ-T-NOVISIT no visit by the campaign's visit deadline
- DQ-T-STALE the latest visit predates the campaign window
- DQ-T-LATE the latest visit is dated after the visit deadline"""

from __future__ import annotations

from dataclasses import dataclass

from povguard_contracts.vocab import (
    LABOUR_CAPABLE,
    HouseholdKind,
    MedicalInsurance,
    MonitoringCategory,
    MonitoringStatus,
)
from povguard_rules.facts import HouseholdFacts
from povguard_rules.outcome import HOLD_NO_RISK_TYPE, Proposal
from povguard_rules.policy import Rules
from povguard_rules.risks import RiskResult, age_on

COMPLETENESS, ACCURACY, TIMELINESS = "完整性", "准确性", "及时性"


@dataclass(frozen=True, slots=True)
class Problem:
    problem_id: str
    kind: str
    rule_id: str
    member_id: str | None
    text: str


def problem_id(household_id: str, rule_id: str, member_id: str | None) -> str:
    return f"{household_id}:{rule_id}:{member_id or '-'}"


def find_problems(state: HouseholdFacts, risk: RiskResult | None, rules: Rules,
                  proposal: Proposal | None = None) -> list[Problem]:
    found: list[Problem] = []

    def add(kind: str, rule: str, text: str, member_id: str | None = None) -> None:
        found.append(Problem(problem_id(state.household_id, rule, member_id), kind, rule, member_id, text))

    monitored = state.kind is HouseholdKind.MONITORED or state.status in (MonitoringStatus.RISK_NOT_ELIMINATED,
                                                                        MonitoringStatus.RISK_ELIMINATED)
    if not state.members:
        add(COMPLETENESS, "DQ-C-MEMBERS", "没有在册家庭成员")
    if monitored and state.category is None:
        add(COMPLETENESS, "DQ-C-CATEGORY", "监测对象未填写监测对象类别")
    if state.category is not None and not monitored:
        add(ACCURACY, "DQ-A-CATEGORY", f"未纳入监测的农户填写了监测对象类别（{state.category.value}）")
    elif state.category is MonitoringCategory.UNSTABLE_LIFTED and state.lifted_year is None:
        add(ACCURACY, "DQ-A-CATEGORY", "脱贫不稳定户没有脱贫年度")
    elif state.category is MonitoringCategory.MARGINAL and state.lifted_year is not None:
        add(ACCURACY, "DQ-A-CATEGORY", f"边缘易致贫户填写了脱贫年度（{state.lifted_year}）")

    calendar = rules.policy.calendar
    latest = state.latest_visit
    if latest is None:
        if any(d >= calendar.visits for d in state.deadlines):
            add(TIMELINESS, "DQ-T-NOVISIT", f"入户调查截止（{calendar.visits.isoformat()}）前没有采集记录")
        return found
    _, form = latest
    if form.visit_date < calendar.campaign_window[0]:
        add(TIMELINESS, "DQ-T-STALE", f"最近一次采集（{form.visit_date.isoformat()}）早于本次排查")
    elif form.visit_date > calendar.visits:
        add(TIMELINESS, "DQ-T-LATE",
            f"采集日期{form.visit_date.isoformat()}晚于入户调查截止日期{calendar.visits.isoformat()}")
    inc = form.income
    if inc.wages + inc.business + inc.property + inc.pension + inc.family_planning + inc.eco_compensation + inc.dibao \
            + inc.tekun + inc.other_transfer + inc.industry_reward + inc.employment_reward + inc.insurance_claims == 0:
        add(COMPLETENESS, "DQ-C-INCOME", "采集表各项收入均为0，收入信息缺失")
    if inc.business > 0 and form.spending.business_expense == 0:
        add(COMPLETENESS, "DQ-C-EXPENSE", f"有生产经营性收入{inc.business:.0f}元但未填写生产经营性支出")
    if (monitored or state.kind is HouseholdKind.LIFTED) and form.previous_year_per_capita is None:
        add(COMPLETENESS, "DQ-C-PREVIOUS", "脱贫户和监测对象须填写上年度人均纯收入")
    low, high = rules.section.compulsory_school_ages
    for mid, m in sorted(state.members.items()):
        age = age_on(m.birth_date, form.visit_date)
        if form.guarantees.basic_medical and m.medical_insurance is MedicalInsurance.NONE:
            add(ACCURACY, "DQ-A-MEDICAL", f"{m.name}未参加基本医疗保险，但采集表填写基本医疗有保障", mid)
        if form.guarantees.compulsory_education and low <= age <= high and m.school_status is None:
            add(ACCURACY, "DQ-A-SCHOOL", f"{m.name}{age}岁，处于义务教育阶段但不在校，采集表填写义务教育有保障", mid)
        if age < rules.section.labour_min_age and m.labour_skill in LABOUR_CAPABLE:
            add(ACCURACY, "DQ-A-LABOUR", f"{m.name}{age}岁，劳动技能填写为{m.labour_skill.value}", mid)
        if m.dibao and inc.dibao == 0:
            add(ACCURACY, "DQ-A-DIBAO", f"{m.name}享受低保，但家庭没有最低生活保障金收入", mid)
        if m.tekun and inc.tekun == 0:
            add(ACCURACY, "DQ-A-TEKUN", f"{m.name}特困供养，但家庭没有特困人员救助供养金收入", mid)
    if proposal is not None and not proposal.risks and proposal.category is not None \
            and "HOLD-RISKTYPE" in proposal.rule_ids:
        add(COMPLETENESS, "DQ-C-RISKTYPE",
            f"拟纳入监测（{proposal.category.value}）但{HOLD_NO_RISK_TYPE}：须入户查明返贫致贫原因，在采集表标注风险类型"
            "（因病、因学、因残、因自然灾害、因意外事故、因产业项目失败、因务工就业不稳、缺劳动力、其他）"
            "并填写佐证事实（合规自付医疗支出、在校生、残疾成员、务工时间、刚性支出或三保障和饮水安全情况）")
    if risk is not None and risk.consistency:
        add(ACCURACY, "DQ-A-RISK", "风险类型与事实不符：" + "；".join(e.text for e in risk.consistency))
    if state.status is MonitoringStatus.RISK_NOT_ELIMINATED and risk is not None and not risk.no_labour \
            and state.measures and state.developmental_measure is None:
        add(ACCURACY, "DQ-A-MEASURE", "有劳动力的监测对象只落实了兜底类措施，没有开发式帮扶措施（一兜了之）")
    return found
