"""Families and their members: composition (one 户主, spouse, children, in-laws, grandchildren, parents), names,
resident ID numbers (GB 11643-1999), and the member facts of the national form, consistent with age and health."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from povguard_contracts.intake import MemberFacts
from povguard_contracts.vocab import (
    LABOUR_CAPABLE,
    DisabilityCategory,
    Education,
    Health,
    HouseholdKind,
    LabourSkill,
    MedicalInsurance,
    MigrantPlace,
    PensionInsurance,
    Relation,
    SchoolStatus,
    Sex,
)
from povguard_tools.synthetic.names import full_name, surname
from povguard_tools.synthetic.places import ETHNICITIES, Township
from povguard_tools.synthetic.tables import Table, weighted

REFERENCE_DAY = date(2022, 4, 30)  # end of the accounting window: ages are counted here; nobody is born later
GB11643_WEIGHTS = tuple(2 ** (17 - i) % 11 for i in range(17))
GB11643_CHECK = "10X98765432"
ORDERS_PER_SEX = 499  # sequence codes 001..998: odd for men, even for women


def check_character(body: str) -> str:
    """GB 11643-1999 check character (ISO 7064 MOD 11-2) of the first 17 digits."""
    if len(body) != 17 or not body.isdigit():
        raise ValueError(f"need 17 digits, got {body!r}")
    return GB11643_CHECK[sum(int(c) * w for c, w in zip(body, GB11643_WEIGHTS, strict=True)) % 11]


def make_id_number(region: str, birth: date, order: int, male: bool) -> str:
    """An 18-character resident ID number: region (6 digits), birth date, a sequence code whose last digit is odd
    for men and even for women (`order` 0..498 picks it), and the check character."""
    if len(region) != 6 or not region.isdigit():
        raise ValueError(f"region must be 6 digits, got {region!r}")
    if not 0 <= order < ORDERS_PER_SEX:
        raise ValueError(f"order must be in 0..{ORDERS_PER_SEX - 1}, got {order}")
    body = f"{region}{birth:%Y%m%d}{order * 2 + (1 if male else 2):03d}"
    return body + check_character(body)


class IdIssuer:
    """Hands out ID numbers of one region, never the same one twice."""

    def __init__(self, region: str, rng: random.Random) -> None:
        self.region = region
        self._rng = rng
        self._taken: dict[tuple[date, bool], set[int]] = {}

    def issue(self, birth: date, male: bool) -> str:
        taken = self._taken.setdefault((birth, male), set())
        if len(taken) >= ORDERS_PER_SEX:
            raise RuntimeError(f"no ID numbers left for {birth} ({'male' if male else 'female'})")
        order = self._rng.randrange(ORDERS_PER_SEX)
        while order in taken:
            order = (order + 1) % ORDERS_PER_SEX
        taken.add(order)
        return make_id_number(self.region, birth, order, male)


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def birth_for_age(rng: random.Random, age: int) -> date:
    """A birth date so that the person is `age` on REFERENCE_DAY."""
    latest = _years_before(REFERENCE_DAY, age)
    earliest = _years_before(REFERENCE_DAY, age + 1) + timedelta(days=1)
    return earliest + timedelta(days=rng.randrange((latest - earliest).days + 1))


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


# --- composition --------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Person:
    relation: Relation
    male: bool
    age: int
    family_name: str
    ethnicity: str


SHAPES = ("single_elderly", "elderly_couple", "single_adult", "nuclear", "stem", "stem_young")
SHAPE_TABLES: dict[HouseholdKind, Table[str]] = {
    HouseholdKind.ORDINARY: weighted(SHAPES, (3, 8, 3, 36, 30, 20)),
    HouseholdKind.LIFTED: weighted(SHAPES, (6, 10, 4, 32, 29, 19)),
    HouseholdKind.MONITORED: weighted(SHAPES, (10, 11, 6, 28, 27, 18)),
}
_CHILDREN = weighted((0, 1, 2, 3, 4), (0, 24, 46, 22, 8))
_CHILDREN_WITH_GRANDPARENTS = weighted((0, 1, 2, 3, 4), (6, 32, 43, 15, 4))
_GRANDCHILDREN = weighted((0, 1, 2, 3), (18, 37, 36, 9))


def compose(rng: random.Random, kind: HouseholdKind, ethnicity: str, township: Township) -> list[Person]:
    """Who lives in the household, head first."""
    shape = SHAPE_TABLES[kind].draw(rng)
    head_surname = surname(rng, ethnicity)

    def other_ethnicity() -> str:
        return ethnicity if rng.random() < 0.88 else township_ethnicity(township).draw(rng)

    def other_surname(eth: str) -> str:
        s = surname(rng, eth)
        for _ in range(5):
            if s != head_surname:
                break
            s = surname(rng, eth)
        return s

    def spouse_of(head: Person, younger_by: tuple[int, int]) -> Person:
        gap = rng.randint(*younger_by)
        age = max(18, head.age - gap if head.male else head.age + gap)
        eth = other_ethnicity()
        return Person(Relation.SPOUSE, not head.male, age, other_surname(eth), eth)

    def children(parents_youngest: int, line: str, n: int, son: Relation = Relation.SON,
                 daughter: Relation = Relation.DAUGHTER, max_age: int = 99) -> list[Person]:
        out: list[Person] = []
        age = min(max_age, parents_youngest - rng.randint(19, 27))
        for _ in range(n):
            if age < 0:
                break
            male = rng.random() < 0.52
            out.append(Person(son if male else daughter, male, age, line, ethnicity))
            age -= rng.randint(1, 5)
        return out

    people: list[Person] = []
    if shape == "single_elderly":
        people.append(Person(Relation.HEAD, rng.random() < 0.45, rng.randint(62, 92), head_surname, ethnicity))
    elif shape == "elderly_couple":
        head = Person(Relation.HEAD, rng.random() < 0.9, rng.randint(60, 86), head_surname, ethnicity)
        people += [head, spouse_of(head, (-2, 6))]
    elif shape == "single_adult":
        head = Person(Relation.HEAD, rng.random() < 0.75, rng.randint(25, 60), head_surname, ethnicity)
        people.append(head)
        if rng.random() < 0.3 and head.age < 64:
            male = rng.random() < 0.3
            people.append(Person(Relation.FATHER if male else Relation.MOTHER, male,
                                 min(95, head.age + rng.randint(22, 32)), head_surname, ethnicity))
    else:
        young = shape != "stem"
        head_age = rng.randint(24, 56) if shape == "nuclear" else rng.randint(26, 50) if young else rng.randint(48, 72)
        head = Person(Relation.HEAD, rng.random() < (0.88 if young else 0.85), head_age, head_surname, ethnicity)
        people.append(head)
        spouse = spouse_of(head, (-3, 6)) if rng.random() < (0.92 if young else 0.85) else None
        if spouse:
            people.append(spouse)
        line = head.family_name if head.male or spouse is None else spouse.family_name
        youngest_parent = min(head.age, spouse.age) if spouse else head.age
        if young:
            n = (_CHILDREN_WITH_GRANDPARENTS if shape == "stem_young" else _CHILDREN).draw(rng)
            people += children(youngest_parent, line, n)
        if shape == "stem_young":  # the head's (or her husband's) parents live with them
            wants_father, wants_mother = rng.random() < 0.55, rng.random() < 0.8
            if not (wants_father or wants_mother):
                wants_mother = True
            in_laws = spouse is not None and not head.male  # a woman heads: the parents are her husband's
            base = spouse if in_laws and spouse else head
            for male, wanted in ((True, wants_father), (False, wants_mother)):
                if wanted and base.age + 20 <= 96:
                    rel = ((Relation.HUSBANDS_FATHER if male else Relation.HUSBANDS_MOTHER) if in_laws
                           else (Relation.FATHER if male else Relation.MOTHER))
                    fam = base.family_name if male else other_surname(ethnicity)
                    people.append(Person(rel, male, min(96, base.age + rng.randint(20, 32)), fam, ethnicity))
        if shape == "stem":
            married = children(youngest_parent, line, 1, max_age=45)
            if married and married[0].age >= 21:
                child = married[0]
                people.append(child)
                eth = other_ethnicity()
                if child.male:
                    partner = Person(Relation.DAUGHTER_IN_LAW, False, max(19, child.age + rng.randint(-5, 2)),
                                     other_surname(eth), eth)
                    grand = (Relation.GRANDSON, Relation.GRANDDAUGHTER)
                else:  # a son-in-law who married in (上门女婿)
                    partner = Person(Relation.SON_IN_LAW, True, max(20, child.age + rng.randint(-2, 5)),
                                     other_surname(eth), eth)
                    grand = (Relation.DAUGHTERS_SON, Relation.DAUGHTERS_DAUGHTER)
                people.append(partner)
                n = _GRANDCHILDREN.draw(rng)
                people += children(min(child.age, partner.age), line, n, *grand)
                if rng.random() < 0.35:
                    younger = children(youngest_parent, line, 1, max_age=min(30, child.age - 2))
                    people += [p for p in younger if p.age >= 10]
            else:
                people += children(youngest_parent, line, rng.choice((1, 2)))
    return people


# --- member facts -------------------------------------------------------------------------------------------------

_D = DisabilityCategory
_DISABILITY = Table(((_D.PHYSICAL, 45), (_D.VISUAL, 12), (_D.HEARING, 12), (_D.SPEECH, 4), (_D.INTELLECTUAL, 10),
                     (_D.MENTAL, 10), (_D.MULTIPLE, 7)))
_E = Education
_EDUCATION_BY_AGE: tuple[tuple[int, Table[Education]], ...] = (
    (60, Table(((_E.ILLITERATE, 40), (_E.PRIMARY, 42), (_E.JUNIOR, 14), (_E.SENIOR, 4)))),
    (45, Table(((_E.ILLITERATE, 15), (_E.PRIMARY, 42), (_E.JUNIOR, 35), (_E.SENIOR, 7), (_E.COLLEGE, 1)))),
    (30, Table(((_E.ILLITERATE, 5), (_E.PRIMARY, 28), (_E.JUNIOR, 50), (_E.SENIOR, 11), (_E.COLLEGE, 4),
                (_E.BACHELOR_OR_ABOVE, 2)))),
    (0, Table(((_E.ILLITERATE, 2), (_E.PRIMARY, 12), (_E.JUNIOR, 55), (_E.SENIOR, 19), (_E.COLLEGE, 8),
               (_E.BACHELOR_OR_ABOVE, 4)))),
)
_LEFT_SCHOOL_YOUNG = Table(((_E.JUNIOR, 85), (_E.PRIMARY, 15)))
_S = SchoolStatus
_SCHOOL_BY_AGE: dict[int, Table[SchoolStatus | None]] = {
    **{a: Table(((_S.PRESCHOOL_CHILD, 1),)) for a in range(3)},
    **{a: Table(((_S.PRESCHOOL_EDUCATION, 85), (_S.PRESCHOOL_CHILD, 15))) for a in range(3, 6)},
    6: Table(((_S.PRIMARY, 70), (_S.PRESCHOOL_EDUCATION, 30))),
    **{a: Table(((_S.PRIMARY, 1),)) for a in range(7, 12)},
    12: Table(((_S.PRIMARY, 30), (_S.GRADES_7_9, 70))),
    13: Table(((_S.GRADES_7_9, 1),)),
    14: Table(((_S.GRADES_7_9, 1),)),
    15: Table(((_S.GRADES_7_9, 60), (_S.SENIOR_HIGH, 25), (_S.SECONDARY_VOCATIONAL, 15))),
    **{a: Table(((_S.SENIOR_HIGH, 40), (_S.SECONDARY_VOCATIONAL, 30), (None, 30))) for a in (16, 17)},
    18: Table(((_S.SENIOR_HIGH, 20), (_S.HIGHER_VOCATIONAL, 15), (_S.BACHELOR, 8), (_S.TECHNICIAN_COLLEGE, 3),
               (None, 54))),
    **{a: Table(((_S.HIGHER_VOCATIONAL, 14), (_S.BACHELOR, 10), (_S.TECHNICIAN_COLLEGE, 3), (None, 73)))
       for a in range(19, 23)},
    **{a: Table(((_S.POSTGRADUATE, 1), (_S.BACHELOR, 2), (None, 97))) for a in range(23, 26)},
}
_L = LabourSkill
_SKILL_SERIOUS = Table(((_L.LOST, 60), (_L.WEAK, 40)))
_SKILL_MENTAL = Table(((_L.LOST, 55), (_L.WEAK, 35), (_L.ORDINARY, 10)))
_SKILL_DISABLED = Table(((_L.WEAK, 50), (_L.LOST, 25), (_L.ORDINARY, 25)))
_SKILL_75 = Table(((_L.NONE, 65), (_L.LOST, 10), (_L.WEAK, 25)))
_SKILL_65 = Table(((_L.WEAK, 55), (_L.NONE, 35), (_L.ORDINARY, 10)))
_SKILL_60 = Table(((_L.ORDINARY, 45), (_L.WEAK, 50), (_L.NONE, 5)))
_SKILL_CHRONIC = Table(((_L.WEAK, 55), (_L.ORDINARY, 45)))
_SKILL_TEEN = Table(((_L.ORDINARY, 85), (_L.WEAK, 15)))
_SKILL_ADULT = Table(((_L.ORDINARY, 78), (_L.SKILLED, 20), (_L.WEAK, 2)))
_MIGRANT_MONTHS = weighted(range(3, 13), (2, 3, 4, 5, 6, 8, 10, 14, 16, 20))
_MIGRANT_PLACES = Table(((MigrantPlace.IN_COUNTY, 30), (MigrantPlace.IN_PROVINCE, 30),
                         (MigrantPlace.OUT_OF_PROVINCE, 28), (MigrantPlace.ABROAD, 12)))
_PHONE_PREFIXES = ("134", "135", "136", "137", "138", "139", "150", "151", "152", "157", "158", "159", "182", "183",
                   "187", "188", "130", "131", "132", "155", "156", "185", "186", "133", "153", "180", "181", "189",
                   "177", "199", "198", "166")
COMPULSORY_SCHOOL_AGES = range(6, 16)
NON_COMPULSORY_SCHOOL = frozenset({SchoolStatus.SENIOR_HIGH, SchoolStatus.SECONDARY_VOCATIONAL,
                                   SchoolStatus.HIGHER_VOCATIONAL, SchoolStatus.TECHNICIAN_COLLEGE,
                                   SchoolStatus.BACHELOR, SchoolStatus.POSTGRADUATE})
_ETHNIC_TABLES: dict[str, Table[str]] = {}


def township_ethnicity(township: Township) -> Table[str]:
    table = _ETHNIC_TABLES.get(township.code)
    if table is None:
        table = _ETHNIC_TABLES[township.code] = weighted(ETHNICITIES, township.ethnic_mix)
    return table


def school_status(rng: random.Random, age: int) -> SchoolStatus | None:
    """In school (or a pre-school child) at this age, or None; nobody of compulsory-school age is out of school."""
    table = _SCHOOL_BY_AGE.get(age)
    return table.draw(rng) if table else None


def education(rng: random.Random, age: int) -> Education:
    if age < 18:
        return _LEFT_SCHOOL_YOUNG.draw(rng)
    return next(table for floor, table in _EDUCATION_BY_AGE if age >= floor).draw(rng)


def health(rng: random.Random, age: int, poor: bool) -> tuple[list[Health], DisabilityCategory | None]:
    disabled = rng.random() < (1.4 if poor else 1.0) * (0.005 if age < 18 else 0.025 if age < 60 else 0.07)
    chronic = rng.random() < (0.005 if age < 18 else 0.04 if age < 45 else 0.12 if age < 60 else 0.30)
    serious = age >= 18 and rng.random() < 0.003
    states = [h for h, on in ((Health.CHRONIC, chronic), (Health.SERIOUS_ILLNESS, serious),
                              (Health.DISABLED, disabled)) if on]
    return (states or [Health.HEALTHY]), (_DISABILITY.draw(rng) if disabled else None)


def labour_skill(rng: random.Random, age: int, states: Sequence[Health], disability: DisabilityCategory | None,
                 in_school: bool) -> LabourSkill:
    if in_school or age < 16:
        return LabourSkill.NONE
    if Health.SERIOUS_ILLNESS in states:
        table = _SKILL_SERIOUS
    elif disability in (_D.INTELLECTUAL, _D.MENTAL, _D.MULTIPLE):
        table = _SKILL_MENTAL
    elif disability is not None:
        table = _SKILL_DISABLED
    elif age >= 75:
        table = _SKILL_75
    elif age >= 65:
        table = _SKILL_65
    elif age >= 60:
        table = _SKILL_60
    elif Health.CHRONIC in states:
        table = _SKILL_CHRONIC
    elif age < 18:
        table = _SKILL_TEEN
    else:
        table = _SKILL_ADULT
    return table.draw(rng)


def migrant_work(rng: random.Random, age: int, skill: LabourSkill) -> tuple[int | None, MigrantPlace | None]:
    if skill in (LabourSkill.ORDINARY, LabourSkill.SKILLED) and 16 <= age <= 55:
        p = 0.3 if age < 18 else 0.5 if age <= 40 else 0.25
        if rng.random() < p:
            return _MIGRANT_MONTHS.draw(rng), _MIGRANT_PLACES.draw(rng)
    elif skill == LabourSkill.WEAK and 18 <= age <= 55 and rng.random() < 0.05:
        return rng.randint(2, 6), MigrantPlace.IN_COUNTY
    return None, None


def phone(rng: random.Random) -> str:
    return rng.choice(_PHONE_PREFIXES) + f"{rng.randrange(10 ** 8):08d}"


def _has_phone(rng: random.Random, relation: Relation, age: int) -> bool:
    if relation == Relation.HEAD:
        return rng.random() < 0.92
    p = 0.0 if age < 16 else 0.25 if age < 18 else 0.6 if age <= 65 else 0.15
    return rng.random() < p


def _pension(rng: random.Random, age: int, in_school: bool) -> PensionInsurance:
    if age >= 60:
        return PensionInsurance.RESIDENT if rng.random() < 0.97 else PensionInsurance.NONE
    if age >= 16 and not in_school:
        r = rng.random()
        return (PensionInsurance.EMPLOYEE if r < 0.003 else PensionInsurance.RESIDENT if r < 0.88
                else PensionInsurance.NONE)
    return PensionInsurance.NONE


DIBAO_CHANCE = {HouseholdKind.ORDINARY: 0.03, HouseholdKind.LIFTED: 0.16, HouseholdKind.MONITORED: 0.35}


def make_family(rng: random.Random, issuer: IdIssuer, kind: HouseholdKind, ethnicity: str,
                township: Township) -> list[MemberFacts]:
    """The members of one household, consistent with the form's rules: ID numbers matching birth date and sex,
    exactly one of education and school status, disability category iff disabled, migrant months and place together,
    labour skill fitting age, health and schooling."""
    poor = kind != HouseholdKind.ORDINARY
    people = compose(rng, kind, ethnicity, township)
    births = [birth_for_age(rng, p.age) for p in people]
    ages = [age_on(b, REFERENCE_DAY) for b in births]
    healths = [health(rng, a, poor) for a in ages]
    schools = [school_status(rng, a) for a in ages]
    skills = [labour_skill(rng, a, h[0], h[1], s is not None) for a, h, s in zip(ages, healths, schools, strict=True)]

    vulnerable = [i for i, (a, h) in enumerate(zip(ages, healths, strict=True))
                  if a >= 65 or h[1] is not None or Health.SERIOUS_ILLNESS in h[0]]
    tekun = (len(people) == 1 and bool(vulnerable) and skills[0] not in LABOUR_CAPABLE
             and rng.random() < (0.55 if poor else 0.25))
    dibao_members: set[int] = set()
    if not tekun and rng.random() < min(0.8, DIBAO_CHANCE[kind] * (2 if vulnerable else 1)):
        if rng.random() < 0.55 or not vulnerable:
            dibao_members = set(range(len(people)))
        else:
            dibao_members = set(rng.sample(vulnerable, min(len(vulnerable), rng.choice((1, 2)))))

    migrants = [migrant_work(rng, a, s) for a, s in zip(ages, skills, strict=True)]
    welfare_candidates = [i for i, (a, s, m) in enumerate(zip(ages, skills, migrants, strict=True))
                          if s in LABOUR_CAPABLE and 20 <= a <= 64 and m[0] is None]
    welfare_job = (rng.choice(welfare_candidates)
                   if welfare_candidates and rng.random() < (0.15 if poor else 0.01) else None)

    out: list[MemberFacts] = []
    for i, p in enumerate(people):
        age, birth, school = ages[i], births[i], schools[i]
        states, disability = healths[i]
        months, place = migrants[i]
        out.append(MemberFacts(
            name=full_name(rng, p.family_name, p.ethnicity, p.male, birth.year),
            id_number=issuer.issue(birth, p.male),
            sex=Sex.MALE if p.male else Sex.FEMALE,
            birth_date=birth,
            relation=p.relation,
            ethnicity=p.ethnicity,
            education=None if school is not None else education(rng, age),
            school_status=school,
            health=states,
            disability_category=disability,
            labour_skill=skills[i],
            migrant_months=months,
            migrant_place=place,
            public_welfare_job=welfare_job == i,
            medical_insurance=MedicalInsurance.RESIDENT,
            serious_illness_insurance=True,
            pension_insurance=_pension(rng, age, school is not None),
            dibao=i in dibao_members,
            tekun=tekun,
            phone=phone(rng) if _has_phone(rng, p.relation, age) else None,
        ))
    return out
