"""The synthetic county generator: deterministic, valid by the registry's rules except where it breaks them on
purpose (and then exactly as its truth says), shaped like a poor mountain county, and written in the import template."""

from __future__ import annotations

import csv
import hashlib
import os
import random
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from stdnum.cn import ric

from povguard_contracts.numbers import fen
from povguard_contracts.template import BY_HEADER, HEADERS
from povguard_contracts.vocab import (
    LABOUR_CAPABLE,
    Health,
    HouseholdKind,
    MonitoringCategory,
    MonitoringStatus,
    PriorityGroup,
    Relation,
    RiskType,
)
from povguard_intake.domain import rules
from povguard_platform.policy import load_policy
from povguard_tools.synthetic import County, Scenario, generate_county, generate_to, write_campaign, write_registry
from povguard_tools.synthetic.income import net_income
from povguard_tools.synthetic.people import check_character, make_id_number
from povguard_tools.synthetic.places import TOWNSHIPS
from povguard_tools.synthetic.scenarios import DISASTER_IN_ONE_TOWNSHIP, count_for
from povguard_tools.synthetic.template_io import problem_rows
from povguard_tools.synthetic.visits import VISITS

TODAY = date(2022, 6, 1)
BIG = 5000


@pytest.fixture(scope="module")
def county() -> County:
    return generate_county(BIG, seed=20220430)


@pytest.fixture(scope="module")
def small() -> County:
    return generate_county(300, seed=7)


def _csv_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))


# --- determinism --------------------------------------------------------------------------------------------------


def test_same_seed_gives_the_same_files(tmp_path: Path) -> None:
    for run in ("a", "b"):
        random.seed(run)  # the global generator must not matter
        c = generate_county(300, seed=42)
        write_registry(c, tmp_path / f"{run}.csv")
        write_campaign(c, tmp_path / run)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    for name in ("visits", "warnings", "checks", "truth"):
        assert (tmp_path / "a" / f"{name}.jsonl").read_bytes() == (tmp_path / "b" / f"{name}.jsonl").read_bytes()


def test_different_seed_gives_a_different_county(tmp_path: Path) -> None:
    write_registry(generate_county(300, seed=1), tmp_path / "one.csv")
    write_registry(generate_county(300, seed=2), tmp_path / "two.csv")
    assert (tmp_path / "one.csv").read_bytes() != (tmp_path / "two.csv").read_bytes()


def test_same_county_in_another_process_with_another_hash_seed(tmp_path: Path) -> None:
    """No dependence on string-hash order (sets of strings) or the clock."""
    script = ("import sys, hashlib; from pathlib import Path; from povguard_tools.synthetic import *; "
              "p = Path(sys.argv[1]); write_registry(generate_county(200, seed=5), p); "
              "print(hashlib.sha256(p.read_bytes()).hexdigest())")
    digests = set()
    for hash_seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", script, str(tmp_path / f"{hash_seed}.csv")], check=True,
                             capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": hash_seed})
        digests.add(out.stdout.strip())
    write_registry(generate_county(200, seed=5), tmp_path / "here.csv")
    digests.add(hashlib.sha256((tmp_path / "here.csv").read_bytes()).hexdigest())
    assert len(digests) == 1


# --- ID numbers ---------------------------------------------------------------------------------------------------


def test_make_id_number_matches_the_standards_examples() -> None:
    # the two examples of GB 11643-1999
    assert make_id_number("110105", date(1949, 12, 31), 0, male=False) == "11010519491231002X"
    assert make_id_number("440524", date(1880, 1, 1), 0, male=True) == "440524188001010014"
    assert check_character("53312319800101123") == ric.calc_check_digit("53312319800101123?")
    with pytest.raises(ValueError):
        make_id_number("5331", date(1980, 1, 1), 0, male=True)
    with pytest.raises(ValueError):
        make_id_number("533123", date(1980, 1, 1), 499, male=True)


