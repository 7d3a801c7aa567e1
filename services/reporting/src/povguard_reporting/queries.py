"""The figures: plain SQL over the read models, for an org unit (county, township or village) as of now or any past
time. Every screen, export and statistics table reads them from here, so they all show the same numbers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_contracts.vocab import IncomeBand, Outcome
from povguard_reporting.consumers import PROJECTIONS
from povguard_reporting.policy import ACTS_AT, ReportingPolicy

CHINA = ZoneInfo("Asia/Shanghai")
LEVELS = {6: "county", 9: "township", 12: "village"}
CHILD = {6: "township_code", 9: "village_code"}


@dataclass(frozen=True)
class Scope:
    """What a figure covers: an org unit's code prefix, and the moment (None: now)."""

    org: str
    at: datetime | None = None
    today: date | None = None  # the campaign's day (its clock) when `at` is None

    @property
    def level(self) -> str:
        return LEVELS.get(len(self.org), "village")

    @property
    def day(self) -> date:
        """The calendar day the figures are for (deadlines count against it)."""
        if self.at is not None:
            return self.at.astimezone(CHINA).date()
        assert self.today is not None, "a scope of now needs the campaign's day"
        return self.today

    def valid(self, alias: str = "") -> str:
        a = f"{alias}." if alias else ""
        if self.at is None:
            return f"{a}valid_to IS NULL"
        return f"{a}valid_from <= :at AND ({a}valid_to IS NULL OR {a}valid_to > :at)"

    @property
    def params(self) -> dict[str, Any]:
        return {"org": self.org + "%", "at": self.at}


def end_of(day: date) -> datetime:
    """As of a date: everything recorded up to the end of that day (China time)."""
    return datetime.combine(day + timedelta(days=1), time(), CHINA) - timedelta(microseconds=1)


def _households(scope: Scope) -> str:
    return f"SELECT * FROM reporting.households WHERE {scope.valid()} AND village_code LIKE :org"


_COUNTS = """
    count(*) FILTER (WHERE registered) AS households,
    coalesce(sum(persons) FILTER (WHERE registered), 0) AS persons,
    count(*) FILTER (WHERE priority) AS priority,
    count(*) FILTER (WHERE visited) AS visited,
    count(*) FILTER (WHERE assessed) AS assessed,
    count(*) FILTER (WHERE proposal IS NOT NULL AND proposal <> '无变化') AS proposed,
    count(*) FILTER (WHERE held) AS held,
    count(*) FILTER (WHERE open_stage IS NOT NULL) AS open_cases,
    count(*) FILTER (WHERE open_stage = ANY(:late)) AS overdue,
    count(*) FILTER (WHERE decided <> '{}') AS decided,
    count(*) FILTER (WHERE plan_open) AS plans,
    count(*) FILTER (WHERE plan_open AND missing <> '{}') AS missing,
    count(*) FILTER (WHERE plan_open AND safety_net_only) AS safety_net_only,
    count(*) FILTER (WHERE unrecorded > 0 OR unreceived > 0) AS mismatched"""


def _late(policy: ReportingPolicy, day: date) -> list[str]:
    return [stage for stage, deadline in policy.stage_deadlines.items() if deadline < day]


async def names(conn: AsyncConnection, codes: Sequence[str]) -> dict[str, str]:
    rows = await conn.execute(text("SELECT code, name FROM reporting.places WHERE code = ANY(:c)"),
                              {"c": list(codes)})
    return {r.code: r.name for r in rows}


async def data_as_of(conn: AsyncConnection, scope: Scope) -> dict[str, dict[str, Any]]:
    """What the figures count, exactly: per source service, the last of its events applied (up to the scope's
    moment), by its time and its position in that service's store. A source with nothing yet is left out."""
    rows = await conn.execute(text("""
        SELECT s.source, l.time, l.position FROM unnest(CAST(:sources AS text[])) AS s(source)
        CROSS JOIN LATERAL (SELECT time, position FROM reporting.log
                            WHERE source = s.source AND (CAST(:at AS timestamptz) IS NULL OR time <= :at)
                            ORDER BY time DESC, seq DESC LIMIT 1) AS l"""),
        {"sources": list(PROJECTIONS.sources), "at": scope.at})
    return {r.source: {"time": r.time.isoformat(), "position": r.position} for r in rows}


