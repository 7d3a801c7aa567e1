"""What the departments send: screening warnings (部门筛查预警) about people in and out of the registry, and the
results of the county's joint asset check (vehicles, public servants, business registrations)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from povguard_contracts.intake import MemberFacts
from povguard_contracts.vocab import (
    LABOUR_CAPABLE,
    Department,
    Health,
    HouseholdKind,
    LabourSkill,
    MedicalInsurance,
    Relation,
    Sex,
    WarningKind,
)
from povguard_tools.synthetic.draft import Draft
from povguard_tools.synthetic.model import (
    CheckHit,
    CheckHitKind,
    CheckResult,
    DepartmentWarning,
    Scenario,
)
from povguard_tools.synthetic.names import full_name, surname
from povguard_tools.synthetic.people import REFERENCE_DAY, IdIssuer, age_on, birth_for_age, township_ethnicity
from povguard_tools.synthetic.places import TOWNSHIPS
from povguard_tools.synthetic.tables import Table

WARNINGS_FROM, WARNINGS_TO = date(2021, 5, 1), date(2022, 5, 5)  # accounting window up to the data exchange
CHECKS_FROM, CHECKS_TO = date(2022, 5, 18), date(2022, 5, 27)  # county joint check (seed §三 step 9)
RAINY_SEASON = (date(2021, 6, 1), date(2021, 9, 30))
_REF = {Department.MEDICAL_INSURANCE: "YB", Department.EMERGENCY: "YJ", Department.HUMAN_RESOURCES: "RS",
        Department.EDUCATION: "JY", Department.HOUSING: "ZJ", Department.CIVIL_AFFAIRS: "MZ",
        Department.DISABLED_FEDERATION: "CL", Department.MEDIA_PETITIONS: "XF"}
CHECKED_BY = (Department.PUBLIC_SECURITY, Department.HUMAN_RESOURCES, Department.MARKET_REGULATION,
              Department.NATURAL_RESOURCES, Department.HOUSING)
UNREGISTERED_SHARE = 0.08  # warnings about people who are not in the registry, relative to the others
CHECK_HIT_SHARE = 0.07
_BUSINESSES = ("百货店", "农资店", "养殖场", "运输队", "餐馆", "木材加工厂", "茶叶初制所", "建材店")
_HIT_KINDS = Table(((CheckHitKind.VEHICLE, 50), (CheckHitKind.PUBLIC_SERVANT, 20), (CheckHitKind.BUSINESS, 30)))
_POSTS = ("盈江县教育体育局 在编教师", "乡镇卫生院 在编医生", "县直机关 公务员", "乡镇人民政府 事业编制人员")


def _day(rng: random.Random, first: date, last: date) -> date:
    return first + timedelta(days=rng.randrange((last - first).days + 1))


@dataclass(slots=True)
class _Pending:
    department: Department
    kind: WarningKind
    person: MemberFacts
    amount: float | None
    day: date
    household_code: str | None
    note: str = ""


def _oldest_adult(members: Sequence[MemberFacts]) -> MemberFacts:
    return next((f for f in members if f.relation == Relation.HEAD), members[0])


def warnings_for(rng: random.Random, drafts: Sequence[Draft], issuer: IdIssuer, disaster_day: date,
                 disaster_township: str) -> list[DepartmentWarning]:
    pending: list[_Pending] = []

    def add(dept: Department, kind: WarningKind, d: Draft, person: MemberFacts, amount: float | None, day: date,
            note: str = "") -> None:
        pending.append(_Pending(dept, kind, person, amount, day, d.code, note))

    for d in drafts:
        if d.sick is not None and rng.random() < 0.9:
            add(Department.MEDICAL_INSURANCE, WarningKind.HIGH_MEDICAL_SPENDING, d, d.members[d.sick],
                d.medical_bill, _day(rng, WARNINGS_FROM, date(2022, 4, 30)), "住院医疗费用累计超过预警线")
        elif d.money.medical_out_of_pocket > 1500 and rng.random() < 0.1:  # a lead that turns out small
            add(Department.MEDICAL_INSURANCE, WarningKind.HIGH_MEDICAL_SPENDING, d, _oldest_adult(d.members),
                float(rng.randrange(10000, 30000, 100)), _day(rng, WARNINGS_FROM, date(2022, 4, 30)))
        if Scenario.DISASTER in d.labels and rng.random() < 0.85:
            day = (disaster_day if d.place.township_code == disaster_township
                   else _day(rng, *RAINY_SEASON))
            add(Department.EMERGENCY, WarningKind.DISASTER, d, _oldest_adult(d.members), d.disaster_loss, day,
                d.disaster_note)
        if d.job_lost is not None and rng.random() < 0.5:
            add(Department.HUMAN_RESOURCES, WarningKind.UNEMPLOYMENT, d, d.members[d.job_lost], None,
                _day(rng, date(2021, 8, 1), date(2022, 3, 31)), "外出务工人员返乡失业")
        if d.dropout is not None and rng.random() < 0.9:
            add(Department.EDUCATION, WarningKind.SCHOOL_DROPOUT, d, d.members[d.dropout], None,
                _day(rng, date(2021, 9, 1), date(2022, 4, 15)), "控辍保学台账")
        if Scenario.UNSAFE_HOUSING in d.labels and rng.random() < 0.6:
            add(Department.HOUSING, WarningKind.HOUSING_UNSAFE, d, _oldest_adult(d.members), None,
                _day(rng, WARNINGS_FROM, WARNINGS_TO), "农村危房动态监测")
        if rng.random() < (0.1 if d.candidate else 0.005):
            add(Department.CIVIL_AFFAIRS, WarningKind.DIBAO_APPLIED, d, _oldest_adult(d.members), None,
                _day(rng, WARNINGS_FROM, WARNINGS_TO))
        if rng.random() < (0.08 if d.candidate else 0.003):
            add(Department.CIVIL_AFFAIRS, WarningKind.ASSISTANCE_APPLIED, d, _oldest_adult(d.members), None,
                _day(rng, WARNINGS_FROM, WARNINGS_TO), "云南省政府救助平台申请")
        for f in d.members:
            if f.disability_category is not None and rng.random() < 0.03:
                add(Department.DISABLED_FEDERATION, WarningKind.NEW_DISABILITY, d, f, None,
                    _day(rng, WARNINGS_FROM, WARNINGS_TO), f"新办残疾证（{f.disability_category}）")
        if rng.random() < 0.0005:
            add(Department.MEDIA_PETITIONS, WarningKind.OTHER, d, _oldest_adult(d.members), None,
                _day(rng, WARNINGS_FROM, WARNINGS_TO), "12317热线反映家庭困难")

    extra = round(UNREGISTERED_SHARE * len(pending)) + (1 if drafts else 0)
    kinds = ((Department.MEDICAL_INSURANCE, WarningKind.HIGH_MEDICAL_SPENDING),
             (Department.CIVIL_AFFAIRS, WarningKind.DIBAO_APPLIED), (Department.EMERGENCY, WarningKind.DISASTER),
             (Department.HUMAN_RESOURCES, WarningKind.UNEMPLOYMENT),
             (Department.DISABLED_FEDERATION, WarningKind.NEW_DISABILITY))
    for _ in range(extra):
        dept, kind = rng.choice(kinds)
        person = stranger(rng, issuer)
        amount = float(rng.randrange(20000, 100000, 100)) if kind == WarningKind.HIGH_MEDICAL_SPENDING else None
        pending.append(_Pending(dept, kind, person, amount, _day(rng, WARNINGS_FROM, WARNINGS_TO), None))

    pending.sort(key=lambda p: (p.day, p.department, p.person.id_number))
    serial: Counter[Department] = Counter()
    out: list[DepartmentWarning] = []
    for p in pending:
        serial[p.department] += 1
        out.append(DepartmentWarning(
            department=p.department, kind=p.kind, id_number=p.person.id_number, person_name=p.person.name,
            amount=p.amount, occurred_on=p.day, source_ref=f"{_REF[p.department]}-2022-{serial[p.department]:05d}",
            note=p.note, household_code=p.household_code))
    return out


def stranger(rng: random.Random, issuer: IdIssuer) -> MemberFacts:
    """Someone the departments know but the registry does not (moved away, urban hukou, never registered)."""
    male = rng.random() < 0.5
    birth = birth_for_age(rng, rng.randint(18, 85))
    eth = township_ethnicity(rng.choice(TOWNSHIPS)).draw(rng)
    return MemberFacts(name=full_name(rng, surname(rng, eth), eth, male, birth.year),
                       id_number=issuer.issue(birth, male), sex=Sex.MALE if male else Sex.FEMALE, birth_date=birth,
                       relation=Relation.HEAD, health=[Health.HEALTHY], labour_skill=LabourSkill.ORDINARY,
                       medical_insurance=MedicalInsurance.RESIDENT)


def _adult(rng: random.Random, members: Sequence[MemberFacts], low: int, high: int) -> MemberFacts | None:
    fits = [f for f in members if low <= age_on(f.birth_date, REFERENCE_DAY) <= high
            and f.labour_skill in LABOUR_CAPABLE]
    return rng.choice(fits) if fits else None


def _hit(rng: random.Random, d: Draft) -> CheckHit | None:
    kind = _HIT_KINDS.draw(rng)
    if kind == CheckHitKind.VEHICLE:
        who = _adult(rng, d.members, 20, 65)
        plate = "云N·" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(5))
        value = float(rng.randrange(60000, 200000, 1000))
        return CheckHit(Department.PUBLIC_SECURITY, kind, who.id_number, who.name, f"小型轿车 {plate}",
                        value) if who else None
    if kind == CheckHitKind.PUBLIC_SERVANT:
        who = _adult(rng, d.members, 22, 55)
        return CheckHit(Department.HUMAN_RESOURCES, kind, who.id_number, who.name, rng.choice(_POSTS),
                        float(rng.randrange(60000, 110000, 1000))) if who else None
    who = _adult(rng, d.members, 25, 60)
    name = f"盈江县{d.place.village.removesuffix('村')}{rng.choice(_BUSINESSES)}"
    return CheckHit(Department.MARKET_REGULATION, kind, who.id_number, who.name, f"个体工商户：{name}",
                    None) if who else None


def checks_for(rng: random.Random, drafts: Sequence[Draft]) -> list[CheckResult]:
    """Every household that signed an authorisation is checked, plus a sample of 脱贫户 and monitoring objects; a few
    checks find something the family did not declare (the household is then labelled check_hit)."""
    out: list[CheckResult] = []
    for d in drafts:
        sampled = d.kind != HouseholdKind.ORDINARY and rng.random() < 0.05
        if not (d.candidate or sampled):
            continue
        hits: tuple[CheckHit, ...] = ()
        if rng.random() < CHECK_HIT_SHARE:
            hit = _hit(rng, d)
            if hit:
                hits = (hit,)
                d.labels.add(Scenario.CHECK_HIT)
        out.append(CheckResult(household_code=d.code, checked_on=_day(rng, CHECKS_FROM, CHECKS_TO),
                               departments=CHECKED_BY, hits=hits, source_ref=f"HC-2022-{len(out) + 1:05d}"))
    return out