def test_every_id_number_is_valid_of_the_region_and_matches_birth_and_sex(county: County) -> None:
    for h in county.households:
        for m in h.members:
            assert ric.validate(m.id_number) == m.id_number
            assert m.id_number.startswith("533123")
            assert ric.get_birth_date(m.id_number) == m.birth_date
            assert (int(m.id_number[16]) % 2 == 1) == (m.sex == "男")
            assert ric.get_birth_place(m.id_number)["county"] == "盈江县"


def test_id_numbers_are_unique_except_the_deliberate_duplicates(county: County) -> None:
    where: defaultdict[str, list[str]] = defaultdict(list)
    for h in county.households:
        for m in h.members:
            where[m.id_number].append(h.code)
    reused = {n: codes for n, codes in where.items() if len(codes) > 1}
    recorded = {h.truth.duplicate.id_number for h in county.households if h.truth.duplicate is not None}
    assert set(reused) == recorded
    assert all(len(codes) == 2 and codes[0] != codes[1] for codes in reused.values())


# --- the registry's rules -----------------------------------------------------------------------------------------


def test_every_household_passes_the_registry_rules(county: County) -> None:
    policy = load_policy("533123-2022")
    for h in county.households:
        found = rules.members_violations(list(h.members), "members", TODAY)
        found += rules.place_violations(h.place, policy)
        found += rules.kind_violations(h.kind, h.lifted_year, h.category, h.status, policy)
        found += rules.visit_violations(h.visit, policy, TODAY)
        assert found == [], (h.code, found)


def test_families_are_plausible(county: County) -> None:
    sizes = [len(h.members) for h in county.households]
    assert 3.8 <= statistics.mean(sizes) <= 4.8
    for h in county.households:
        assert [m.relation for m in h.members].count(Relation.HEAD) == 1
        assert h.members[0].relation == Relation.HEAD
        head = h.members[0]
        for m in h.members:
            if m.relation in (Relation.SON, Relation.DAUGHTER):
                assert m.birth_date > head.birth_date or h.members[0] is m
            if m.relation in (Relation.FATHER, Relation.MOTHER):
                assert m.birth_date < head.birth_date
            if m.relation == Relation.SPOUSE:
                assert m.sex != head.sex
            if (m.migrant_months is None) != (m.migrant_place is None):
                raise AssertionError(m)
            if m.labour_skill in LABOUR_CAPABLE:
                assert m.school_status is None
    names = Counter(m.name[0] for h in county.households for m in h.members)
    assert {"线", "刀", "排", "岳", "余", "李", "杨"} <= set(names)
    ethnicities = Counter(m.ethnicity for h in county.households for m in h.members)
    assert {"汉族", "傣族", "景颇族", "傈僳族"} <= set(ethnicities)


def test_place_codes_nest_and_cover_the_county(county: County) -> None:
    names = {t.code: t.name for t in TOWNSHIPS}
    assert len(names) == 15
    assert len(set(names.values())) == 15
    seen_townships = set()
    for h in county.households:
        p = h.place
        assert p.county_code == "533123"
        assert p.county == "盈江县"
        assert names[p.township_code] == p.township
        assert len(p.village_code) == 12 and p.village_code.startswith(p.township_code)
        assert len(p.group_code) == 15 and p.group_code.startswith(p.village_code)
        assert h.code.startswith(p.group_code)
        seen_townships.add(p.township_code)
    assert seen_townships == set(names)
    assert 90 <= county.villages <= 110
    assert len({h.code for h in county.households}) == len(county.households)
    village_names = {(h.place.village_code, h.place.village) for h in county.households}
    assert len({code for code, _ in village_names}) == len(village_names)


# --- shape of the county ------------------------------------------------------------------------------------------


