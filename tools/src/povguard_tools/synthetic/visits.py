"""The 2022 home visit (form 2-1) of each household: date, collector, housing, declared assets, 三保障 and water,
the risks a collector notes, difficulties in the family's words, application and authorisation."""

from __future__ import annotations

import random
from datetime import date, timedelta

from povguard_contracts.intake import Assets, Guarantees, Housing, Vehicle, VisitForm
from povguard_contracts.vocab import (
    LABOUR_CAPABLE,
    MedicalInsurance,
    RiskType,
)
from povguard_tools.synthetic.draft import Draft
from povguard_tools.synthetic.model import Scenario
from povguard_tools.synthetic.people import COMPULSORY_SCHOOL_AGES, NON_COMPULSORY_SCHOOL, REFERENCE_DAY, age_on
from povguard_tools.synthetic.tables import Table

VISITS = (date(2022, 4, 30), date(2022, 5, 12))  # seed §三: home visits by 05-12
UNSAFE_APPRAISALS = frozenset({"C级", "D级"})
_STRUCTURES = Table((("砖混", 55), ("砖木", 25), ("土木", 12), ("其他", 8)))
_DIFFICULTIES: dict[Scenario, str] = {
    Scenario.SERIOUS_ILLNESS: "家庭成员患大病住院治疗，自付医疗费用较高",
    Scenario.SHARP_INCOME_FALL: "家庭收入较上年明显减少",
    Scenario.DISASTER: "受灾损失较大",
    Scenario.UNSAFE_HOUSING: "住房年久失修，存在安全隐患",
    Scenario.CHILD_OUT_OF_SCHOOL: "适龄子女辍学在家",
    Scenario.UNSAFE_WATER: "旱季饮水困难，水源不稳定",
    Scenario.UNINSURED_MEMBER: "有家庭成员未参加基本医疗保险",
    Scenario.NO_LABOUR: "家中无劳动力，生活主要靠政策兜底",
}


def visit_day(rng: random.Random) -> date:
    return VISITS[0] + timedelta(days=rng.randrange((VISITS[1] - VISITS[0]).days + 1))


def housing(rng: random.Random, size: int, unsafe: bool) -> Housing:
    if unsafe:
        return Housing(structure="土木" if rng.random() < 0.8 else "其他", area_m2=float(rng.randint(40, 120)),
                       appraisal="D级" if rng.random() < 0.3 else "C级")
    structure = _STRUCTURES.draw(rng)
    area = float(rng.randint(50, 90) + 22 * size + rng.randint(0, 60))
    appraisal = None if rng.random() < 0.1 else "A级" if rng.random() < 0.7 else "B级"
    return Housing(structure=structure, area_m2=area, appraisal=appraisal)


def damaged(rng: random.Random, before: Housing) -> Housing:
    return before.model_copy(update={"appraisal": "D级" if rng.random() < 0.3 else "C级"})


def assets(rng: random.Random, per_capita: float) -> Assets:
    vehicles: list[Vehicle] = []
    if rng.random() < 0.6:
        vehicles.append(Vehicle(kind="摩托车", value=float(rng.randrange(3000, 8000, 100))))
    if rng.random() < 0.1:
        vehicles.append(Vehicle(kind="三轮车", value=float(rng.randrange(8000, 25000, 500))))
    if rng.random() < (0.02 if per_capita < 10000 else 0.08 if per_capita < 20000 else 0.2):
        vehicles.append(Vehicle(kind="小型汽车", value=float(rng.randrange(40000, 120000, 1000))))
    return Assets(vehicles=vehicles)


def guarantees(d: Draft) -> Guarantees:
    ages = [age_on(f.birth_date, REFERENCE_DAY) for f in d.members]
    return Guarantees(
        food_and_clothing=True,
        compulsory_education=not any(a in COMPULSORY_SCHOOL_AGES and f.school_status is None
                                     for f, a in zip(d.members, ages, strict=True)),
        basic_medical=all(f.medical_insurance != MedicalInsurance.NONE for f in d.members),
        housing_safe=d.housing.appraisal not in UNSAFE_APPRAISALS,
        drinking_water_safe=d.water_safe,
    )


def noted_risks(d: Draft) -> list[RiskType]:
    """What a collector writes down: the situations found, plus disability and schooling costs in poorer homes."""
    risks = set(d.risks)
    if Scenario.NO_LABOUR in d.labels:
        risks.add(RiskType.LACK_OF_LABOUR)
    if d.per_capita < 10000:
        if any(f.disability_category is not None for f in d.members):
            risks.add(RiskType.DISABILITY)
        if sum(f.school_status in NON_COMPULSORY_SCHOOL for f in d.members) >= 2:
            risks.add(RiskType.SCHOOLING)
    if RiskType.UNSTABLE_EMPLOYMENT in risks and not any(f.labour_skill in LABOUR_CAPABLE for f in d.members):
        risks.discard(RiskType.UNSTABLE_EMPLOYMENT)
    return [r for r in RiskType if r in risks][:5]


def visit_form(rng: random.Random, d: Draft, collector: str) -> VisitForm:
    words = [_DIFFICULTIES[s] for s in _DIFFICULTIES if s in d.labels]
    if d.disaster_note:
        words.append(d.disaster_note)
    return VisitForm(
        visit_date=visit_day(rng),
        collector=collector,
        income=d.money.income_lines(),
        spending=d.money.spending_lines(),
        guarantees=guarantees(d),
        housing=d.housing,
        assets=assets(rng, d.per_capita),
        risks_noted=noted_risks(d),
        difficulties="；".join(words)[:500],
        application_signed=d.candidate,
        authorisation_signed=d.candidate,
    )
