"""The rules a household's facts must satisfy, each returning violations that name the field and say why in
Chinese. Pure: the caller gives today's date and the policy in force."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date

from povguard_contracts.intake import MemberFacts, Place, VisitForm
from povguard_contracts.vocab import (
    Health,
    HouseholdKind,
    MonitoringCategory,
    MonitoringStatus,
    Relation,
    Sex,
)
from povguard_intake.domain.idcard import birth_date_of, id_number_problems, is_male, normalise
from povguard_platform.errors import Violation
from povguard_platform.policy import Policy, amount_violations


def member_violations(facts: MemberFacts, path: str, today: date) -> list[Violation]:
    out: list[Violation] = []
    problems = id_number_problems(facts.id_number)
    out += [Violation(f"{path}.id_number", p, "id_number") for p in problems]
    if not problems:
        if birth_date_of(facts.id_number) != facts.birth_date:
            out.append(Violation(f"{path}.birth_date", f"出生日期与身份证号码不一致（号码为 "
                                 f"{birth_date_of(facts.id_number).isoformat()}）", "id_mismatch"))
        if is_male(facts.id_number) != (facts.sex == Sex.MALE):
            out.append(Violation(f"{path}.sex", "性别与身份证号码不一致", "id_mismatch"))
    if facts.birth_date > today:
        out.append(Violation(f"{path}.birth_date", "出生日期不能晚于今天", "date"))
    if (facts.education is None) == (facts.school_status is None):
        out.append(Violation(f"{path}.education", "文化程度与在校生状况必须且只能填写一项", "one_of"))
    if (facts.migrant_months is None or facts.migrant_months == 0) != (facts.migrant_place is None):
        out.append(Violation(f"{path}.migrant_place", "务工时间与务工所在地应同时填写或同时为空", "both_or_neither"))
    health = set(facts.health)
    if Health.HEALTHY in health and len(health) > 1:
        out.append(Violation(f"{path}.health", "“健康”不能与其他健康状况同时选择", "allowed_values"))
    if len(facts.health) != len(health):
        out.append(Violation(f"{path}.health", "健康状况有重复项", "allowed_values"))
    if (Health.DISABLED in health) != (facts.disability_category is not None):
        out.append(Violation(f"{path}.disability_category", "残疾成员须填写残疾类别，非残疾成员不填",
                             "both_or_neither"))
    return out


def members_violations(members: Sequence[MemberFacts], path: str, today: date) -> list[Violation]:
    """Each member's rules, plus: exactly one 户主, and no ID number twice in one household."""
    out: list[Violation] = []
    for i, facts in enumerate(members):
        out += member_violations(facts, f"{path}.{i}", today)
    heads = [i for i, m in enumerate(members) if m.relation == Relation.HEAD]
    if len(heads) != 1:
        out.append(Violation(path, f"每户必须有且只有一名户主（现有 {len(heads)} 名）", "one_head"))
    counts = Counter(normalise(m.id_number) for m in members)
    for i, m in enumerate(members):
        if counts[normalise(m.id_number)] > 1:
            out.append(Violation(f"{path}.{i}.id_number", "同一身份证号码在本户重复", "duplicate"))
    return out


def place_violations(place: Place, policy: Policy, path: str = "place") -> list[Violation]:
    out = []
    if place.county_code != policy.policy.county_code:
        out.append(Violation(f"{path}.county_code", f"不属于本县（{policy.policy.county_code}）", "place"))
    if not place.township_code.startswith(place.county_code):
        out.append(Violation(f"{path}.township_code", "乡镇代码应以县代码开头", "place"))
    if not place.village_code.startswith(place.township_code):
        out.append(Violation(f"{path}.village_code", "行政村代码应以乡镇代码开头", "place"))
    if not place.group_code.startswith(place.village_code):
        out.append(Violation(f"{path}.group_code", "村民小组代码应以行政村代码开头", "place"))
    return out


def kind_violations(kind: HouseholdKind, lifted_year: int | None, category: MonitoringCategory | None,
                    status: MonitoringStatus, policy: Policy) -> list[Violation]:
    out = []
    first, last = policy.bounds.lifted_years
    if kind == HouseholdKind.LIFTED and lifted_year is None:
        out.append(Violation("lifted_year", "脱贫户须填写脱贫年度", "required"))
    if lifted_year is not None and not first <= lifted_year <= last:
        out.append(Violation("lifted_year", f"脱贫年度应在 {first}–{last} 之间", "range"))
    if kind == HouseholdKind.ORDINARY and lifted_year is not None:
        out.append(Violation("lifted_year", "一般农户不填脱贫年度", "not_allowed"))
    if (kind == HouseholdKind.MONITORED) != (category is not None):
        out.append(Violation("category", "监测对象须填写监测对象类别，其他户类型不填", "both_or_neither"))
    monitored = status in (MonitoringStatus.RISK_NOT_ELIMINATED, MonitoringStatus.RISK_ELIMINATED)
    if (kind == HouseholdKind.MONITORED) != monitored:
        out.append(Violation("status", "监测对象的监测状态应为风险未消除或风险已消除；其他户类型为未纳入监测",
                             "inconsistent"))
    return out


def in_window(day: date, window: tuple[date, date]) -> bool:
    return window[0] <= day <= window[1]


def effective_date_violations(day: date, policy: Policy, today: date, path: str = "effective") -> list[Violation]:
    out = []
    if day > today:
        out.append(Violation(path, "变更日期不能晚于今天", "date"))
    if day.year < policy.policy.year - 5:
        out.append(Violation(path, "变更日期过早", "date"))
    return out


def visit_violations(form: VisitForm, policy: Policy, today: date, path: str = "form") -> list[Violation]:
    out: list[Violation] = []
    window = policy.calendar.campaign_window
    if not in_window(form.visit_date, window):
        out.append(Violation(f"{path}.visit_date", f"调查日期应在本次排查期间（{window[0]} 至 {window[1]}）", "window"))
    if form.visit_date > today:
        out.append(Violation(f"{path}.visit_date", "调查日期不能晚于今天", "date"))
    out += amount_violations(form, policy.bounds.max_line_amount, path)
    if form.income.public_welfare_job_income > form.income.wages:
        out.append(Violation(f"{path}.income.public_welfare_job_income", "公益性岗位收入不能超过工资性收入", "range"))
    if form.income.asset_dividend > form.income.property:
        out.append(Violation(f"{path}.income.asset_dividend", "资产收益分红不能超过财产性收入", "range"))
    if len(set(form.risks_noted)) != len(form.risks_noted):
        out.append(Violation(f"{path}.risks_noted", "风险类型有重复项", "allowed_values"))
    return out