def test_household_kinds_and_monitoring_objects(county: County) -> None:
    n = len(county.households)
    kinds = Counter(h.kind for h in county.households)
    assert 0.25 <= kinds[HouseholdKind.LIFTED] / n <= 0.30
    assert 0.025 <= kinds[HouseholdKind.MONITORED] / n <= 0.035
    lifted = [h for h in county.households if h.kind == HouseholdKind.LIFTED]
    assert all(2014 <= (h.lifted_year or 0) <= 2020 for h in lifted)
    assert sum(h.lifted_year == 2020 for h in lifted) / len(lifted) >= 0.15
    for h in county.households:
        assert (PriorityGroup.LIFTED_2020 in h.flags) == (h.lifted_year == 2020)
        if h.category == MonitoringCategory.UNSTABLE_LIFTED:
            assert h.lifted_year is not None
    monitored = [h for h in county.households if h.kind == HouseholdKind.MONITORED]
    assert {h.category for h in monitored} == set(MonitoringCategory)
    statuses = Counter(h.status for h in monitored)
    assert statuses[MonitoringStatus.RISK_ELIMINATED] > 0.3 * len(monitored)
    assert statuses[MonitoringStatus.RISK_NOT_ELIMINATED] > 0.3 * len(monitored)


def test_incomes_look_like_a_poor_mountain_county(county: County) -> None:
    per_capita = [h.truth.per_capita for h in county.households]
    n = len(per_capita)

    def share(low: float, high: float) -> float:
        return sum(low <= x < high for x in per_capita) / n

    assert share(6000, 20000) >= 0.7
    assert 0.04 <= share(-1e9, 7000) <= 0.15
    assert 0.12 <= share(7000, 10000) <= 0.25
    assert 10000 <= statistics.median(per_capita) <= 16000
    by_kind = {k: statistics.median(h.truth.per_capita for h in county.households if h.kind == k)
               for k in HouseholdKind}
    assert by_kind[HouseholdKind.LIFTED] < by_kind[HouseholdKind.ORDINARY]
    wages = sum(h.visit.income.wages for h in county.households)
    farming = sum(h.visit.income.business for h in county.households)
    transfers = sum(h.visit.income.pension + h.visit.income.dibao + h.visit.income.tekun for h in county.households)
    assert wages > transfers and farming > transfers > 0


def test_truth_income_is_the_domain_formula(county: County) -> None:
    for h in county.households:
        i, s = h.visit.income, h.visit.spending
        by_hand = (i.wages + i.business + i.property + i.pension + i.family_planning + i.eco_compensation + i.dibao
                   + i.tekun + i.other_transfer + i.industry_reward + i.employment_reward + i.insurance_claims
                   - s.business_expense)
        assert h.truth.net_income == net_income(i, s) == by_hand
        assert net_income(i, s, rewards=False, claims=False) == by_hand - (
            i.industry_reward + i.employment_reward + i.insurance_claims)
        assert Decimal(str(h.truth.per_capita)) == fen(by_hand / len(h.members))  # as the rules round
        assert any(m.dibao for m in h.members) == (i.dibao > 0)
        assert any(m.tekun for m in h.members) == (i.tekun > 0)


def test_visits_fall_in_the_campaign(county: County) -> None:
    for h in county.households:
        assert VISITS[0] <= h.visit.visit_date <= VISITS[1]
        assert h.visit.application_signed == h.visit.authorisation_signed
    assert sum(h.visit.application_signed for h in county.households) > 0


# --- situations and deliberate problems ---------------------------------------------------------------------------


def _labelled(county: County, label: Scenario) -> list[str]:
    return [h.code for h in county.households if label in h.truth.labels]


@pytest.mark.parametrize("label", [Scenario.SERIOUS_ILLNESS, Scenario.SHARP_INCOME_FALL, Scenario.DISASTER,
                                   Scenario.UNSAFE_HOUSING, Scenario.CHILD_OUT_OF_SCHOOL, Scenario.UNSAFE_WATER,
                                   Scenario.UNINSURED_MEMBER, Scenario.INCOMPLETE_FORM])
def test_each_situation_appears_in_its_stated_share(county: County, label: Scenario) -> None:
    assert len(_labelled(county, label)) == count_for(label, BIG)


