"""Builders of valid households, members and visits for the intake tests."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

from stdnum.cn import ric

from povguard_platform.actor import Actor, Role
from povguard_platform.auth import issue_token
from povguard_platform.settings import Settings

TOWN = "533123101"
VILLAGE = TOWN + "201"
GROUP = VILLAGE + "001"
_order = itertools.count(11)


def make_id(birth: date, male: bool, region: str = "533123") -> str:
    """A valid 居民身份证号码 for the given birth date and sex (a fresh order code each call)."""
    order = next(_order) % 500 * 2 + (1 if male else 0)
    body = f"{region}{birth:%Y%m%d}{order:03d}"
    return body + ric.calc_check_digit(body + "0")


def member(relation: str = "户主", *, birth: date = date(1975, 3, 9), male: bool = True, **over: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "name": "岳老三", "id_number": make_id(birth, male), "sex": "男" if male else "女",
        "birth_date": birth.isoformat(), "relation": relation, "ethnicity": "傣族", "education": "初中",
        "health": ["健康"], "labour_skill": "普通劳动力", "medical_insurance": "城乡居民基本医疗保险",
        "pension_insurance": "城乡居民基本养老保险", "phone": "13812345678",
    }
    facts.update(over)
    return facts


def household_body(code: str | None = None, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": code or f"HH{next(_order):06d}",
        "place": {"county_code": "533123", "county": "盈江县", "township_code": TOWN, "township": "旧城镇",
                  "village_code": VILLAGE, "village": "古里卡村", "group_code": GROUP, "group": "一组"},
        "kind": "脱贫户", "lifted_year": 2020, "status": "未纳入监测", "flags": ["2020年脱贫户"],
        "members": [member(), member("配偶", birth=date(1978, 5, 1), male=False, name="李四妹"),
                    member("之子", birth=date(2008, 9, 1), education=None, school_status="普通高中",
                           labour_skill="无劳动力", phone=None, name="岳小明")],
    }
    body.update(over)
    return body


def visit_form(**over: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "visit_date": "2022-05-08", "collector": "张采集",
        "income": {"wages": 18000, "business": 6000, "pension": 1200, "dibao": 0},
        "spending": {"business_expense": 2000, "medical_out_of_pocket": 0},
        "guarantees": {"food_and_clothing": True, "compulsory_education": True, "basic_medical": True,
                       "housing_safe": True, "drinking_water_safe": True},
        "application_signed": False, "authorisation_signed": False,
    }
    form.update(over)
    return form


def auth(settings: Settings, role: Role = Role.VILLAGE_CLERK, org: str = VILLAGE,
         user: str = "王文书", dept: str | None = None) -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(Actor(user=user, role=role, org=org, dept=dept), settings)}


def template_rows(body: dict[str, Any]) -> list[list[Any]]:
    """A household body as rows of the import template (one per member, household columns repeated)."""
    from povguard_contracts.template import COLUMNS, NO, SEPARATOR, YES

    rows = []
    for m in body["members"]:
        sources = {"household": body, "place": body["place"], "member": m}
        row: list[Any] = []
        for c in COLUMNS:
            level, _, name = c.key.partition(".")
            value = sources[level].get(name)
            if c.kind == "bool" and value is not None:
                value = YES if value else NO
            elif c.kind == "enums" and isinstance(value, list):
                value = SEPARATOR.join(value)
            row.append(value)
        rows.append(row)
    return rows


def xlsx_bytes(rows: list[list[Any]]) -> bytes:
    """The import template as a workbook: the header row, then `rows`."""
    import io

    import openpyxl

    from povguard_contracts.template import HEADERS

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADERS)
    for r in rows:
        sheet.append(r)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_bytes(rows: list[list[Any]]) -> bytes:
    import csv
    import io

    from povguard_contracts.template import HEADERS

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADERS)
    writer.writerows([["" if v is None else v for v in r] for r in rows])
    return out.getvalue().encode("utf-8-sig")
