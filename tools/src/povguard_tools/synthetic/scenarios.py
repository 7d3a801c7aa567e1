"""The problems a real campaign meets, as changes to a household's members and money: serious illness, a child out
of school, a member without medical insurance, a sharp income fall, a disaster; and their shares in the county."""

from __future__ import annotations

import random
from collections.abc import Sequence

from povguard_contracts.intake import MemberFacts, RigidSpending
from povguard_contracts.vocab import (
    Education,
    Health,
    LabourSkill,
    MedicalInsurance,
    Relation,
    RiskType,
)
from povguard_tools.synthetic.income import Money
from povguard_tools.synthetic.model import Scenario
from povguard_tools.synthetic.people import COMPULSORY_SCHOOL_AGES, REFERENCE_DAY, age_on

# share of households given each situation (counts are exact: round(share × households))
SHARES: dict[Scenario, float] = {
    Scenario.SERIOUS_ILLNESS: 0.015,
    Scenario.SHARP_INCOME_FALL: 0.02,
    Scenario.DISASTER: 0.012,
    Scenario.UNSAFE_HOUSING: 0.005,
    Scenario.CHILD_OUT_OF_SCHOOL: 0.003,
    Scenario.UNSAFE_WATER: 0.002,
    Scenario.UNINSURED_MEMBER: 0.002,
    Scenario.INCOMPLETE_FORM: 0.01,
    Scenario.DUPLICATE_ID: 0.003,  # households involved (two per duplicated number)
    Scenario.MISRECORDED_MEMBER: 0.01,  # split evenly over the member-level rules (misrecords.py)
}
DISASTER_IN_ONE_TOWNSHIP = 0.8  # share of the disaster households that are in the hit township
SMALL_COUNTY = 100  # from this size on, every situation appears at least once


def count_for(scenario: Scenario, households: int) -> int:
    n = round(SHARES[scenario] * households)
    if scenario == Scenario.DUPLICATE_ID:
        n = round(n / 2)  # pairs
    return max(n, 1) if households >= SMALL_COUNTY else n


def _age(f: MemberFacts) -> int:
    return age_on(f.birth_date, REFERENCE_DAY)


def sickest_candidate(members: Sequence[MemberFacts]) -> int | None:
    """The member a serious illness strikes: an adult of 25–75, the head or spouse first."""
    adults = [i for i, f in enumerate(members) if 25 <= _age(f) <= 75]
    first = [i for i in adults if members[i].relation in (Relation.HEAD, Relation.SPOUSE)]
    pool = first or adults
    return pool[0] if pool else None


def fall_ill(rng: random.Random, members: list[MemberFacts], who: int) -> None:
    f = members[who]
    states = [h for h in f.health if h != Health.HEALTHY]
    if Health.SERIOUS_ILLNESS not in states:
        states.insert(0 if Health.CHRONIC not in states else 1, Health.SERIOUS_ILLNESS)
    members[who] = f.model_copy(update={
        "health": states,
        "labour_skill": LabourSkill.LOST if rng.random() < 0.6 else LabourSkill.WEAK,
        "migrant_months": None, "migrant_place": None, "public_welfare_job": False})


def illness_costs(rng: random.Random, m: Money) -> float:
    """Large eligible out-of-pocket costs; returns the total medical bill (what 医保 sees)."""
    own = float(round(rng.uniform(15000, 80000)))
    m.medical_out_of_pocket += own
    if rng.random() < 0.3:
        m.insurance_claims += float(round(rng.uniform(2000, 10000)))  # 防贫保险 pays out
    return float(round(own / rng.uniform(0.3, 0.5)))


def school_child(members: Sequence[MemberFacts]) -> int | None:
    kids = [i for i, f in enumerate(members) if _age(f) in COMPULSORY_SCHOOL_AGES and _age(f) >= 7
            and f.school_status is not None]
    return kids[0] if kids else None


def drop_out(members: list[MemberFacts], who: int) -> None:
    f = members[who]
    members[who] = f.model_copy(update={
        "school_status": None, "education": Education.PRIMARY if _age(f) >= 10 else Education.ILLITERATE})


def uninsure(rng: random.Random, members: list[MemberFacts]) -> int:
    """A member not enrolled in basic medical insurance: usually a baby, else anyone."""
    babies = [i for i, f in enumerate(members) if _age(f) <= 1]
    who = babies[0] if babies else rng.randrange(len(members))
    members[who] = members[who].model_copy(update={"medical_insurance": MedicalInsurance.NONE,
                                                   "serious_illness_insurance": False})
    return who


def earned(m: Money) -> float:
    return m.wages - m.public_welfare_job_income + m.business - m.business_expense


def can_fall(m: Money, size: int) -> bool:
    """A household whose income can fall sharply: decent income, mostly earned."""
    return m.net / size >= 8000 and earned(m) >= 0.6 * m.net


def cut_income(rng: random.Random, members: list[MemberFacts], m: Money) -> RiskType:
    """Cut the net income by 35–65%: migrant work lost (fewer months away) or a farm income collapse (price fall,
    failed crop). Returns the risk a collector would note."""
    cut = rng.uniform(0.35, 0.65) * m.net
    wage_part = m.wages - m.public_welfare_job_income
    if wage_part >= m.business - m.business_expense and wage_part > 0:
        from_wages = min(cut, wage_part)
        keep = 1 - from_wages / wage_part
        m.wages = float(round(m.wages - from_wages))
        for i, f in enumerate(members):
            if f.migrant_months:
                months = max(1, round(f.migrant_months * keep))
                members[i] = f.model_copy(update={"migrant_months": months})
        m.business = float(round(max(0.0, m.business - (cut - from_wages))))
        return RiskType.UNSTABLE_EMPLOYMENT
    from_business = min(cut, m.business)
    m.business = float(round(m.business - from_business))
    m.wages = float(round(max(m.public_welfare_job_income, m.wages - (cut - from_business))))
    return RiskType.INDUSTRY_FAILURE


DISASTER_KINDS = (("洪涝", "2021年7月强降雨引发洪涝，农作物受灾，房屋进水"),
                  ("地质", "雨季山体滑坡、泥石流冲毁田地，房屋受损"),
                  ("地震", "地震造成房屋墙体开裂，圈舍倒塌"))


def hit_by_disaster(rng: random.Random, m: Money) -> tuple[float, str]:
    """Crops and livestock lost, repairs to pay for; returns the loss and a note."""
    sub, note = rng.choice(DISASTER_KINDS)
    lost = m.business * rng.uniform(0.4, 0.8)
    m.business = float(round(m.business - lost))
    repairs = float(round(rng.uniform(5000, 40000)))
    m.other_rigid.append(RigidSpending(kind=RiskType.NATURAL_DISASTER, amount=repairs, note=f"{sub}：{note}"))
    if rng.random() < 0.4:
        m.insurance_claims += float(round(rng.uniform(1000, 8000)))
    return float(round(lost + repairs)), note
