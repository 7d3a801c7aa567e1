"""The [support] section of the campaign policy: income goals and the measure catalogue (帮扶措施目录), as data; and
the two rules over a plan's measures that support (which records plans) and reporting (which counts them) must
compute identically: 缺什么补什么 (the needs no measure answers) and 一兜了之 (no developmental measure for a
household that can work)."""

from __future__ import annotations

from collections.abc import Iterable
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


def needs(*found: Iterable[str]) -> list[str]:
    """Every risk type and 三保障/water gap a household has, from any number of sources (the decision's risks, the
    assessed risks, the assessed gaps), once each and sorted."""
    return sorted({need for source in found for need in source})


def uncovered(household_needs: Iterable[str], kinds: Iterable[MeasureKind], catalogue: SupportPolicy) -> list[str]:
    """缺什么补什么: the needs (in their order) that no measure of these kinds answers."""
    covered = {need for kind in kinds for need in catalogue.covers(kind)}
    return [n for n in household_needs if n not in covered]


def safety_net_only(labour_capable: bool | None, developmental: Iterable[bool]) -> bool:
    """一兜了之: a household that can work (known to) whose plan has no developmental measure (产业, 就业, 金融,
    公益岗位)."""
    return bool(labour_capable) and not any(developmental)
