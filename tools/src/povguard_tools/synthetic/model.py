"""What a synthetic county is made of: households as the registry sees them, the 2022 campaign's visit forms,
department warnings and asset-check results, and the truth the generator put in (so tests and the demo can check
outcomes against it). Pure data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from povguard_contracts.intake import MemberFacts, Place, VisitForm
from povguard_contracts.vocab import (
    Department,
    HouseholdKind,
    MonitoringCategory,
    MonitoringStatus,
    PriorityGroup,
    WarningKind,
)


class Scenario(StrEnum):
    """Truth labels: the situations and data problems the generator gave a household."""

    SHARP_INCOME_FALL = "sharp_income_fall"
    SERIOUS_ILLNESS = "serious_illness"
    DISASTER = "disaster"
    UNSAFE_HOUSING = "unsafe_housing"
    CHILD_OUT_OF_SCHOOL = "child_out_of_school"
    UNSAFE_WATER = "unsafe_water"
    UNINSURED_MEMBER = "uninsured_member"
    NO_LABOUR = "no_labour"  # derived: no member with labour capacity
    CHECK_HIT = "check_hit"  # a department asset check found a vehicle, public servant or business
    INCOMPLETE_FORM = "incomplete_form"  # data problem: one required cell of one member row left empty
    DUPLICATE_ID = "duplicate_id"  # data problem: a member carries an ID number also used in another household
    # data problem: one member registered with a wrong fact that the visit contradicts (a member-level DQ-A rule)
    MISRECORDED_MEMBER = "misrecorded_member"


DATA_PROBLEMS = frozenset({Scenario.INCOMPLETE_FORM, Scenario.DUPLICATE_ID})  # the rows an import must reject


@dataclass(frozen=True, slots=True)
class BlankCell:
    """The registry cell left empty on purpose: member index in the household, and the template header."""

    member: int
    header: str


@dataclass(frozen=True, slots=True)
class DuplicateId:
    """A member whose ID number also belongs to a member of another household (`first` marks the original)."""

    member: int
    id_number: str
    other_household: str
    first: bool


@dataclass(frozen=True, slots=True)
class Misrecord:
    """A member registered with a wrong fact: its index, the data-quality rule the wrong fact trips, and the
    member's true facts (what a correction restores)."""

    member: int
    rule_id: str
    true_facts: MemberFacts


@dataclass(frozen=True, slots=True)
class Truth:
    labels: tuple[Scenario, ...]
    net_income: float  # 家庭纯收入 by the DOMAIN formula, for the accounting window
    per_capita: float  # 人均纯收入
    previous_per_capita: float | None = None  # before the fall (sharp_income_fall only)
    blank: BlankCell | None = None
    duplicate: DuplicateId | None = None
    members: tuple[MemberFacts, ...] = ()  # the true member facts (the registry's differ where misrecorded)
    misrecorded: Misrecord | None = None

    def has(self, label: Scenario) -> bool:
        return label in self.labels


@dataclass(frozen=True, slots=True)
class SyntheticHousehold:
    code: str
    place: Place
    kind: HouseholdKind
    lifted_year: int | None
    category: MonitoringCategory | None
    status: MonitoringStatus
    flags: tuple[PriorityGroup, ...]
    members: tuple[MemberFacts, ...]  # as registered (the import template's rows)
    visit: VisitForm
    truth: Truth


@dataclass(frozen=True, slots=True)
class DepartmentWarning:
    """部门筛查预警. `household_code` is truth (None: the person is not in the registry); a department sends only
    the other fields."""

    department: Department
    kind: WarningKind
    id_number: str
    person_name: str
    amount: float | None
    occurred_on: date
    source_ref: str
    note: str = ""
    household_code: str | None = None


class CheckHitKind(StrEnum):
    VEHICLE = "车辆"
    PUBLIC_SERVANT = "国家公职人员"
    BUSINESS = "经营实体"


@dataclass(frozen=True, slots=True)
class CheckHit:
    department: Department
    kind: CheckHitKind
    id_number: str
    person_name: str
    detail: str
    value: float | None = None


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The county's joint check of one household's assets and facts (seed §三 step 9): what the departments found."""

    household_code: str
    checked_on: date
    departments: tuple[Department, ...]
    hits: tuple[CheckHit, ...]
    source_ref: str


@dataclass(frozen=True, slots=True)
class County:
    seed: int
    households: tuple[SyntheticHousehold, ...]
    warnings: tuple[DepartmentWarning, ...]
    checks: tuple[CheckResult, ...]
    disaster_township: str  # 乡镇代码 where the disasters are concentrated
    villages: int = 0
    groups: int = 0

    @property
    def members(self) -> int:
        return sum(len(h.members) for h in self.households)
