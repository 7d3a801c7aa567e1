"""规模性返贫风险 per township (seed §二(四)): indicators against the thresholds of [assessment.scale]. An alert is
raised when the set of crossed indicators grows (a new indicator crosses); falling back below and crossing again
raises again."""

from __future__ import annotations

from dataclasses import dataclass

from povguard_rules.policy import ScaleThresholds

INDICATOR_NAMES = {
    "not_eliminated_share": "监测对象风险未消除户占比",
    "income_fell_share": "收入明显减少户占比",
    "disaster_per_1000": "受灾预警（每千户）",
    "epidemic_per_1000": "大额医疗支出预警（每千户，疫情及疾病信号）",
    "unemployment_per_1000": "失业预警（每千户）",
}


@dataclass(frozen=True, slots=True)
class TownshipCounts:
    households: int  # registered households assessed in the township
    not_eliminated: int  # monitoring objects with 风险未消除 (incl. those proposed for new identification)
    income_fell: int
    disaster_warnings: int
    medical_warnings: int
    unemployment_warnings: int


def indicators(c: TownshipCounts) -> dict[str, float]:
    n = max(c.households, 1)
    return {
        "not_eliminated_share": round(c.not_eliminated / n, 4),
        "income_fell_share": round(c.income_fell / n, 4),
        "disaster_per_1000": round(c.disaster_warnings * 1000 / n, 2),
        "epidemic_per_1000": round(c.medical_warnings * 1000 / n, 2),
        "unemployment_per_1000": round(c.unemployment_warnings * 1000 / n, 2),
    }


def crossed(values: dict[str, float], thresholds: ScaleThresholds, households: int) -> list[str]:
    if households < thresholds.min_households:
        return []
    limits = thresholds.thresholds()
    return [k for k in limits if values[k] >= limits[k]]


def should_raise(previous: list[str], now: list[str]) -> bool:
    return bool(set(now) - set(previous))
