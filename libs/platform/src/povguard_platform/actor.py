"""Who acts: every command and event carries the actor taken from the bearer token."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Role(StrEnum):
    """Roles of DOMAIN.md; each acts only within its org unit."""

    COLLECTOR = "collector"  # 信息采集员
    VILLAGE_CLERK = "village_clerk"  # 村级数据员
    VILLAGE_COMMITTEE = "village_committee"  # 村两委
    WORK_TEAM = "work_team"  # 驻村工作队
    TOWNSHIP_REVIEWER = "township_reviewer"  # 乡镇审核
    COUNTY_BUREAU = "county_bureau"  # 县乡村振兴局
    DEPARTMENT = "department"  # 行业部门 (machine clients pushing warnings and data)
    INSPECTOR = "inspector"  # 纪检监察: reads everything, changes nothing
    ADMIN = "admin"  # 系统管理员
    SYSTEM = "system"  # the services themselves, acting on events


class Actor(BaseModel):
    """The person or system behind a command; `org` is an administrative division code (or a department code)."""

    model_config = ConfigDict(frozen=True)

    user: str = Field(min_length=1, max_length=128)
    role: Role
    org: str = Field(min_length=1, max_length=32)

    def covers(self, org_code: str) -> bool:
        """True when `org_code` lies inside this actor's org unit (a township sees its own villages)."""
        return org_code.startswith(self.org)


SYSTEM_ACTOR = Actor(user="povguard", role=Role.SYSTEM, org="system")