def latest(as_of: dict[str, dict[str, Any]]) -> datetime | None:
    """The time of the last event any source contributed (None: no data yet)."""
    times = [datetime.fromisoformat(s["time"]) for s in as_of.values()]
    return max(times) if times else None


async def version(conn: AsyncConnection) -> int:
    """The last fact projected: changes whenever any figure may have."""
    return int((await conn.execute(text("SELECT coalesce(max(seq), 0) FROM reporting.log"))).scalar_one())


async def counts(conn: AsyncConnection, scope: Scope, policy: ReportingPolicy) -> tuple[dict[str, Any],
                                                                                         list[dict[str, Any]]]:
    """The org unit's totals and the same counts per child unit (townships of a county, villages of a township)."""
    child = CHILD.get(len(scope.org), "village_code")
    rows = (await conn.execute(text(f"""
        SELECT {child} AS code, GROUPING({child}) AS total, {_COUNTS}
        FROM ({_households(scope)}) h GROUP BY GROUPING SETS (({child}), ()) ORDER BY 1 NULLS FIRST"""),
        {**scope.params, "late": _late(policy, scope.day)})).all()
    problems = {r.code: r.open for r in await conn.execute(text(f"""
        SELECT left(village_code, :n) AS code, count(*) FILTER (WHERE open) AS open FROM reporting.problems
        WHERE {scope.valid()} AND village_code LIKE :org GROUP BY 1"""),
        {**scope.params, "n": 9 if child == "township_code" else 12})}
    totals: dict[str, Any] = {}
    children: list[dict[str, Any]] = []
    for r in rows:
        values = {k: int(v) for k, v in r._mapping.items() if k not in ("code", "total")}
        if r.total:
            totals = values | {"problems_open": sum(problems.values())}
        else:
            children.append({"code": r.code, **values, "problems_open": problems.get(r.code, 0)})
    if not totals:
        totals = {k: 0 for k in _COUNT_NAMES} | {"problems_open": 0}
    found = await names(conn, [c["code"] for c in children])
    for c in children:
        c["name"] = found.get(c["code"], c["code"])
    return totals, children


_COUNT_NAMES = ("households", "persons", "priority", "visited", "assessed", "proposed", "held", "open_cases", "overdue",
                "decided", "plans", "missing", "safety_net_only", "mismatched")


async def _tally(conn: AsyncConnection, scope: Scope, expression: str, where: str = "true",
                 weight: str = "1") -> dict[str, int]:
    rows = await conn.execute(text(f"""
        SELECT k, sum({weight}) AS n FROM ({_households(scope)}) h, {expression} AS k WHERE {where}
        GROUP BY k ORDER BY k"""), scope.params)
    return {r.k: int(r.n) for r in rows if r.k is not None}


async def stages(conn: AsyncConnection, scope: Scope) -> dict[str, Any]:
    return {"all": await _tally(conn, scope, "unnest(case_stages)"),
            "open": await _tally(conn, scope, "CAST(open_stage AS text)", "open_stage IS NOT NULL")}


async def outcomes(conn: AsyncConnection, scope: Scope) -> dict[str, Any]:
    """Proposed and decided outcomes (户 and 人), new monitoring objects by category and risk type."""
    decided = await conn.execute(text(f"""
        SELECT k, count(*) AS households, sum(persons) AS persons FROM ({_households(scope)}) h, unnest(decided) AS k
        GROUP BY k"""), scope.params)
    return {
        "proposed": await _tally(conn, scope, "CAST(proposal AS text)", "proposal IS NOT NULL"),
        "decided": {r.k: {"households": int(r.households), "persons": int(r.persons or 0)} for r in decided},
        "new_categories": await _tally(conn, scope, "CAST(new_category AS text)", "new_category IS NOT NULL"),
        "new_risks": await _tally(conn, scope, "unnest(new_risks)"),
        "order": [o.value for o in Outcome if o != Outcome.NO_CHANGE],
    }


async def bands(conn: AsyncConnection, scope: Scope) -> list[dict[str, Any]]:
    """The base database of seed §二(一)2: households and persons per income band."""
    rows = await conn.execute(text(f"""
        SELECT band, count(*) AS households, coalesce(sum(assessed_persons), 0) AS persons
        FROM ({_households(scope)}) h WHERE band IS NOT NULL GROUP BY band"""), scope.params)
    found = {r.band: (int(r.households), int(r.persons)) for r in rows}
    return [{"band": b.value, "households": found.get(b.value, (0, 0))[0], "persons": found.get(b.value, (0, 0))[1]}
            for b in IncomeBand]


