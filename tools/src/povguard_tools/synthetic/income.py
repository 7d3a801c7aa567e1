"""Money for the accounting window (2021-05-01 to 2022-04-30): wages from migrant and local work, farming, land rent
and dividends, transfers that follow from the member facts (pensions, 低保, 特困, subsidies, support from children
living elsewhere), production costs and out-of-pocket medical spending; and the DOMAIN net-income formula."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from povguard_contracts.intake import IncomeLines, MemberFacts, RigidSpending, SpendingLines
from povguard_contracts.vocab import (
    LABOUR_CAPABLE,
    Health,
    HouseholdKind,
    LabourSkill,
    MigrantPlace,
    MonitoringStatus,
    PensionInsurance,
)
from povguard_tools.synthetic.people import REFERENCE_DAY, age_on

MONTHLY_WAGE = {MigrantPlace.IN_COUNTY: 2400.0, MigrantPlace.IN_PROVINCE: 3000.0,
                MigrantPlace.OUT_OF_PROVINCE: 3800.0, MigrantPlace.ABROAD: 2800.0}
FARM_PER_WORKER = {False: 18000.0, True: 14000.0}  # gross, by mountain township
_FULL = (LabourSkill.ORDINARY, LabourSkill.SKILLED)


@dataclass(slots=True)
class Money:
    """The household's money lines while they are being built (yuan)."""

    wages: float = 0
    public_welfare_job_income: float = 0
    business: float = 0
    property_income: float = 0  # 财产性收入
    asset_dividend: float = 0
    pension: float = 0
    family_planning: float = 0
    eco_compensation: float = 0
    dibao: float = 0
    tekun: float = 0
    other_transfer: float = 0
    industry_reward: float = 0
    employment_reward: float = 0
    insurance_claims: float = 0
    business_expense: float = 0
    medical_out_of_pocket: float = 0
    other_rigid: list[RigidSpending] = field(default_factory=list)

    @property
    def transfers(self) -> float:
        """转移性收入, counting rewards and insurance claims as the 2022 policy does (see net_income)."""
        return (self.pension + self.family_planning + self.eco_compensation + self.dibao + self.tekun
                + self.other_transfer + self.industry_reward + self.employment_reward + self.insurance_claims)

    @property
    def net(self) -> float:
        """家庭纯收入 = 工资性 + 生产经营性 + 财产性 + 转移性 − 生产经营性支出."""
        return self.wages + self.business + self.property_income + self.transfers - self.business_expense

    @property
    def rigid(self) -> float:
        return self.medical_out_of_pocket + sum(float(r.amount) for r in self.other_rigid)

    def income_lines(self) -> IncomeLines:
        return IncomeLines(
            wages=self.wages, public_welfare_job_income=self.public_welfare_job_income, business=self.business,
            property=self.property_income, asset_dividend=self.asset_dividend, pension=self.pension,
            family_planning=self.family_planning, eco_compensation=self.eco_compensation, dibao=self.dibao,
            tekun=self.tekun, other_transfer=self.other_transfer, industry_reward=self.industry_reward,
            employment_reward=self.employment_reward, insurance_claims=self.insurance_claims)

    def spending_lines(self) -> SpendingLines:
        return SpendingLines(business_expense=self.business_expense, medical_out_of_pocket=self.medical_out_of_pocket,
                             other_rigid=list(self.other_rigid))


def net_income(income: IncomeLines, spending: SpendingLines, *, rewards: bool = True, claims: bool = True,
               ) -> Decimal:
    """家庭纯收入 = 工资性收入 + 生产经营性收入 + 财产性收入 + 转移性收入 − 生产经营性支出 (DOMAIN.md), where
    转移性收入 = 养老金, 计划生育金, 生态补偿金, 低保金, 特困供养金, 其他转移性收入, plus 产业奖励 and 就业奖励
    (`rewards`) and 家庭理赔收入 (`claims`): the 2022 policy counts both ([assessment] count_* in the policy file).
    公益性岗位收入 and 资产收益分红 are parts of wages and property income, never added twice; 合规自付 and other rigid
    spending are not deducted."""
    transfers = (income.pension + income.family_planning + income.eco_compensation + income.dibao + income.tekun
                 + income.other_transfer)
    if rewards:
        transfers += income.industry_reward + income.employment_reward
    if claims:
        transfers += income.insurance_claims
    return income.wages + income.business + income.property + transfers - spending.business_expense


def productivity(rng: random.Random, kind: HouseholdKind, status: MonitoringStatus) -> float:
    """How well the household earns from work, relative to an ordinary household."""
    factor = {HouseholdKind.ORDINARY: 1.0, HouseholdKind.LIFTED: 0.82}.get(
        kind, 0.58 if status == MonitoringStatus.RISK_NOT_ELIMINATED else 0.78)
    return factor * rng.lognormvariate(0, 0.22)


def _yuan(x: float) -> float:
    return float(round(x))


