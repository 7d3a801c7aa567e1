"""A whole synthetic county, deterministic from a seed: places, households and members, the 2022 campaign's visits,
department warnings and asset checks, and the truth behind them.

Randomness comes only from `random.Random(seed)` (each stage draws its own child generator from it); nothing depends
on the clock or on hash order, so the same seed gives the same county."""

from __future__ import annotations

import gc
import random
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date

from povguard_contracts.intake import MemberFacts, Place
from povguard_contracts.numbers import fen
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
from povguard_tools.synthetic import scenarios
from povguard_tools.synthetic.departments import checks_for, warnings_for
from povguard_tools.synthetic.draft import Draft
from povguard_tools.synthetic.income import base_money, net_income
from povguard_tools.synthetic.model import (
    BlankCell,
    County,
    DuplicateId,
    Scenario,
    SyntheticHousehold,
    Truth,
)
from povguard_tools.synthetic.names import full_name, surname
from povguard_tools.synthetic.people import (
    NON_COMPULSORY_SCHOOL,
    REFERENCE_DAY,
    IdIssuer,
    age_on,
    make_family,
    township_ethnicity,
)
from povguard_tools.synthetic.places import (
    BY_CODE,
    COUNTY_CODE,
    HAN,
    Village,
    allocate,
    make_villages,
)
from povguard_tools.synthetic.scenarios import count_for
from povguard_tools.synthetic.tables import Table
from povguard_tools.synthetic.visits import housing, visit_form

LIFTED_SHARE = 0.275  # 脱贫户
MONITORED_SHARE = 0.03  # 监测对象
MOUNTAIN_POVERTY_WEIGHT = 1.6  # how much likelier a mountain household is to be a 脱贫户 or monitoring object
LIFTED_YEARS = Table(((2014, 4), (2015, 6), (2016, 10), (2017, 16), (2018, 24), (2019, 20), (2020, 20)))
CATEGORIES = Table(((MonitoringCategory.UNSTABLE_LIFTED, 40), (MonitoringCategory.MARGINAL, 45),
                    (MonitoringCategory.SUDDEN_HARDSHIP, 15)))
ELIMINATED_SHARE = 0.55  # monitoring objects already marked 风险已消除
CANDIDATE_BELOW = 7000.0  # collectors ask households below this (after rigid spending) to apply
# member columns of the import template that an incomplete form may leave empty
BLANKABLE = ("姓名", "证件号码", "性别", "出生日期", "与户主关系", "健康状况", "劳动技能", "基本医疗保险")

Kind = tuple[HouseholdKind, int | None, MonitoringCategory | None, MonitoringStatus]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Building hundreds of thousands of small objects makes the cyclic garbage collector rescan them again and
    again (generation takes about twice as long); pause it meanwhile, it collects whatever is left when it resumes."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def generate_county(households: int, seed: int) -> County:
    """The county for this seed: `households` households spread over Yingjiang's townships, villages and groups."""
    if households < 1:
        raise ValueError("a county needs at least one household")
    with _collector_paused():
        return _generate(households, seed)


