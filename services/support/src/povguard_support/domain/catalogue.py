"""The [support] section of the campaign policy: income goals and the measure catalogue (帮扶措施目录), as data."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from povguard_contracts.vocab import Department, MeasureKind, RiskType

GAPS = ("两不愁", "义务教育", "基本医疗", "住房安全", "饮水安全")
# the measure a plan carries for each 三保障/water gap when nothing decided answers it (seed §二(三):
# 对义务教育、基本医疗、住房安全、饮水安全等方面存在问题的，及时落实针对性帮扶); 两不愁 by 综合保障 (低保、临时救助)
GAP_MEASURES = {"两不愁": MeasureKind.SOCIAL_SECURITY, "义务教育": MeasureKind.COMPULSORY_EDUCATION,
                "基本医疗": MeasureKind.HEALTH, "住房安全": MeasureKind.HOUSING, "饮水安全": MeasureKind.WATER}


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

    @model_validator(mode="after")
    def _gap_measures_answer_their_gap(self) -> SupportPolicy:
        wrong = [g for g, kind in GAP_MEASURES.items() if g not in self.measures[kind].gaps]
        if wrong:
            raise ValueError(f"the catalogue's measures for the gaps {wrong} do not answer them")
        return self

    def entry(self, kind: MeasureKind) -> MeasureEntry:
        return self.measures[kind]

    def covers(self, kind: MeasureKind) -> frozenset[str]:
        """The risk types and gaps a measure of this kind answers."""
        entry = self.measures[kind]
        return frozenset([*(r.value for r in entry.risks), *entry.gaps])
