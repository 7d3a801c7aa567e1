"""规模性返贫风险 (seed §二(四)), per township and per administrative village: the indicators the plan names, each a
count of households against a base, crossing when its share reaches the policy's rate AND the count reaches the
policy's minimum ([assessment.scale]). An alert is raised when the set of crossed indicators (the township's and its
villages') grows; falling back below and crossing again raises again."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from povguard_contracts.vocab import RiskType
from povguard_rules.policy import ScaleThresholds

# the risk types the indicators count (scale_counts.py): a change of any other risk leaves every count as it was
COUNTED_RISKS = frozenset({RiskType.NATURAL_DISASTER.value, RiskType.UNSTABLE_EMPLOYMENT.value,
                           RiskType.INDUSTRY_FAILURE.value})

INDICATOR_NAMES = {
    "disaster": "受灾户占比（受灾预警或因自然灾害）",
    "unemployment": "失业户占比（失业预警或因务工就业不稳）",
    "industry_failure": "乡村产业项目失败户占比（因产业项目失败）",
    "relocation_employment": "易地扶贫搬迁集中安置点失业户占比",
    "not_eliminated": "监测对象中风险未消除户占比",
}


@dataclass(frozen=True, slots=True)
class AreaCounts:
    """Households of one township or village, each counted once per indicator."""

    households: int
    disaster: int
    unemployment: int
    industry_failure: int
    relocation_households: int  # households in the area that live at a 集中安置点
    relocation_unemployed: int
    monitoring_objects: int  # 监测对象 and households proposed for identification
    not_eliminated: int

    def counts(self) -> dict[str, int]:
        return {"disaster": self.disaster, "unemployment": self.unemployment,
                "industry_failure": self.industry_failure, "relocation_employment": self.relocation_unemployed,
                "not_eliminated": self.not_eliminated}

    def bases(self) -> dict[str, int]:
        return {"disaster": self.households, "unemployment": self.households,
                "industry_failure": self.households, "relocation_employment": self.relocation_households,
                "not_eliminated": self.monitoring_objects}


@dataclass(frozen=True, slots=True)
class Standing:
    """All that the scale counts read of a household's read-model row: a re-assessment that leaves it as it was
    leaves every count of every township as it was, so its township need not be counted again."""

    township: str
    village: str
    kind: str
    at_risk: bool
    risks: frozenset[str]  # the COUNTED_RISKS it has

    @classmethod
    def of(cls, township: str, village: str, kind: str, at_risk: bool, risk_types: Iterable[str]) -> Standing:
        return cls(township, village, kind, at_risk, COUNTED_RISKS.intersection(risk_types))


def indicators(c: AreaCounts) -> dict[str, float]:
    """Each indicator's share of its base (0 for an empty base)."""
    bases = c.bases()
    return {k: round(n / bases[k], 4) if bases[k] else 0.0 for k, n in c.counts().items()}


def crossed(c: AreaCounts, thresholds: ScaleThresholds) -> list[str]:
    values, counts = indicators(c), c.counts()
    return [k for k, limit in thresholds.limits().items()
            if counts[k] >= limit.min_count and values[k] >= limit.rate]


def village_crossings(villages: dict[str, AreaCounts], thresholds: ScaleThresholds) -> dict[str, list[str]]:
    """The villages with a crossed indicator, by 行政村代码."""
    out = {code: crossed(c, thresholds) for code, c in sorted(villages.items())}
    return {code: names for code, names in out.items() if names}


def flatten(township: list[str], villages: dict[str, list[str]]) -> list[str]:
    """The township's crossed indicators and each village's as `<行政村代码>:<indicator>`: one set whose growth
    raises an alert."""
    return township + [f"{code}:{name}" for code, names in sorted(villages.items()) for name in names]


def should_raise(previous: list[str], now: list[str]) -> bool:
    return bool(set(now) - set(previous))