def _generate(households: int, seed: int) -> County:
    master = random.Random(seed)

    def stream() -> random.Random:
        return random.Random(master.getrandbits(64))

    villages = make_villages(stream())
    places = allocate(villages, households, stream())
    kinds = _kinds(stream(), [BY_CODE[p.township_code].mountain for p in places])
    issuer = IdIssuer(COUNTY_CODE, stream())
    drafts = _families(stream(), places, kinds, issuer)

    rng = stream()
    present = sorted({d.place.township_code for d in drafts})
    disaster_township = rng.choice(present)
    disaster_day = date(2021, 7, rng.randint(1, 31))
    _situations(rng, drafts, disaster_township)
    for d in drafts:
        if not any(f.labour_skill in LABOUR_CAPABLE for f in d.members):
            d.labels.add(Scenario.NO_LABOUR)
        d.candidate = (not (d.kind == HouseholdKind.MONITORED and d.status == MonitoringStatus.RISK_NOT_ELIMINATED)
                       and d.per_capita_after_rigid < CANDIDATE_BELOW)
    _data_problems(stream(), drafts)
    checks = checks_for(stream(), drafts)

    rng = stream()
    collectors = _collectors(rng, villages)
    visits = [visit_form(rng, d, collectors[d.place.village_code]) for d in drafts]
    flag_rng = stream()
    warnings = warnings_for(stream(), drafts, issuer, disaster_day, disaster_township)
    result = []
    for d, visit in zip(drafts, visits, strict=True):
        net = net_income(visit.income, visit.spending)
        truth = Truth(labels=tuple(s for s in Scenario if s in d.labels), net_income=float(net),
                      per_capita=float(fen(net / d.size)), previous_per_capita=d.previous_per_capita,
                      blank=d.blank, duplicate=d.duplicate)
        result.append(SyntheticHousehold(
            code=d.code, place=d.place, kind=d.kind, lifted_year=d.lifted_year, category=d.category,
            status=d.status, flags=priority_flags(flag_rng, d), members=tuple(d.members), visit=visit,
            truth=truth))
    return County(seed=seed, households=tuple(result), warnings=tuple(warnings), checks=tuple(checks),
                  disaster_township=disaster_township, villages=len({p.village_code for p in places}),
                  groups=len({p.group_code for p in places}))


def _weighted_sample(rng: random.Random, weights: Sequence[float], k: int) -> list[int]:
    """k distinct indices, each likelier in proportion to its weight (Efraimidis–Spirakis)."""
    keys = [(rng.random() ** (1 / w), i) for i, w in enumerate(weights)]
    keys.sort(reverse=True)
    return sorted(i for _, i in keys[:k])


def _kinds(rng: random.Random, mountain: Sequence[bool]) -> list[Kind]:
    n = len(mountain)
    weights = [MOUNTAIN_POVERTY_WEIGHT if m else 1.0 for m in mountain]
    monitored = set(_weighted_sample(rng, weights, round(n * MONITORED_SHARE)))
    rest = [i for i in range(n) if i not in monitored]
    lifted = {rest[j] for j in _weighted_sample(rng, [weights[i] for i in rest], round(n * LIFTED_SHARE))}
    out: list[Kind] = []
    for i in range(n):
        if i in monitored:
            category = CATEGORIES.draw(rng)
            was_lifted = category == MonitoringCategory.UNSTABLE_LIFTED or (
                category == MonitoringCategory.SUDDEN_HARDSHIP and rng.random() < 0.3)
            status = (MonitoringStatus.RISK_ELIMINATED if rng.random() < ELIMINATED_SHARE
                      else MonitoringStatus.RISK_NOT_ELIMINATED)
            out.append((HouseholdKind.MONITORED, LIFTED_YEARS.draw(rng) if was_lifted else None,
                        category, status))
        elif i in lifted:
            out.append((HouseholdKind.LIFTED, LIFTED_YEARS.draw(rng), None,
                        MonitoringStatus.NOT_MONITORED))
        else:
            out.append((HouseholdKind.ORDINARY, None, None, MonitoringStatus.NOT_MONITORED))
    return out


def _families(rng: random.Random, places: Sequence[Place], kinds: Sequence[Kind], issuer: IdIssuer) -> list[Draft]:
    drafts: list[Draft] = []
    serial: Counter[str] = Counter()
    for place, (kind, year, category, status) in zip(places, kinds, strict=True):
        township = BY_CODE[place.township_code]
        ethnicity = township_ethnicity(township).draw(rng)
        serial[place.group_code] += 1
        drafts.append(Draft(code=f"{place.group_code}{serial[place.group_code]:04d}", place=place,
                            township=township, kind=kind, lifted_year=year, category=category, status=status,
                            members=make_family(rng, issuer, kind, ethnicity, township)))
    return drafts


def _pick(rng: random.Random, drafts: Sequence[Draft], k: int, taken: set[int],
          fits: Callable[[Draft], bool]) -> list[int]:
    pool = [i for i, d in enumerate(drafts) if i not in taken and fits(d)]
    chosen = sorted(rng.sample(pool, min(k, len(pool))))
    taken.update(chosen)
    return chosen


