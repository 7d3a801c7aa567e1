"""The [support] section of the campaign policy: income goals and the measure catalogue (帮扶措施目录), as data."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from povguard_contracts.vocab import Department, MeasureKind, RiskType

GAPS = ("两不愁", "义务教育", "基本医疗", "住房安全", "饮水安全")


class MeasureEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    developmental: bool
    department: Department
    risks: list[RiskType] = Field(default_factory=list)
    gaps: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_gaps(self) -> MeasureEntry:
        unknown = [g for g in self.gaps if g not in GAPS]
        if unknown:
            raise ValueError(f"unknown 三保障/water gaps {unknown}; allowed: {list(GAPS)}")
        return self


class SupportPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    goal_years: int = Field(default=3, ge=1, le=10)
    # shares that weigh amounts: Decimals, so that goals and the behind check are exact
    goal_growth: Decimal = Field(default=Decimal("0.08"), ge=0, le=1)
    behind_tolerance: Decimal = Field(default=Decimal("0.05"), ge=0, lt=1)
    measures: dict[MeasureKind, MeasureEntry]

    @model_validator(mode="after")
    def _every_kind(self) -> SupportPolicy:
        missing = [k.value for k in MeasureKind if k not in self.measures]
        if missing:
            raise ValueError(f"the measure catalogue has no entry for {missing}")
        return self

    def entry(self, kind: MeasureKind) -> MeasureEntry:
        return self.measures[kind]

    def covers(self, kind: MeasureKind) -> frozenset[str]:
        """The risk types and gaps a measure of this kind answers."""
        entry = self.measures[kind]
        return frozenset([*(r.value for r in entry.risks), *entry.gaps])
