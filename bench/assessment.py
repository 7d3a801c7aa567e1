"""Assessment benchmark: assess a synthetic county's households from their events, as the consumer does (fold the
consumed events, assess income and risks, propose an outcome, find data problems, diff against the previous
assessment), and again to show that a second pass emits nothing (idempotent).

    python bench/assessment.py --households 70000 --seed 2022 --out var/bench

Uses the synthetic-county generator (libs/platform/.../synthetic) for households, members, visit forms and
department warnings; prints a Rich table and writes `<out>/assessment.json`. The pure path only: the database
round-trips of the consumer are measured by the event-store and consumer benchmarks."""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

import povguard_contracts  # noqa: F401
from povguard_assessment.handlers import decode_fact
from povguard_contracts.catalogue import CATALOGUE
from povguard_contracts.intake import HouseholdRegistered, Member, VisitRecorded, WarningReceived
from povguard_contracts.payload import EventPayload
from povguard_rules.assess import Assessment, Previous, assess, changes
from povguard_rules.config import rules_for
from povguard_rules.facts import Fact, fold
from povguard_tools.synthetic import generate_county

console = Console()


def events_of(county: object) -> dict[str, list[Fact]]:
    households = county.households  # type: ignore[attr-defined]
    by_code: dict[str, str] = {}
    out: dict[str, list[Fact]] = {}
    for i, h in enumerate(households):
        hid = f"h{i:06d}"
        by_code[h.code] = hid
        members = [Member(member_id=f"{hid}-m{j}", facts=m) for j, m in enumerate(h.members)]
        out[hid] = [
            HouseholdRegistered(household_id=hid, code=h.code, place=h.place, kind=h.kind, lifted_year=h.lifted_year,
                                category=h.category, status=h.status, flags=list(h.flags), members=members,
                                source="批量导入:bench"),
            VisitRecorded(household_id=hid, visit_id=f"{hid}-v1", form=h.visit),
        ]
    for k, w in enumerate(county.warnings):  # type: ignore[attr-defined]
        owner = by_code.get(w.household_code or "")
        if owner is not None:
            out[owner].append(WarningReceived(
                warning_id=f"w{k}", department=w.department, kind=w.kind, id_number=w.id_number,
                person_name=w.person_name, household_id=owner, member_id=None, amount=w.amount,
                occurred_on=w.occurred_on, source_ref=w.source_ref))
    return out


def previous_of(a: Assessment) -> Previous:
    return Previous(a.income.model_dump(mode="json") if a.income else None,
                    a.risk.model_dump(mode="json") if a.risk else None,
                    a.proposal.model_dump(mode="json") if a.proposal else None,
                    {k: v.model_dump(mode="json") for k, v in a.problems.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=70_000)
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--out", type=Path, default=Path("var/bench"))
    args = parser.parse_args()
    rules = rules_for("533123-2022")

    t0 = time.perf_counter()
    county = generate_county(args.households, args.seed)
    facts = events_of(county)
    generated = time.perf_counter() - t0
    n_events = sum(len(v) for v in facts.values())

    # the consumer reads every fact of a household back from assessment.facts (jsonb) before each re-assessment:
    # decoded the old way (the driver's json.loads, then validation) beside the new (validated from the text)
    stored = [(e.event_type, e.event_version, json.dumps(e.model_dump(mode="json"), ensure_ascii=False))
              for events in facts.values() for e in events if isinstance(e, EventPayload)]
    c0 = time.process_time()
    for type_, version, raw in stored:
        CATALOGUE.decode_data(type_, version, json.loads(raw))
    decode_dict = time.process_time() - c0
    c0 = time.process_time()
    for type_, version, raw in stored:
        decode_fact(type_, version, raw)
    decode_text = time.process_time() - c0

    t1 = time.perf_counter()
    results: dict[str, Assessment] = {}
    emitted = 0
    for hid, events in facts.items():
        a = assess(fold(hid, events), rules)
        assert a is not None
        emitted += len(changes(Previous(), a))
        results[hid] = a
    first = time.perf_counter() - t1

    t2 = time.perf_counter()
    again = 0
    for hid, events in facts.items():
        a = assess(fold(hid, events), rules)
        assert a is not None
        again += len(changes(previous_of(results[hid]), a))
    second = time.perf_counter() - t2

    outcomes = Counter(a.proposal.outcome.value for a in results.values() if a.proposal)
    bands = Counter(a.income.band.value for a in results.values() if a.income)
    problems = Counter(p.rule_id for a in results.values() for p in a.problems.values())
    rate = len(facts) / first
    doc = {
        "benchmark": "assessment", "time": datetime.now(UTC).isoformat(), "python": platform.python_version(),
        "machine": platform.machine(), "households": len(facts), "events_in": n_events, "seed": args.seed,
        "policy": rules.ref, "generate_seconds": round(generated, 2), "assess_seconds": round(first, 2),
        "households_per_second": round(rate, 1), "events_out": emitted,
        "reassess_seconds": round(second, 2), "reassess_households_per_second": round(len(facts) / second, 1),
        "events_out_on_reassess": again, "outcomes": dict(outcomes.most_common()), "bands": dict(bands.most_common()),
        "problems": dict(problems.most_common()),
        "decode_cpu_seconds": {"json_loads_then_validate": round(decode_dict, 2),
                               "validate_json_text": round(decode_text, 2)},
    }
    table = Table(title=f"assessment: {len(facts):,} synthetic households (seed {args.seed}, {rules.ref})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("events in", f"{n_events:,}")
    table.add_row("decode stored facts: json.loads + validate (before), CPU", f"{decode_dict:.2f} s")
    table.add_row("decode stored facts: validated from the text (decode_fact), CPU", f"{decode_text:.2f} s")
    table.add_row("assess (fold + income + risks + outcome + problems + diff)", f"{first:.2f} s")
    table.add_row("households/s", f"{rate:,.0f}")
    table.add_row("events out", f"{emitted:,}")
    table.add_row("re-assess, households/s", f"{len(facts) / second:,.0f}")
    table.add_row("events out on re-assess (idempotent: 0)", f"{again:,}")
    for outcome, n in outcomes.most_common():
        table.add_row(f"  {outcome}", f"{n:,}")
    console.print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "assessment.json").write_text(json.dumps(doc, ensure_ascii=False, indent=2))
    console.print(f"written {args.out / 'assessment.json'}")


if __name__ == "__main__":
    main()