def base_money(rng: random.Random, members: Sequence[MemberFacts], kind: HouseholdKind, status: MonitoringStatus,
               mountain: bool) -> Money:
    """The household's money lines when nothing unusual happened in the window."""
    m = Money()
    prod = productivity(rng, kind, status)
    poor = kind != HouseholdKind.ORDINARY
    ages = [age_on(f.birth_date, REFERENCE_DAY) for f in members]
    farm_units = 0.0
    for f, age in zip(members, ages, strict=True):
        skill = f.labour_skill
        if f.migrant_place is not None and f.migrant_months:
            pay = f.migrant_months * MONTHLY_WAGE[f.migrant_place] * (1.25 if skill == LabourSkill.SKILLED else 1)
            m.wages += pay * rng.lognormvariate(0, 0.2) * prod ** 0.5
            if f.migrant_months <= 6:
                farm_units += 0.4
            if poor and rng.random() < 0.12:
                m.employment_reward += rng.uniform(300, 1000)
        elif f.public_welfare_job:
            pay = rng.uniform(6000, 9600)
            m.wages += pay
            m.public_welfare_job_income += pay
            farm_units += 0.5
        elif skill in _FULL:
            farm_units += 1.0 if age < 65 else 0.6
            if 18 <= age <= 60 and rng.random() < 0.65:
                m.wages += rng.uniform(3000, 12000) * prod  # day labour near home (harvests, plantations)
        elif skill == LabourSkill.WEAK:
            farm_units += 0.5
    if farm_units:
        gross = farm_units * FARM_PER_WORKER[mountain] * rng.lognormvariate(0, 0.25) * prod
        if rng.random() < 0.5:
            gross += rng.uniform(1000, 6000) * prod  # pigs, cattle, poultry
        m.business = gross
        m.business_expense = gross * rng.uniform(0.25, 0.38)
        if poor and rng.random() < 0.08:
            m.industry_reward = rng.uniform(500, 3000)
    elif rng.random() < 0.4:
        m.business = rng.uniform(300, 1500)  # a kitchen garden's surplus, a few chickens
    if rng.random() < 0.18:
        m.property_income += rng.uniform(600, 4000)  # land rented out (土地流转)
    if poor and rng.random() < 0.7:
        m.asset_dividend = rng.uniform(200, 1000)
        m.property_income += m.asset_dividend
    _transfers(rng, m, members, ages, mountain)
    _medical(rng, m, members)
    return _rounded(m)


def _transfers(rng: random.Random, m: Money, members: Sequence[MemberFacts], ages: Sequence[int],
               mountain: bool) -> None:
    elderly = [a for a in ages if a >= 60]
    for f, age in zip(members, ages, strict=True):
        if age >= 60 and f.pension_insurance == PensionInsurance.RESIDENT:
            m.pension += rng.uniform(1300, 1700)
        if f.dibao:
            m.dibao += rng.uniform(2500, 4500)
        if f.tekun:
            m.tekun += rng.uniform(6000, 7200)
        if f.disability_category is not None and (f.dibao or f.tekun or rng.random() < 0.3):
            m.other_transfer += rng.uniform(960, 1200)  # 残疾人两项补贴
        if age >= 80:
            m.other_transfer += 600  # 高龄补贴
    if elderly and rng.random() < 0.08:
        m.family_planning = 960.0 * min(2, len(elderly))
    if rng.random() < (0.8 if mountain else 0.45):
        m.eco_compensation = rng.uniform(150, 1500)
    if rng.random() < 0.8:
        m.other_transfer += rng.uniform(150, 600)  # 耕地地力保护补贴
    supported = not any(f.dibao or f.tekun for f in members)
    no_labour = not any(f.labour_skill in LABOUR_CAPABLE for f in members)
    if (len(elderly) == len(members) or no_labour) and supported and rng.random() < 0.9:
        m.other_transfer += len(members) * rng.uniform(3000, 7000)  # 赡养费 from children living elsewhere


def _medical(rng: random.Random, m: Money, members: Sequence[MemberFacts]) -> None:
    for f in members:
        if Health.SERIOUS_ILLNESS in f.health:
            m.medical_out_of_pocket += rng.uniform(2000, 8000)
        elif Health.CHRONIC in f.health:
            m.medical_out_of_pocket += rng.uniform(200, 2500)
        elif Health.DISABLED in f.health:
            m.medical_out_of_pocket += rng.uniform(0, 800)
        elif rng.random() < 0.3:
            m.medical_out_of_pocket += rng.uniform(0, 300)


def _rounded(m: Money) -> Money:
    for name in ("wages", "public_welfare_job_income", "business", "property_income", "asset_dividend", "pension",
                 "family_planning", "eco_compensation", "dibao", "tekun", "other_transfer", "industry_reward",
                 "employment_reward", "insurance_claims", "business_expense", "medical_out_of_pocket"):
        setattr(m, name, _yuan(getattr(m, name)))
    m.wages = max(m.wages, m.public_welfare_job_income)
    m.property_income = max(m.property_income, m.asset_dividend)
    return m