def test_shares_of_the_deliberate_problems(county: County) -> None:
    assert len(_labelled(county, Scenario.INCOMPLETE_FORM)) == round(0.01 * BIG)
    assert len(_labelled(county, Scenario.DUPLICATE_ID)) == 2 * count_for(Scenario.DUPLICATE_ID, BIG)
    assert abs(len(_labelled(county, Scenario.DUPLICATE_ID)) / BIG - 0.003) < 0.001
    for h in county.households:
        problems = {Scenario.INCOMPLETE_FORM, Scenario.DUPLICATE_ID} & set(h.truth.labels)
        assert len(problems) <= 1
        if problems:  # data problems only on households with no other situation
            assert set(h.truth.labels) <= problems | {Scenario.NO_LABOUR, Scenario.CHECK_HIT}


def test_situations_show_in_the_facts(county: County) -> None:
    for h in county.households:
        labels, g, form = set(h.truth.labels), h.visit.guarantees, h.visit
        assert (Scenario.UNSAFE_HOUSING in labels) == (not g.housing_safe)
        assert (Scenario.CHILD_OUT_OF_SCHOOL in labels) == (not g.compulsory_education)
        assert (Scenario.UNSAFE_WATER in labels) == (not g.drinking_water_safe)
        assert (Scenario.UNINSURED_MEMBER in labels) == (not g.basic_medical)
        assert (Scenario.NO_LABOUR in labels) == (not any(m.labour_skill in LABOUR_CAPABLE for m in h.members))
        if Scenario.NO_LABOUR in labels:
            assert RiskType.LACK_OF_LABOUR in form.risks_noted
        if Scenario.SERIOUS_ILLNESS in labels:
            assert any(Health.SERIOUS_ILLNESS in m.health for m in h.members)
            assert form.spending.medical_out_of_pocket >= 15000
            assert RiskType.ILLNESS in form.risks_noted
        if Scenario.DISASTER in labels:
            assert RiskType.NATURAL_DISASTER in form.risks_noted
            assert any(r.kind == RiskType.NATURAL_DISASTER for r in form.spending.other_rigid)
        if Scenario.SHARP_INCOME_FALL in labels:
            assert h.truth.previous_per_capita is not None
            assert h.truth.per_capita <= 0.66 * h.truth.previous_per_capita
        else:
            assert h.truth.previous_per_capita is None
        if RiskType.UNSTABLE_EMPLOYMENT in form.risks_noted:
            assert any(m.labour_skill in LABOUR_CAPABLE for m in h.members)


def test_disasters_are_concentrated_in_one_township(county: County) -> None:
    hit = [h for h in county.households if Scenario.DISASTER in h.truth.labels]
    local = [h for h in hit if h.place.township_code == county.disaster_township]
    assert len(local) >= DISASTER_IN_ONE_TOWNSHIP * len(hit) - 1
    in_township = sum(h.place.township_code == county.disaster_township for h in county.households)
    assert len(local) / in_township > 10 * (len(hit) - len(local)) / (len(county.households) - in_township)


def test_an_import_would_report_exactly_the_broken_rows(county: County, tmp_path: Path) -> None:
    path = tmp_path / "county.csv"
    write_registry(county, path)
    rows = _csv_rows(path)
    assert rows[0] == HEADERS
    required = [i for i, h in enumerate(HEADERS) if BY_HEADER[h].required]
    incomplete = {n for n, row in enumerate(rows[1:], start=2) if any(row[i] == "" for i in required)}
    id_col, code_col = HEADERS.index("证件号码"), HEADERS.index("户编号")
    households_of: defaultdict[str, set[str]] = defaultdict(set)
    for row in rows[1:]:
        households_of[row[id_col]].add(row[code_col])
    duplicated = {n for n, row in enumerate(rows[1:], start=2)
                  if row[id_col] and len(households_of[row[id_col]]) > 1}
    expected = problem_rows(county)
    assert incomplete == {n for n, why in expected.items() if why == Scenario.INCOMPLETE_FORM}
    assert duplicated == {n for n, why in expected.items() if why == Scenario.DUPLICATE_ID}
    assert len(incomplete) == len(_labelled(county, Scenario.INCOMPLETE_FORM))


