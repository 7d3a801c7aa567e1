"""家庭纯收入, 人均纯收入 and the band (seed §二(一)2; DOMAIN.md, Income).

家庭纯收入 = 工资性收入 + 生产经营性收入 + 财产性收入 + 转移性收入 − 生产经营性支出, where
- 工资性收入 already includes 公益性岗位收入 and 财产性收入 already includes 资产收益扶贫分红 ("其中" lines on the form:
  shown for the reviewer, never added a second time);
- 转移性收入 = 养老金或离退休金 + 计划生育金 + 生态补偿金 + 最低生活保障金 + 特困人员救助供养金 + 其他转移性收入, plus
  产业奖励, 就业奖励 and 家庭理赔收入 when the policy counts them (count_* in [assessment]; 2022: all counted);
- 合规自付支出 and 其他刚性支出 are NOT deducted: they are rigid spending, weighed against income by the risk rules.
人均纯收入 = 家庭纯收入 ÷ 家庭人口数, counting the household's current members (在册成员) when it is assessed.
Amounts are Decimals (`povguard_contracts.numbers`): sums are exact; 人均纯收入 is rounded half up to the fen."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from povguard_contracts.intake import IncomeLines, SpendingLines
from povguard_contracts.numbers import fen
from povguard_contracts.vocab import IncomeBand
from povguard_platform.policy import IncomePolicy
from povguard_rules.policy import AssessmentPolicy

SIZE_BASIS = "家庭人口数按研判时在册的家庭成员计（已迁出、死亡、婚出的成员不计）"

_BANDS = {Decimal(7000): IncomeBand.B7000_8000, Decimal(8000): IncomeBand.B8000_9000,
          Decimal(9000): IncomeBand.B9000_10000, Decimal(10000): IncomeBand.OVER_10000}
_RATIO = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class IncomeResult:
    lines: dict[str, Decimal]
    transfers: Decimal
    net_income: Decimal
    household_size: int
    per_capita: Decimal
    band: IncomeBand
    previous_per_capita: Decimal | None
    change_ratio: Decimal | None


def band_of(per_capita: Decimal, income: IncomePolicy) -> IncomeBand:
    """Under the monitoring line; then the 1,000-yuan bands of `band_edges` (7000/8000/9000/10000)."""
    if per_capita < income.monitoring_line:
        return IncomeBand.UNDER_LINE
    edges = sorted(income.band_edges)
    band = IncomeBand.LINE_TO_7000
    for edge in edges:
        if per_capita >= edge:
            band = _BANDS.get(edge, band)
    return band


def assess_income(income: IncomeLines, spending: SpendingLines, size: int, previous: Decimal | None,
                  policy: IncomePolicy, section: AssessmentPolicy) -> IncomeResult:
    transfers = (income.pension + income.family_planning + income.eco_compensation + income.dibao + income.tekun
                 + income.other_transfer)
    if section.count_industry_reward:
        transfers += income.industry_reward
    if section.count_employment_reward:
        transfers += income.employment_reward
    if section.count_insurance_claims:
        transfers += income.insurance_claims
    net = income.wages + income.business + income.property + transfers - spending.business_expense
    per_capita = fen(net / size) if size > 0 else Decimal(0)
    lines = {
        "工资性收入": income.wages, "其中：公益性岗位收入": income.public_welfare_job_income,
        "生产经营性收入": income.business, "财产性收入": income.property,
        "其中：资产收益扶贫分红收入": income.asset_dividend,
        "养老金或离退休金": income.pension, "计划生育金": income.family_planning, "生态补偿金": income.eco_compensation,
        "最低生活保障金": income.dibao, "特困人员救助供养金": income.tekun, "其他转移性收入": income.other_transfer,
        "产业奖励": income.industry_reward, "就业奖励": income.employment_reward,
        "家庭理赔收入": income.insurance_claims,
        "转移性收入": transfers, "生产经营性支出": spending.business_expense,
        "合规自付支出": spending.medical_out_of_pocket,
        "其他刚性支出": sum((r.amount for r in spending.other_rigid), Decimal(0)),
    }
    change = None
    if previous is not None and previous > 0:
        change = (per_capita / previous - 1).quantize(_RATIO, ROUND_HALF_UP)
    return IncomeResult(lines=lines, transfers=transfers, net_income=net, household_size=size,
                        per_capita=per_capita, band=band_of(per_capita, policy), previous_per_capita=previous,
                        change_ratio=change)
