"""The registry import/export template, the contract between intake and whoever prepares or reads its files:
one row per member, household columns repeated on each of its rows; headers are the Chinese names of the national
form. Values are the form's own words; several values in one cell are separated by
"、"; yes/no as 是/否; dates as YYYY-MM-DD."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from povguard_contracts.vocab import (
    DisabilityCategory,
    Education,
    Health,
    HouseholdKind,
    LabourSkill,
    MedicalInsurance,
    MigrantPlace,
    MonitoringCategory,
    MonitoringStatus,
    PensionInsurance,
    PriorityGroup,
    Relation,
    SchoolStatus,
    Sex,
)

SEPARATOR = "、"
YES, NO = "是", "否"


@dataclass(frozen=True)
class Column:
    header: str
    key: str  # household.<field>, place.<field> or member.<field>
    kind: str  # text | int | date | bool | enum | enums
    required: bool = False
    values: type[StrEnum] | None = None
    help: str = ""

    @property
    def household_level(self) -> bool:
        return not self.key.startswith("member.")


COLUMNS: list[Column] = [
    Column("户编号", "household.code", "text", True, help="本县内唯一的户编号；同一户的各成员行填写相同户编号"),
    Column("县代码", "place.county_code", "text", True),
    Column("县", "place.county", "text", True),
    Column("乡镇代码", "place.township_code", "text", True),
    Column("乡镇", "place.township", "text", True),
    Column("行政村代码", "place.village_code", "text", True),
    Column("行政村", "place.village", "text", True),
    Column("村民小组代码", "place.group_code", "text", True),
    Column("村民小组", "place.group", "text", True),
    Column("户类型", "household.kind", "enum", True, HouseholdKind),
    Column("脱贫年度", "household.lifted_year", "int"),
    Column("监测对象类别", "household.category", "enum", False, MonitoringCategory),
    Column("监测状态", "household.status", "enum", True, MonitoringStatus),
    Column("重点排查类型", "household.flags", "enums", False, PriorityGroup, "可填多项，用“、”分隔"),
    Column("姓名", "member.name", "text", True),
    Column("证件号码", "member.id_number", "text", True),
    Column("性别", "member.sex", "enum", True, Sex),
    Column("出生日期", "member.birth_date", "date", True),
    Column("与户主关系", "member.relation", "enum", True, Relation),
    Column("民族", "member.ethnicity", "text"),
    Column("文化程度", "member.education", "enum", False, Education),
    Column("在校生状况", "member.school_status", "enum", False, SchoolStatus),
    Column("健康状况", "member.health", "enums", True, Health, "可填多项，用“、”分隔"),
    Column("残疾类别", "member.disability_category", "enum", False, DisabilityCategory),
    Column("劳动技能", "member.labour_skill", "enum", True, LabourSkill),
    Column("务工时间（月）", "member.migrant_months", "int"),
    Column("务工所在地", "member.migrant_place", "enum", False, MigrantPlace),
    Column("是否公益性岗位", "member.public_welfare_job", "bool"),
    Column("基本医疗保险", "member.medical_insurance", "enum", True, MedicalInsurance),
    Column("是否参加大病保险", "member.serious_illness_insurance", "bool"),
    Column("基本养老保险", "member.pension_insurance", "enum", False, PensionInsurance),
    Column("是否享受低保", "member.dibao", "bool"),
    Column("是否特困供养", "member.tekun", "bool"),
    Column("联系电话", "member.phone", "text"),
]

HEADERS = [c.header for c in COLUMNS]
BY_HEADER = {c.header: c for c in COLUMNS}
ERROR_HEADER = "错误原因"
