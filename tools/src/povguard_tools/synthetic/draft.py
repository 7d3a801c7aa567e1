"""A household while the generator builds it (mutable), before it becomes a SyntheticHousehold."""

from __future__ import annotations

from dataclasses import dataclass, field

from povguard_contracts.intake import Housing, MemberFacts, Place
from povguard_contracts.vocab import (
    HouseholdKind,
    MonitoringCategory,
    MonitoringStatus,
    RiskType,
)
from povguard_tools.synthetic.income import Money
from povguard_tools.synthetic.model import BlankCell, DuplicateId, Misrecord, Scenario
from povguard_tools.synthetic.places import Township


@dataclass(slots=True)
class Draft:
    code: str
    place: Place
    township: Township
    kind: HouseholdKind
    lifted_year: int | None
    category: MonitoringCategory | None
    status: MonitoringStatus
    members: list[MemberFacts]
    money: Money = field(default_factory=Money)
    labels: set[Scenario] = field(default_factory=set)
    risks: set[RiskType] = field(default_factory=set)
    difficulties: list[str] = field(default_factory=list)
    housing: Housing = field(default_factory=Housing)
    water_safe: bool = True
    previous_per_capita: float | None = None
    sick: int | None = None  # member struck by serious illness
    medical_bill: float = 0  # total bill of that illness (what 医保 reports)
    dropout: int | None = None  # child out of school
    job_lost: int | None = None  # migrant whose work fell away
    disaster_loss: float = 0
    disaster_note: str = ""
    candidate: bool = False  # signs an application and an authorisation (to be identified)
    blank: BlankCell | None = None
    duplicate: DuplicateId | None = None
    misrecord: Misrecord | None = None  # `members` stay true: `registered` holds the registry's wrong ones
    registered: list[MemberFacts] | None = None

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def per_capita(self) -> float:
        return round(self.money.net / self.size, 2)

    @property
    def per_capita_after_rigid(self) -> float:
        return (self.money.net - self.money.rigid) / self.size