def _situations(rng: random.Random, drafts: list[Draft], disaster_township: str) -> None:
    """Give a controlled share of households one situation each (exclusive), before and after their money."""
    n = len(drafts)
    taken: set[int] = set()
    for i in _pick(rng, drafts, count_for(Scenario.SERIOUS_ILLNESS, n), taken,
                   lambda d: scenarios.sickest_candidate(d.members) is not None):
        d = drafts[i]
        d.sick = scenarios.sickest_candidate(d.members)
        assert d.sick is not None
        scenarios.fall_ill(rng, d.members, d.sick)
        d.labels.add(Scenario.SERIOUS_ILLNESS)
        d.risks.add(RiskType.ILLNESS)
    for i in _pick(rng, drafts, count_for(Scenario.CHILD_OUT_OF_SCHOOL, n), taken,
                   lambda d: scenarios.school_child(d.members) is not None):
        d = drafts[i]
        d.dropout = scenarios.school_child(d.members)
        assert d.dropout is not None
        scenarios.drop_out(d.members, d.dropout)
        d.labels.add(Scenario.CHILD_OUT_OF_SCHOOL)
    for i in _pick(rng, drafts, count_for(Scenario.UNINSURED_MEMBER, n), taken, lambda d: True):
        scenarios.uninsure(rng, drafts[i].members)
        drafts[i].labels.add(Scenario.UNINSURED_MEMBER)

    for d in drafts:
        d.money = base_money(rng, d.members, d.kind, d.status, d.township.mountain)
        if d.sick is not None:
            d.medical_bill = scenarios.illness_costs(rng, d.money)

    for i in _pick(rng, drafts, count_for(Scenario.UNSAFE_WATER, n), taken, lambda d: d.township.mountain):
        drafts[i].water_safe = False
        drafts[i].labels.add(Scenario.UNSAFE_WATER)
    for i in _pick(rng, drafts, count_for(Scenario.UNSAFE_HOUSING, n), taken, lambda d: True):
        drafts[i].labels.add(Scenario.UNSAFE_HOUSING)
    for d in drafts:
        d.housing = housing(rng, d.size, Scenario.UNSAFE_HOUSING in d.labels)

    total = count_for(Scenario.DISASTER, n)
    local = _pick(rng, drafts, round(total * scenarios.DISASTER_IN_ONE_TOWNSHIP), taken,
                  lambda d: d.place.township_code == disaster_township)
    elsewhere = _pick(rng, drafts, total - len(local), taken, lambda d: d.place.township_code != disaster_township)
    for i in local + elsewhere:
        d = drafts[i]
        d.disaster_loss, d.disaster_note = scenarios.hit_by_disaster(rng, d.money)
        d.labels.add(Scenario.DISASTER)
        d.risks.add(RiskType.NATURAL_DISASTER)

    for i in _pick(rng, drafts, count_for(Scenario.SHARP_INCOME_FALL, n), taken,
                   lambda d: scenarios.can_fall(d.money, d.size)):
        d = drafts[i]
        d.previous_per_capita = d.per_capita
        risk = scenarios.cut_income(rng, d.members, d.money)
        d.risks.add(risk)
        d.labels.add(Scenario.SHARP_INCOME_FALL)
        if risk == RiskType.UNSTABLE_EMPLOYMENT:
            d.job_lost = next((j for j, f in enumerate(d.members) if f.migrant_months), None)


