"""A deterministic synthetic county in Yingjiang (533123) for demos, tests and benchmarks (issue 8): households and
members in the import template, the 2022 campaign's visit forms, department warnings and asset checks, and the truth
labels the generator put in."""

from __future__ import annotations

from pathlib import Path

from povguard_tools.synthetic.county import generate_county
from povguard_tools.synthetic.model import County, Scenario, SyntheticHousehold, Truth
from povguard_tools.synthetic.template_io import write_campaign, write_registry

__all__ = ["County", "Scenario", "SyntheticHousehold", "Truth", "generate_county", "generate_to", "write_campaign",
           "write_registry"]

REGISTRY_SUFFIXES = (".xlsx", ".csv")


def generate_to(path: Path, households: int, seed: int) -> County:
    """Generate a county and write it: the registry at `path` (.xlsx or .csv by suffix) with the campaign files
    (`<stem>.visits.jsonl`, `.warnings.jsonl`, `.checks.jsonl`, `.truth.jsonl`) next to it. A `path` without one of
    those suffixes is a directory: the registry goes to `registry.xlsx` inside it."""
    if path.suffix.lower() not in REGISTRY_SUFFIXES:
        path = path / "registry.xlsx"
    path.parent.mkdir(parents=True, exist_ok=True)
    county = generate_county(households, seed)
    write_registry(county, path)
    write_campaign(county, path.parent, prefix=f"{path.stem}.")
    return county
