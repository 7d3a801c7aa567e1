"""Campaign and policy configuration as data: one TOML file per place and year under `policies/`."""

from __future__ import annotations

import tomllib
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from povguard_contracts.numbers import YUAN_MAX, Yuan
from povguard_platform.errors import Violation

_REPO_POLICIES = Path(__file__).resolve().parents[4] / "policies"
M = TypeVar("M", bound=BaseModel)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


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
    monitoring_line: Yuan
    three_year_goal_below: Yuan
    income_increase_from: Yuan
    band_edges: list[Yuan]


class Bounds(_Frozen):
    # one amount on a form; sums of up to 100 of them (a form has fewer) stay within the contracts' YUAN_MAX
    max_line_amount: Yuan = Field(gt=0, le=YUAN_MAX / 100)
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

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

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


def amount_violations(value: object, bound: Decimal, path: str) -> list[Violation]:
    """Every amount (a Decimal field, at any depth of a command) above the policy's bound for one amount
    (`[bounds] max_line_amount`), named by its field: the contracts' types bound amounts for every campaign, the
    policy bounds them for this one."""
    if isinstance(value, Decimal):
        return [Violation(path, f"金额超出合理范围（不超过 {bound:,.0f} 元）", "range")] if value > bound else []
    if isinstance(value, BaseModel):
        return [v for name in type(value).model_fields
                for v in amount_violations(getattr(value, name), bound, f"{path}.{name}" if path else name)]
    if isinstance(value, (list, tuple)):
        return [v for i, item in enumerate(value) for v in amount_violations(item, bound, f"{path}.{i}")]
    return []