def _data_problems(rng: random.Random, drafts: list[Draft]) -> None:
    """Incomplete rows and ID numbers used in two households, on households with no other label."""
    n = len(drafts)
    taken = {i for i, d in enumerate(drafts) if d.labels}
    for i in _pick(rng, drafts, count_for(Scenario.INCOMPLETE_FORM, n), taken, lambda d: True):
        d = drafts[i]
        d.blank = BlankCell(member=rng.randrange(d.size), header=rng.choice(BLANKABLE))
        d.labels.add(Scenario.INCOMPLETE_FORM)

    def age(f: MemberFacts) -> int:
        return age_on(f.birth_date, REFERENCE_DAY)

    originals = _pick(rng, drafts, count_for(Scenario.DUPLICATE_ID, n), taken, lambda d: any(
        f.relation in (Relation.SON, Relation.DAUGHTER) and 20 <= age(f) <= 40 and f.school_status is None
        for f in d.members))
    partners = [i for i, d in enumerate(drafts) if i not in taken and any(
        f.relation in (Relation.SPOUSE, Relation.DAUGHTER_IN_LAW, Relation.SON_IN_LAW) for f in d.members)]
    rng.shuffle(partners)
    for a in originals:
        first = drafts[a]
        ma = next(j for j, f in enumerate(first.members) if f.relation in (Relation.SON, Relation.DAUGHTER)
                  and 20 <= age(f) <= 40 and f.school_status is None)
        person = first.members[ma]
        for pos, b in enumerate(partners):
            second = drafts[b]
            mb = next((j for j, f in enumerate(second.members)
                       if f.relation in (Relation.SPOUSE, Relation.DAUGHTER_IN_LAW, Relation.SON_IN_LAW)
                       and f.sex == person.sex and abs(age(f) - age(person)) <= 8 and f.school_status is None),
                      None)
            if mb is None:
                continue
            # married into another household without leaving the first (婚入未迁出): same person, same number
            second.members[mb] = second.members[mb].model_copy(update={
                "name": person.name, "id_number": person.id_number, "birth_date": person.birth_date,
                "ethnicity": person.ethnicity})
            first.duplicate = DuplicateId(member=ma, id_number=person.id_number, other_household=second.code,
                                          first=True)
            second.duplicate = DuplicateId(member=mb, id_number=person.id_number, other_household=first.code,
                                           first=False)
            first.labels.add(Scenario.DUPLICATE_ID)
            second.labels.add(Scenario.DUPLICATE_ID)
            taken.add(b)
            del partners[pos]
            break


def _collectors(rng: random.Random, villages: Sequence[Village]) -> dict[str, str]:
    """One 信息采集员 per village."""
    out: dict[str, str] = {}
    for v in villages:
        male = rng.random() < 0.6
        out[v.code] = full_name(rng, surname(rng, HAN), HAN, male, rng.randint(1970, 1998))
    return out


def priority_flags(rng: random.Random, d: Draft) -> tuple[PriorityGroup, ...]:
    """The nine priority groups as the registry knew them before the visits (some situations are not yet known)."""
    m = d.money
    flags: set[PriorityGroup] = set()
    if d.lifted_year == 2020:
        flags.add(PriorityGroup.LIFTED_2020)
    if (d.per_capita < 7000 and rng.random() < 0.8) or (Scenario.SHARP_INCOME_FALL in d.labels
                                                         and rng.random() < 0.4):
        flags.add(PriorityGroup.LOW_OR_FALLEN_INCOME)
    if any(f.tekun for f in d.members):
        flags.add(PriorityGroup.SCATTERED_TEKUN)
    if any(f.dibao for f in d.members):
        flags.add(PriorityGroup.DIBAO)
    if any(Health.DISABLED in f.health for f in d.members):
        flags.add(PriorityGroup.DISABLED)
    if sum(f.school_status in NON_COMPULSORY_SCHOOL for f in d.members) >= 2:
        flags.add(PriorityGroup.MANY_CHILDREN_IN_SCHOOL)
    gross = m.wages + m.business + m.property_income + m.transfers
    if gross > 0 and m.wages >= 0.6 * gross and any(f.migrant_months and f.migrant_months <= 6 for f in d.members):
        flags.add(PriorityGroup.UNSTABLE_MIGRANT_INCOME)
    if d.labels & {Scenario.SERIOUS_ILLNESS, Scenario.DISASTER, Scenario.SHARP_INCOME_FALL} and rng.random() < 0.3:
        flags.add(PriorityGroup.RIGID_SPENDING_OR_INCOME_DROP)
    if rng.random() < (0.15 if d.candidate else 0.005):
        flags.add(PriorityGroup.ASSISTANCE_PLATFORM)
    return tuple(g for g in PriorityGroup if g in flags)
