"""The counts behind the scale-risk indicators of one township and its villages, from the households read model and
the warnings: a household counts once per indicator whether a department warned of it or its visit shows it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_assessment.domain.scale import AreaCounts, crossed, indicators, village_crossings
from povguard_contracts.vocab import HouseholdKind, RiskType, WarningKind
from povguard_rules.policy import ScaleThresholds


def _has_risk(kind: RiskType) -> str:
    return json.dumps({"risks": [{"type": kind.value}]}, ensure_ascii=False)


_BY_VILLAGE = text("""
    WITH w AS (
        SELECT household_id, bool_or(kind = :k_dis) AS dis, bool_or(kind = :k_unemp) AS unemp
        FROM assessment.warnings WHERE township_code = :t AND household_id IS NOT NULL GROUP BY household_id),
    h AS (
        SELECT h.village_code, h.kind, h.at_risk, h.village_code = ANY(CAST(:sites AS text[])) AS site,
               coalesce(w.dis, false) OR coalesce(h.risk @> CAST(:r_dis AS jsonb), false) AS dis,
               coalesce(w.unemp, false) OR coalesce(h.risk @> CAST(:r_unemp AS jsonb), false) AS unemp,
               coalesce(h.risk @> CAST(:r_ind AS jsonb), false) AS ind
        FROM assessment.households h LEFT JOIN w ON w.household_id = h.household_id WHERE h.township_code = :t)
    SELECT village_code, count(*) AS n, count(*) FILTER (WHERE dis) AS dis, count(*) FILTER (WHERE unemp) AS unemp,
           count(*) FILTER (WHERE ind) AS ind, count(*) FILTER (WHERE site) AS site,
           count(*) FILTER (WHERE site AND unemp) AS site_unemp,
           count(*) FILTER (WHERE kind = :monitored OR at_risk) AS mo, count(*) FILTER (WHERE at_risk) AS ne
    FROM h GROUP BY village_code ORDER BY village_code""")

# warnings about people not (yet) matched to a household count for the township alone
_UNMATCHED = text("""
    SELECT count(*) FILTER (WHERE kind = :k_dis) AS dis, count(*) FILTER (WHERE kind = :k_unemp) AS unemp
    FROM assessment.warnings WHERE township_code = :t AND household_id IS NULL""")


@dataclass(frozen=True, slots=True)
class TownshipScale:
    township: AreaCounts
    villages: dict[str, AreaCounts]

    def crossed(self, thresholds: ScaleThresholds) -> tuple[list[str], dict[str, list[str]]]:
        return crossed(self.township, thresholds), village_crossings(self.villages, thresholds)

    def village_rows(self, thresholds: ScaleThresholds) -> dict[str, dict[str, Any]]:
        """Per village as the read model keeps it: households, indicators, counts, crossed."""
        return {code: {"households": c.households, "indicators": indicators(c), "counts": c.counts(),
                       "crossed": crossed(c, thresholds)} for code, c in self.villages.items()}


async def township_scale(conn: AsyncConnection, township: str, thresholds: ScaleThresholds) -> TownshipScale:
    params = {"t": township, "k_dis": WarningKind.DISASTER.value, "k_unemp": WarningKind.UNEMPLOYMENT.value}
    rows = (await conn.execute(_BY_VILLAGE, {
        **params, "sites": list(thresholds.relocation_sites), "monitored": HouseholdKind.MONITORED.value,
        "r_dis": _has_risk(RiskType.NATURAL_DISASTER), "r_unemp": _has_risk(RiskType.UNSTABLE_EMPLOYMENT),
        "r_ind": _has_risk(RiskType.INDUSTRY_FAILURE)})).all()
    villages = {r.village_code: AreaCounts(
        households=r.n, disaster=r.dis, unemployment=r.unemp, industry_failure=r.ind, relocation_households=r.site,
        relocation_unemployed=r.site_unemp, monitoring_objects=r.mo, not_eliminated=r.ne) for r in rows}
    loose = (await conn.execute(_UNMATCHED, params)).one()

    def total(field: str) -> int:
        return sum(getattr(c, field) for c in villages.values())

    town = AreaCounts(
        households=total("households"), disaster=total("disaster") + loose.dis,
        unemployment=total("unemployment") + loose.unemp, industry_failure=total("industry_failure"),
        relocation_households=total("relocation_households"), relocation_unemployed=total("relocation_unemployed"),
        monitoring_objects=total("monitoring_objects"), not_eliminated=total("not_eliminated"))
    return TownshipScale(town, villages)