async def support(conn: AsyncConnection, scope: Scope) -> dict[str, Any]:
    row = (await conn.execute(text(f"""
        SELECT count(*) FILTER (WHERE plan_open) AS plans,
               coalesce(sum(cardinality(measure_kinds)), 0) AS measures,
               coalesce(sum(implemented), 0) AS implemented,
               count(*) FILTER (WHERE plan_open AND missing <> '{{}}') AS households_missing,
               count(*) FILTER (WHERE plan_open AND safety_net_only) AS safety_net_only,
               count(*) FILTER (WHERE plan_open AND behind) AS behind,
               coalesce(sum(unrecorded), 0) AS unrecorded, coalesce(sum(unreceived), 0) AS unreceived
        FROM ({_households(scope)}) h"""), scope.params)).one()
    return {**{k: int(v) for k, v in row._mapping.items()},
            "by_kind": await _tally(conn, scope, "unnest(measure_kinds)", "plan_open"),
            "missing_by_need": await _tally(conn, scope, "unnest(missing)", "plan_open")}


async def problems(conn: AsyncConnection, scope: Scope, days: int = 14) -> dict[str, Any]:
    """Data problems open and cleared by rule, and the 问题清零 trend: problems open at the end of each recent day."""
    rows = await conn.execute(text(f"""
        SELECT rule_id, kind, count(*) FILTER (WHERE open) AS open, count(*) FILTER (WHERE NOT open) AS cleared
        FROM reporting.problems WHERE {scope.valid()} AND village_code LIKE :org
        GROUP BY rule_id, kind ORDER BY rule_id"""), scope.params)
    by_rule = [{"rule": r.rule_id, "kind": r.kind, "open": int(r.open), "cleared": int(r.cleared)} for r in rows]
    first = scope.day - timedelta(days=days - 1)
    trend = await conn.execute(text("""
        SELECT d::date AS day, (SELECT count(*) FROM reporting.problems p
                                WHERE p.village_code LIKE :org AND p.open AND p.valid_from <= d + interval '1 day'
                                  AND (p.valid_to IS NULL OR p.valid_to > d + interval '1 day')) AS open
        FROM generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') AS d"""),
        {"org": scope.org + "%", "first": first, "last": scope.day})
    return {"open": sum(r["open"] for r in by_rule), "cleared": sum(r["cleared"] for r in by_rule),
            "by_rule": by_rule, "trend": [{"day": r.day.isoformat(), "open": int(r.open)} for r in trend]}


async def deadlines(conn: AsyncConnection, scope: Scope, policy: ReportingPolicy) -> dict[str, Any]:
    """Days left per stage against the calendar, with the open cases at each stage and who must act; the 15-day
    identification limit (at risk: within the policy's warning days; past)."""
    open_at = await _tally(conn, scope, "CAST(open_stage AS text)", "open_stage IS NOT NULL")
    rows = []
    for stage, deadline in policy.stage_deadlines.items():
        left = (deadline - scope.day).days
        rows.append({"stage": stage, "deadline": deadline.isoformat(), "days_left": left,
                     "open": open_at.get(stage, 0), "overdue": open_at.get(stage, 0) if left < 0 else 0,
                     "acts": ACTS_AT.get(stage, "")})
    limit = policy.policy.calendar.identification_max_days
    ident = (await conn.execute(text(f"""
        SELECT count(*) FILTER (WHERE lead_date + CAST(:max AS int) - CAST(:near AS int) <= CAST(:day AS date)) AS near,
               count(*) FILTER (WHERE lead_date + CAST(:max AS int) < CAST(:day AS date)) AS past
        FROM ({_households(scope)}) h WHERE open_stage IS NOT NULL AND lead_date IS NOT NULL"""),
        {**scope.params, "max": limit, "near": policy.near_limit_days, "day": scope.day})).one()
    return {"stages": rows, "identification": {"max_days": limit, "near_days": policy.near_limit_days,
                                               "at_risk": int(ident.near), "past": int(ident.past)}}


