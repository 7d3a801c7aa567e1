"""The outcome proposal: one of the eight outcomes of seed §三(五) (or 无变化), with the category of a new
monitoring object, the rule ids that led there and a rationale in Chinese.

Rule ids:
- OUT-NEW-UNSTABLE / OUT-NEW-MARGINAL: 人均纯收入 under the monitoring line with a risk → 新识别监测对象 as
  脱贫不稳定户 (a 脱贫户) or 边缘易致贫户 (an ordinary household).
- OUT-NEW-SUDDEN: income above the line, but rigid spending or a sharp income fall leaves less than the line per
  person → 新识别监测对象, 突发严重困难户.
- OUT-NEW-GAP: income above the line, but a 两不愁三保障 or drinking-water gap (a 返贫致贫风险 whatever the
  income, seed §二(一)1) → 新识别监测对象 as 脱贫不稳定户 or 边缘易致贫户 by the household's kind (风险再标注 or
  回退 in 回头看).
- OUT-REMOVE: a monitoring object above the line whose declared assets contradict need → 识别不精准整户清退.
- OUT-ELIMINATE: income stably above the line, no heavy rigid spending, 三保障 and water secured, some labour
  force → 拟风险消除 (帮扶消除 with an implemented developmental measure, else 自然消除).
- OUT-NOLABOUR-KEEP: 整户无劳动力 is never proposed for elimination; OUT-FURTHER: otherwise 风险未消除拟进一步帮扶.
- 回头看 of households 风险已消除: OUT-LOOKBACK-NEWRISK → 风险再标注; OUT-LOOKBACK-UNSTABLE and
  OUT-LOOKBACK-NOLABOUR → 风险消除不稳定回退; OUT-LOOKBACK-STABLE → 无变化 (keep).
- OUT-INCOME-TARGET: 一般农户 from 7,000 to under 10,000 → 万元以下户户增收帮扶对象 (not a monitoring object).
- OUT-NATURAL: members joined or left for natural reasons in the campaign → 自然变更.
- TARGET-3Y: 脱贫户 and monitoring objects under 10,000 get a three-year support target.
- HOLD-AUTH: a household to be newly identified or re-marked whose latest visit lacks a signed 授权承诺书 is held.
- HOLD-RISKTYPE: a household to be newly identified without any 返贫致贫风险 found is held: the national form needs a
  主要风险类型 for every monitoring object, so the collector must establish one first (a DQ-C-RISKTYPE problem)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from povguard_contracts.intake import VisitForm
from povguard_contracts.numbers import fen
from povguard_contracts.vocab import (
    EliminationMethod,
    HouseholdKind,
    MonitoringCategory,
    MonitoringStatus,
    Outcome,
    RiskType,
)
from povguard_rules.facts import NATURAL_REASONS, HouseholdFacts
from povguard_rules.income import IncomeResult
from povguard_rules.policy import Rules
from povguard_rules.risks import RiskResult

HOLD_NO_AUTHORISATION = "未签署授权承诺书"
HOLD_NO_RISK_TYPE = "未确定主要风险类型"


@dataclass(frozen=True)
class Proposal:
    outcome: Outcome
    category: MonitoringCategory | None
    risks: list[RiskType]
    rule_ids: list[str]
    rationale: str
    elimination_method: EliminationMethod | None = None
    three_year_target: bool = False
    income_increase_target: bool = False
    held: bool = False
    hold_reason: str | None = None
    lead_date: date | None = None
    conditions: dict[str, bool] = field(default_factory=dict)


def wealth_markers(form: VisitForm, vehicle_limit: Decimal) -> list[str]:
    markers = [f"车辆{v.kind}估值{v.value:.0f}元" for v in form.assets.vehicles if v.value >= vehicle_limit]
    markers += [f"经营实体{b.name}" for b in form.assets.businesses]
    markers += [f"本宅以外房产（{p.kind}）" for p in form.assets.properties]
    return markers


def lead_date_of(state: HouseholdFacts, visit_date: date, rules: Rules) -> date:
    """The 15-day clock: the earliest lead of the campaign still open (opened after the last decision), else the
    visit date."""
    start, end = rules.policy.calendar.campaign_window
    open_leads = [d for _, d in state.leads if start <= d <= end and (state.decided_on is None or d > state.decided_on)]
    return min(open_leads) if open_leads else visit_date


def propose(state: HouseholdFacts, form: VisitForm, income: IncomeResult, risk: RiskResult, rules: Rules) -> Proposal:
    line, section = rules.line, rules.section
    pc = income.per_capita
    in_range = pc < line
    pressures = [e for e in (risk.rigid_heavy, risk.income_drop) if e is not None]
    size = max(income.household_size, 1)
    after_rigid = fen(pc - risk.rigid_spending / size)
    sudden = not in_range and bool(pressures) and after_rigid < line
    method = EliminationMethod.SUPPORTED if state.developmental_measure else EliminationMethod.NATURAL
    stable_days = section.stable_monitoring_days
    monitored_long = state.status_since is None or (form.visit_date - state.status_since).days >= stable_days
    previous_ok = income.previous_per_capita is None or income.previous_per_capita >= line
    conditions = {
        "收入稳定高于监测范围": pc >= line * (1 + section.stable_margin) and previous_ok and risk.income_drop is None,
        "监测满半年": monitored_long,
        "无大额刚性支出": risk.rigid_heavy is None,
        "三保障和饮水安全有保障": not risk.gaps,
        "有劳动力": not risk.no_labour,
    }
    types = risk.types
    monitored = state.status in (MonitoringStatus.RISK_NOT_ELIMINATED, MonitoringStatus.RISK_ELIMINATED) or (
        state.kind is HouseholdKind.MONITORED and state.status is not MonitoringStatus.REMOVED)
    three_year = (state.kind in (HouseholdKind.LIFTED, HouseholdKind.MONITORED) or monitored) and \
        pc < rules.policy.income.three_year_goal_below
    gaps_text = f"；三保障和饮水安全未保障：{'、'.join(risk.gaps)}" if risk.gaps else ""
    risks_text = "、".join(t.value for t in types) or "无"
    pc_text = f"人均纯收入{pc:.0f}元"

    def lifted_or_ordinary() -> MonitoringCategory:
        lifted = state.kind is HouseholdKind.LIFTED or state.lifted_year is not None
        return MonitoringCategory.UNSTABLE_LIFTED if lifted else MonitoringCategory.MARGINAL

    def identify(outcome: Outcome, prefix: str, extra_rules: list[str]) -> Proposal:
        found = f"存在风险（{risks_text}）" if types else f"{HOLD_NO_RISK_TYPE}，须入户核实"
        if in_range:
            category = lifted_or_ordinary()
            rule = "OUT-NEW-UNSTABLE" if category is MonitoringCategory.UNSTABLE_LIFTED else "OUT-NEW-MARGINAL"
            why = f"{pc_text}，低于监测范围{line:.0f}元，{found}{gaps_text}"
        elif sudden:
            category, rule = MonitoringCategory.SUDDEN_HARDSHIP, "OUT-NEW-SUDDEN"
            why = (f"{pc_text}高于监测范围，但{'；'.join(e.text for e in pressures)}，扣除刚性支出后人均"
                   f"{after_rigid:.0f}元，低于监测范围{line:.0f}元，基本生活出现严重困难")
        else:
            category, rule = lifted_or_ordinary(), "OUT-NEW-GAP"
            why = f"{pc_text}高于监测范围，但{gaps_text.lstrip('；')}，存在返贫致贫风险（{risks_text}）"
        holds = [(not form.authorisation_signed, "HOLD-AUTH", HOLD_NO_AUTHORISATION),
                 (not types, "HOLD-RISKTYPE", HOLD_NO_RISK_TYPE)]
        held = [(rule_id, reason) for on, rule_id, reason in holds if on]
        goal = pc < rules.policy.income.three_year_goal_below
        return Proposal(outcome, category, types, [*extra_rules, rule, *(["TARGET-3Y"] if goal else []),
                                                   *(r for r, _ in held)],
                        f"{prefix}{why}，建议{outcome.value}（{category.value}）",
                        three_year_target=goal, held=bool(held),
                        hold_reason="；".join(reason for _, reason in held) or None,
                        lead_date=lead_date_of(state, form.visit_date, rules), conditions=conditions)

    # 应纳尽纳: income under the line qualifies by itself (held until a risk type is established); a 两不愁三保障 or
    # drinking-water gap is a risk whatever the income
    qualifies = in_range or sudden or bool(risk.gaps)
    if state.status is MonitoringStatus.RISK_ELIMINATED:  # 回头看
        new_types = [t for t in types if t not in state.decided_risks and t is not RiskType.LACK_OF_LABOUR]
        if risk.no_labour:
            return Proposal(Outcome.ELIMINATION_ROLLED_BACK, state.category, types,
                            ["OUT-LOOKBACK-NOLABOUR", *(["TARGET-3Y"] if three_year else [])],
                            f"回头看：已标注风险消除，但整户无劳动力，{pc_text}，建议风险消除不稳定回退",
                            three_year_target=three_year, conditions=conditions)
        if qualifies and new_types:
            new_text = "、".join(t.value for t in new_types)
            return identify(Outcome.RE_MARKED, f"回头看：已标注风险消除，出现新风险（{new_text}），",
                            ["OUT-LOOKBACK-NEWRISK"])
        if not all(v for k, v in conditions.items() if k != "监测满半年"):
            failed = "、".join(k for k, v in conditions.items() if not v and k != "监测满半年")
            return Proposal(Outcome.ELIMINATION_ROLLED_BACK, state.category, types,
                            ["OUT-LOOKBACK-UNSTABLE", *(["TARGET-3Y"] if three_year else [])],
                            f"回头看：已标注风险消除，但不满足：{failed}（{pc_text}）{gaps_text}，建议风险消除不稳定回退",
                            three_year_target=three_year, conditions=conditions)
        return Proposal(Outcome.NO_CHANGE, state.category, types, ["OUT-LOOKBACK-STABLE",
                                                                   *(["TARGET-3Y"] if three_year else [])],
                        f"回头看：{pc_text}，收入稳定，三保障和饮水安全有保障，保持风险消除",
                        three_year_target=three_year, conditions=conditions)

    if state.status is MonitoringStatus.RISK_NOT_ELIMINATED:
        markers = wealth_markers(form, section.vehicle_value_limit)
        if markers and not in_range and not sudden:
            return Proposal(Outcome.REMOVED_WRONGLY_IDENTIFIED, state.category, types, ["OUT-REMOVE"],
                            f"{pc_text}，高于监测范围，且有{'、'.join(markers)}，识别不精准，建议整户清退",
                            conditions=conditions)
        if risk.no_labour:
            return Proposal(Outcome.FURTHER_SUPPORT, state.category, types,
                            ["OUT-NOLABOUR-KEEP", *(["TARGET-3Y"] if three_year else [])],
                            f"整户无劳动力，不标注风险消除，{pc_text}，继续监测帮扶（落实兜底保障）",
                            three_year_target=three_year, conditions=conditions)
        if all(conditions.values()):
            return Proposal(Outcome.RISK_ELIMINATION, state.category, types,
                            ["OUT-ELIMINATE", *(["TARGET-3Y"] if three_year else [])],
                            f"{pc_text}，稳定高于监测范围{line:.0f}元，无大额刚性支出，三保障和饮水安全有保障，"
                            f"建议拟风险消除（{method.value}）",
                            elimination_method=method, three_year_target=three_year, conditions=conditions)
        failed = "、".join(k for k, v in conditions.items() if not v)
        return Proposal(Outcome.FURTHER_SUPPORT, state.category, types,
                        ["OUT-FURTHER", *(["TARGET-3Y"] if three_year else [])],
                        f"{pc_text}，风险（{risks_text}）未消除，不满足：{failed}{gaps_text}，建议进一步帮扶",
                        three_year_target=three_year, conditions=conditions)

    # not (or no longer) a monitoring object: 脱贫户 or 一般农户
    if qualifies:
        return identify(Outcome.NEWLY_IDENTIFIED, "", [])
    increase = (state.kind is HouseholdKind.ORDINARY
                and rules.policy.income.income_increase_from <= pc < rules.policy.income.three_year_goal_below)
    if increase:
        return Proposal(Outcome.INCOME_INCREASE_TARGET, None, types, ["OUT-INCOME-TARGET"],
                        f"一般农户{pc_text}，在{rules.policy.income.income_increase_from:.0f}元至"
                        f"{rules.policy.income.three_year_goal_below:.0f}元之间，列为万元以下户户增收帮扶对象（不公示）",
                        income_increase_target=True, conditions=conditions)
    start, end = rules.policy.calendar.campaign_window
    natural = [c for c in state.changes if c.reason in NATURAL_REASONS and start <= c.effective <= end]
    target = ["TARGET-3Y"] if three_year else []
    if natural:
        what = "、".join(sorted({c.reason.value for c in natural}))
        return Proposal(Outcome.NATURAL_CHANGE, None, types, ["OUT-NATURAL", *target],
                        f"本次排查期间家庭成员自然变更（{what}），{pc_text}，不需纳入监测",
                        three_year_target=three_year, conditions=conditions)
    return Proposal(Outcome.NO_CHANGE, None, types, ["OUT-NONE", *target],
                    f"{pc_text}，高于监测范围，无需纳入监测"
                    + ("，脱贫户人均纯收入不足1万元，列入三年帮扶目标" if three_year else ""),
                    three_year_target=three_year, conditions=conditions)

