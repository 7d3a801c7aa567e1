"""Every rule of the national form, as a pure function (no servers)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from intake_helpers import make_id, member
from stdnum.cn import ric

from povguard_contracts.intake import MemberFacts, Place, VisitForm
from povguard_contracts.vocab import HouseholdKind, MonitoringCategory, MonitoringStatus
from povguard_intake.domain.idcard import id_number_problems, mask
from povguard_intake.domain.rules import (
    kind_violations,
    member_violations,
    members_violations,
    place_violations,
    visit_violations,
)
from povguard_platform.policy import load_policy

POLICY = load_policy("533123-2022")
TODAY = date(2022, 6, 1)


def facts(**over: Any) -> MemberFacts:
    return MemberFacts.model_validate(member(**over))


def fields(violations: list[Any]) -> set[str]:
    return {v.field for v in violations}


def test_a_valid_member_passes() -> None:
    assert member_violations(facts(), "m", TODAY) == []


def with_check(body: str) -> str:
    return body + ric.calc_check_digit(body + "0")


@pytest.mark.parametrize(("number", "message"), [
    ("53312319750309001", "18位"),
    ("53312319750309A011", "前17位"),
    ("533123197503090010", "校验码"),
    (with_check("53312319751309001"), "出生日期"),
    (with_check("99999919750309001"), "地区代码"),
])
def test_id_number_check_character_birth_date_and_region(number: str, message: str) -> None:
    problems = id_number_problems(number)
    assert problems and message in problems[0], problems


def test_generated_numbers_are_valid_and_masked_for_lists() -> None:
    number = make_id(date(1990, 1, 2), male=False)
    assert id_number_problems(number) == []
    assert mask(number) == number[:6] + "********" + number[-4:]


def test_birth_date_and_sex_must_match_the_id_number() -> None:
    f = facts(birth=date(1975, 3, 9), male=True)
    wrong = f.model_copy(update={"birth_date": date(1975, 3, 10), "sex": "女"})
    assert fields(member_violations(wrong, "m", TODAY)) == {"m.birth_date", "m.sex"}


def test_exactly_one_of_education_and_school_status() -> None:
    both = facts(school_status="小学")
    neither = facts(education=None)
    assert fields(member_violations(both, "m", TODAY)) == {"m.education"}
    assert fields(member_violations(neither, "m", TODAY)) == {"m.education"}


def test_migrant_months_and_place_both_or_neither() -> None:
    assert fields(member_violations(facts(migrant_months=6), "m", TODAY)) == {"m.migrant_place"}
    assert fields(member_violations(facts(migrant_place="省外"), "m", TODAY)) == {"m.migrant_place"}
    assert member_violations(facts(migrant_months=6, migrant_place="省外"), "m", TODAY) == []


def test_health_combinations_and_disability_category() -> None:
    assert fields(member_violations(facts(health=["健康", "残疾"], disability_category="肢体残疾"), "m", TODAY)) == {
        "m.health"}
    assert fields(member_violations(facts(health=["残疾"]), "m", TODAY)) == {"m.disability_category"}
    assert fields(member_violations(facts(disability_category="肢体残疾"), "m", TODAY)) == {"m.disability_category"}
    assert member_violations(facts(health=["长期慢性病", "残疾"], disability_category="肢体残疾"), "m", TODAY) == []


def test_exactly_one_head_and_no_id_twice_in_a_household() -> None:
    head, spouse = facts(), facts(relation="配偶", male=False, birth=date(1980, 1, 1))
    assert fields(members_violations([head, spouse], "members", TODAY)) == set()
    assert fields(members_violations([spouse], "members", TODAY)) == {"members"}
    assert fields(members_violations([head, head.model_copy(update={"relation": "之子"})], "members", TODAY)) == {
        "members.0.id_number", "members.1.id_number"}


def test_allowed_values_only() -> None:
    with pytest.raises(ValueError, match="relation"):
        facts(relation="邻居")


def test_place_codes_nest_and_belong_to_the_county() -> None:
    good = Place(county_code="533123", county="盈江县", township_code="533123101", township="旧城镇",
                 village_code="533123101201", village="村", group_code="533123101201001", group="一组")
    assert place_violations(good, POLICY) == []
    bad = good.model_copy(update={"county_code": "533122", "village_code": "533123102201"})
    assert fields(place_violations(bad, POLICY)) == {"place.county_code", "place.township_code",
                                                     "place.village_code", "place.group_code"}


def test_household_kind_needs_its_facts() -> None:
    def k(kind: HouseholdKind, year: int | None, cat: MonitoringCategory | None, st: MonitoringStatus) -> set[str]:
        return fields(kind_violations(kind, year, cat, st, POLICY))

    assert k(HouseholdKind.LIFTED, 2020, None, MonitoringStatus.NOT_MONITORED) == set()
    assert k(HouseholdKind.LIFTED, None, None, MonitoringStatus.NOT_MONITORED) == {"lifted_year"}
    assert k(HouseholdKind.LIFTED, 2021, None, MonitoringStatus.NOT_MONITORED) == {"lifted_year"}
    assert k(HouseholdKind.MONITORED, None, None, MonitoringStatus.NOT_MONITORED) == {"category", "status"}
    assert k(HouseholdKind.ORDINARY, None, MonitoringCategory.MARGINAL, MonitoringStatus.NOT_MONITORED) == {
        "category"}


def _form(**over: Any) -> VisitForm:
    from intake_helpers import visit_form

    return VisitForm.model_validate(visit_form(**over))


def test_visit_dates_inside_the_campaign_window_and_amounts_within_bounds() -> None:
    assert visit_violations(_form(), POLICY, TODAY) == []
    assert fields(visit_violations(_form(visit_date="2021-12-01"), POLICY, TODAY)) == {"form.visit_date"}
    huge = _form(income={"wages": 5_000_000, "public_welfare_job_income": 6_000_000})
    assert fields(visit_violations(huge, POLICY, TODAY)) == {
        "form.income.wages", "form.income.public_welfare_job_income"}
    with pytest.raises(ValueError, match="greater_than_equal"):
        _form(income={"wages": -1})