# --- departments --------------------------------------------------------------------------------------------------


def test_warnings_point_at_real_members_or_at_strangers(county: County) -> None:
    members = {h.code: {m.id_number: m.name for m in h.members} for h in county.households}
    registered = {n for ids in members.values() for n in ids}
    strangers = 0
    for w in county.warnings:
        assert ric.is_valid(w.id_number)
        assert date(2021, 5, 1) <= w.occurred_on <= date(2022, 5, 5)
        if w.household_code is None:
            strangers += 1
            assert w.id_number not in registered
        else:
            assert members[w.household_code][w.id_number] == w.person_name
    assert strangers > 0
    assert len({w.source_ref for w in county.warnings}) == len(county.warnings)
    sick = set(_labelled(county, Scenario.SERIOUS_ILLNESS))
    medical = {w.household_code for w in county.warnings if w.kind == "大额医疗支出"}
    assert len(sick & medical) >= 0.8 * len(sick)


def test_check_hits_name_members_of_labelled_households(county: County) -> None:
    by_code = {h.code: h for h in county.households}
    hit_codes = set()
    for c in county.checks:
        h = by_code[c.household_code]
        for hit in c.hits:
            hit_codes.add(c.household_code)
            assert any(m.id_number == hit.id_number and m.name == hit.person_name for m in h.members)
    assert hit_codes == set(_labelled(county, Scenario.CHECK_HIT))
    assert {hit.kind for c in county.checks for hit in c.hits} == {"车辆", "国家公职人员", "经营实体"}
    signed = {h.code for h in county.households if h.visit.authorisation_signed}
    assert signed <= {c.household_code for c in county.checks}


# --- files --------------------------------------------------------------------------------------------------------


def test_xlsx_reads_back_as_the_template(tmp_path: Path) -> None:
    c = generate_county(200, seed=3)
    write_registry(c, tmp_path / "r.xlsx")
    write_registry(c, tmp_path / "r.csv")
    expected = _csv_rows(tmp_path / "r.csv")
    for name in ("r.xlsx",):
        wb = openpyxl.load_workbook(tmp_path / name, read_only=True)
        rows = [["" if v is None else str(v) for v in row] for row in wb.active.iter_rows(values_only=True)]
        wb.close()
        rows = [row + [""] * (len(HEADERS) - len(row)) for row in rows]  # openpyxl's own files end rows early
        assert rows[0] == HEADERS
        assert len(rows) == 1 + c.members
        assert rows == expected
    full = openpyxl.load_workbook(tmp_path / "r.xlsx").active
    assert full["K2"].value is None or isinstance(full["K2"].value, int)  # 脱贫年度 is a number
    assert isinstance(full.cell(2, HEADERS.index("证件号码") + 1).value, str)  # ID numbers stay text


def test_generate_to_writes_the_registry_and_the_campaign(tmp_path: Path) -> None:
    c = generate_to(tmp_path / "out" / "yingjiang.csv", households=150, seed=9)
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["yingjiang.checks.jsonl", "yingjiang.csv", "yingjiang.truth.jsonl",
                       "yingjiang.visits.jsonl", "yingjiang.warnings.jsonl"]
    assert len(_csv_rows(tmp_path / "out" / "yingjiang.csv")) == 1 + c.members
    lines = (tmp_path / "out" / "yingjiang.visits.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(c.households)
    generate_to(tmp_path / "dir", households=50, seed=9)
    assert (tmp_path / "dir" / "registry.xlsx").is_file()
    assert (tmp_path / "dir" / "registry.warnings.jsonl").is_file()


def test_tiny_counties_work(small: County) -> None:
    assert len(small.households) == 300
    for label in (Scenario.INCOMPLETE_FORM, Scenario.DUPLICATE_ID, Scenario.SERIOUS_ILLNESS):
        assert _labelled(small, label)
    assert len(generate_county(1, seed=0).households) == 1
    with pytest.raises(ValueError):
        generate_county(0, seed=0)
