"""Who acts: every command and event carries the actor taken from the bearer token."""

from __future__ import annotations

import functools
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer


class Role(StrEnum):
    """Roles of DOMAIN.md; each acts only within its org unit."""

    COLLECTOR = "collector"  # 信息采集员
    VILLAGE_CLERK = "village_clerk"  # 村级数据员
    VILLAGE_COMMITTEE = "village_committee"  # 村两委
    WORK_TEAM = "work_team"  # 驻村工作队
    TOWNSHIP_REVIEWER = "township_reviewer"  # 乡镇审核
    COUNTY_BUREAU = "county_bureau"  # 县乡村振兴局
    DEPARTMENT = "department"  # 行业部门 (machine clients pushing warnings and data)
    INSPECTOR = "inspector"  # 纪检监察: reads everything in its org unit, changes nothing
    ADMIN = "admin"  # 系统管理员
    SYSTEM = "system"  # the services themselves, acting on events (never a token)


class Actor(BaseModel):
    """The person or system behind a command. `org` is the administrative division code the actor serves (a
    department serves its county); `dept` names a department actor's own department (行业部门, e.g. 公安)."""

    model_config = ConfigDict(frozen=True)

    user: str = Field(min_length=1, max_length=128)
    role: Role
    org: str = Field(min_length=1, max_length=32)
    dept: str | None = Field(default=None, min_length=1, max_length=32)

    @model_serializer(mode="wrap")
    def _dept_only_when_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # events of actors without a department keep the shape they always had (user, role, org)
        data: dict[str, Any] = handler(self)
        if data.get("dept") is None:
            data.pop("dept", None)
        return data

    def covers(self, org_code: str) -> bool:
        """True when `org_code` lies inside this actor's org unit (a township sees its own villages)."""
        return org_code.startswith(self.org)


SYSTEM_ACTOR = Actor(user="povguard", role=Role.SYSTEM, org="system")


@functools.lru_cache(maxsize=4096)
def actor_from_json(text: str) -> Actor:
    """An actor as stored or sent (JSON), parsed once per distinct text: the events of a batch mostly share theirs,
    and an Actor is frozen, so one instance serves them all."""
    return Actor.model_validate_json(text)