async def scale_risk(conn: AsyncConnection, scope: Scope) -> list[dict[str, Any]]:
    town = scope.org[:9]
    rows = await conn.execute(text("""
        SELECT DISTINCT ON (township_code) township_code, crossed, as_of, recorded_at FROM reporting.scale_alerts
        WHERE (township_code LIKE :org OR :town LIKE township_code || '%')
          AND (CAST(:at AS timestamptz) IS NULL OR recorded_at <= :at)
        ORDER BY township_code, recorded_at DESC"""), {**scope.params, "town": town})
    alerts = [{"township_code": r.township_code, "crossed": list(r.crossed), "as_of": r.as_of.isoformat()}
              for r in rows]
    found = await names(conn, [a["township_code"] for a in alerts])
    return [a | {"name": found.get(a["township_code"], a["township_code"])} for a in alerts]


async def audit(conn: AsyncConnection, scope: Scope) -> dict[str, Any]:
    """Anomaly findings in the org unit (by the household's village) and the latest signed checkpoint."""
    at = {"at": scope.at}
    found = await conn.execute(text("""
        SELECT a.kind, a.household_id, a.actor, a.recorded_at, h.village_code FROM reporting.audit_facts a
        LEFT JOIN reporting.households h ON h.household_id = a.household_id AND h.valid_to IS NULL
        WHERE a.type = 'AnomalyFound' AND (CAST(:at AS timestamptz) IS NULL OR a.recorded_at <= :at)
          AND (coalesce(h.village_code, '') LIKE :org OR (h.village_code IS NULL AND :county))
        ORDER BY a.recorded_at DESC"""), {**at, "org": scope.org + "%", "county": len(scope.org) <= 6})
    findings = [{"kind": r.kind, "household_id": r.household_id, "actor": r.actor,
                 "recorded_at": r.recorded_at.isoformat(), "village_code": r.village_code} for r in found]
    checkpoint = (await conn.execute(text("""
        SELECT tree_size, root_hash, recorded_at FROM reporting.audit_facts WHERE type = 'CheckpointSigned'
          AND (CAST(:at AS timestamptz) IS NULL OR recorded_at <= :at) ORDER BY recorded_at DESC LIMIT 1"""),
        at)).first()
    kinds: dict[str, int] = {}
    for f in findings:
        kinds[f["kind"]] = kinds.get(f["kind"], 0) + 1
    return {"anomalies": kinds, "recent": findings[:50],
            "checkpoint": {"tree_size": checkpoint.tree_size, "root_hash": checkpoint.root_hash,
                           "signed_at": checkpoint.recorded_at.isoformat()} if checkpoint else None}


async def summary(conn: AsyncConnection, scope: Scope, policy: ReportingPolicy) -> dict[str, Any]:
    """Everything the dashboard shows for one org unit, in one answer (its first paint needs one request)."""
    totals, children = await counts(conn, scope, policy)
    codes = [scope.org[:w] for w in (6, 9, 12) if len(scope.org) >= w]
    found = {policy.county_code: policy.county, **await names(conn, codes)}
    path = [{"code": c, "name": found.get(c, c)} for c in codes]
    return {
        "org": {"code": scope.org, "name": path[-1]["name"], "level": scope.level, "path": path},
        "as_of": scope.at.isoformat() if scope.at else None, "day": scope.day.isoformat(),
        "data_as_of": await data_as_of(conn, scope),
        "version": await version(conn), "totals": totals, "children": children,
        "stages": await stages(conn, scope), "deadlines": await deadlines(conn, scope, policy),
        "outcomes": await outcomes(conn, scope), "bands": await bands(conn, scope),
        "support": await support(conn, scope), "problems": await problems(conn, scope),
        "scale_risk": await scale_risk(conn, scope), "audit": await audit(conn, scope),
    }


async def households(conn: AsyncConnection, scope: Scope, after: str, limit: int) -> list[dict[str, Any]]:
    """A village's households (or any unit's), one page in household order: no ID numbers, ever."""
    rows = await conn.execute(text(f"""
        SELECT household_id, village_code, state->>'code' AS code, state->>'head' AS head, state->>'group_name' AS grp,
               kind, status, persons, visited, assessed, band, per_capita, proposal, open_stage, decided, plan_open,
               missing, safety_net_only
        FROM ({_households(scope)}) h WHERE household_id > :after ORDER BY household_id LIMIT :n"""),
        {**scope.params, "after": after, "n": limit})
    return [{**r._mapping, "per_capita": float(r.per_capita) if r.per_capita is not None else None,
             "decided": list(r.decided), "missing": list(r.missing)} for r in rows]
