"""Members registered with a wrong fact (seed §三 step 10, 准确性): the registry says what the visit contradicts, so
the assessment finds a member-level data problem (DQ-A-MEDICAL, DQ-A-SCHOOL, DQ-A-LABOUR, DQ-A-DIBAO, DQ-A-TEKUN)
that a correction of the member's record (信息更正) clears. The true facts stay in the household's truth."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from povguard_contracts.intake import MemberFacts
from povguard_contracts.vocab import Education, LabourSkill, MedicalInsurance
from povguard_tools.synthetic.draft import Draft
from povguard_tools.synthetic.model import Misrecord, Scenario
from povguard_tools.synthetic.people import REFERENCE_DAY, age_on
from povguard_tools.synthetic.scenarios import SHARES, SMALL_COUNTY


def _age(f: MemberFacts) -> int:
    return age_on(f.birth_date, REFERENCE_DAY)


def _pupil(f: MemberFacts) -> bool:  # 7–14 on 04-30: of compulsory-school age (6–15) on any visit day
    return 7 <= _age(f) <= 14 and f.school_status is not None


def _no_welfare(members: Sequence[MemberFacts]) -> bool:  # no 低保 or 特困 member: no such transfer income
    return not any(f.dibao or f.tekun for f in members)


# rule → (which member may carry the wrong fact, what the registry wrongly says)
Who = Callable[[Sequence[MemberFacts]], list[int]]
WRONG: dict[str, tuple[Who, dict[str, object]]] = {
    # 基本医疗保险 left at 未参加 although the member is enrolled (the visit says 基本医疗有保障)
    "DQ-A-MEDICAL": (lambda ms: list(range(len(ms))),
                     {"medical_insurance": MedicalInsurance.NONE, "serious_illness_insurance": False}),
    # a pupil's 文化程度 filled instead of 在校生状况: out of school by the record, in school by the visit
    "DQ-A-SCHOOL": (lambda ms: [i for i, f in enumerate(ms) if _pupil(f)],
                    {"school_status": None, "education": Education.PRIMARY}),
    # a child of 10–14 recorded as 普通劳动力
    "DQ-A-LABOUR": (lambda ms: [i for i, f in enumerate(ms) if 10 <= _age(f) <= 14],
                    {"labour_skill": LabourSkill.ORDINARY}),
    # 享受低保 / 特困供养 ticked for the head of a household that receives neither
    "DQ-A-DIBAO": (lambda ms: [0] if _no_welfare(ms) else [], {"dibao": True}),
    "DQ-A-TEKUN": (lambda ms: [0] if _no_welfare(ms) else [], {"tekun": True}),
}


def per_rule(households: int) -> int:
    """Households misrecorded for each rule: the scenario's share split evenly, at least one each from
    SMALL_COUNTY on."""
    n = round(SHARES[Scenario.MISRECORDED_MEMBER] * households / len(WRONG))
    return max(n, 1) if households >= SMALL_COUNTY else n


def misrecord(rng: random.Random, drafts: list[Draft]) -> None:
    """Give `per_rule` households with no other label one misrecorded member for each rule."""
    taken = {i for i, d in enumerate(drafts) if d.labels}
    k = per_rule(len(drafts))
    for rule, (candidates, wrong) in WRONG.items():
        pool = [i for i, d in enumerate(drafts) if i not in taken and candidates(d.members)]
        for i in sorted(rng.sample(pool, min(k, len(pool)))):
            taken.add(i)
            d = drafts[i]
            who = rng.choice(candidates(d.members))
            d.misrecord = Misrecord(member=who, rule_id=rule, true_facts=d.members[who])
            d.registered = [*d.members]
            d.registered[who] = d.members[who].model_copy(update=wrong)
            d.labels.add(Scenario.MISRECORDED_MEMBER)
