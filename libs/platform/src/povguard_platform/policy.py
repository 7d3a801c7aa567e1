"""Campaign and policy configuration as data: one TOML file per place and year under `policies/`."""

from __future__ import annotations

import tomllib
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

_REPO_POLICIES = Path(__file__).resolve().parents[4] / "policies"
M = TypeVar("M", bound=BaseModel)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PolicyId(_Frozen):
    id: str
    version: str
    province: str
    province_code: str
    county: str
    county_code: str
    year: int


class IncomePolicy(_Frozen):
    accounting_window: tuple[date, date]
    monitoring_line: float
    three_year_goal_below: float
    income_increase_from: float
    band_edges: list[float]


class Bounds(_Frozen):
    max_line_amount: float
    lifted_years: tuple[int, int]


class Calendar(_Frozen):
    mobilise: date
    department_data: date
    priority_list: date
    department_measure_checks: date
    visits: date
    analysis: date
    appraisal: date
    village_decision: date
    notice_working_days: int
    notice_end: date
    township_review: date
    county_review: date
    cleaning: tuple[date, date]
    data_lock: date
    summary: tuple[date, date]
    identification_max_days: int
    campaign_window: tuple[date, date]


class Policy(BaseModel):
    """The shared part of a campaign's policy. Each service reads its own section (e.g. [assessment]) with
    `policy_section`, so a service's thresholds live with it and the file stays one per place and year."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    policy: PolicyId
    income: IncomePolicy
    bounds: Bounds
    calendar: Calendar

    @property
    def ref(self) -> str:
        """What events record as the policy in force: id@version."""
        return f"{self.policy.id}@{self.policy.version}"


def policy_dir() -> Path:
    local = Path("policies")
    return local if local.is_dir() else _REPO_POLICIES


@lru_cache
def _raw(campaign: str, directory: Path | None) -> dict[str, Any]:
    path = (directory or policy_dir()) / f"{campaign}.toml"
    with path.open("rb") as f:
        return tomllib.load(f)


def load_policy(campaign: str, directory: Path | None = None) -> Policy:
    return Policy.model_validate(_raw(campaign, directory))


def policy_section(campaign: str, section: str, model: type[M], directory: Path | None = None) -> M:
    """A service's own section of the campaign's policy file, validated by the service's model."""
    return model.model_validate(_raw(campaign, directory).get(section, {}))
