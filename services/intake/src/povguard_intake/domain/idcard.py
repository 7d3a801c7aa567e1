"""居民身份证号码 (GB 11643-1999): check character (ISO 7064 MOD 11-2), birth date and region prefix, by
python-stdnum; plus what the number says about birth date and sex."""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache

from stdnum import numdb
from stdnum.cn import ric
from stdnum.exceptions import InvalidComponent

from povguard_platform.personal import mask_id_number


def id_number_problems(number: str) -> list[str]:
    """Why an ID number is invalid, in Chinese (empty when it is valid). Same checks as stdnum's ric.validate, with
    the region lookup cached: an import checks hundreds of thousands of numbers from a few hundred regions."""
    n = normalise(number)
    if len(n) != 18:
        return ["身份证号码应为18位"]
    if not _DIGITS.match(n[:17]):  # str.isdigit() would take other scripts' digits too
        return ["身份证号码前17位应为数字"]
    if n[-1] != ric.calc_check_digit(n):
        return [f"身份证号码校验码错误（应为 {ric.calc_check_digit(n)}）"]
    try:
        birth = birth_date_of(n)
    except ValueError:
        return ["身份证号码中的出生日期无效"]
    if not _region_known(n[:6], birth.year):
        return [f"身份证号码的地区代码 {n[:6]} 不存在"]
    return []


_CLEAN = re.compile(r"^[0-9]{17}[0-9X]$", re.ASCII)
_DIGITS = re.compile(r"^[0-9]{17}$", re.ASCII)
# 全角 digits and Ｘ (an IME's full-width mode) are the same characters to the national system: stored half-width
_FULL_WIDTH = str.maketrans("０１２３４５６７８９Ｘｘ　", "0123456789XX ")


def normalise(number: str) -> str:
    """The number as stored: full-width digits and Ｘ made half-width, no spaces, upper-case X (stdnum's compact,
    skipped when already clean)."""
    n = number.translate(_FULL_WIDTH).strip().upper()
    return n if _CLEAN.match(n) else str(ric.compact(n))


def birth_date_of(number: str) -> date:
    n = normalise(number)
    return date(int(n[6:10]), int(n[10:12]), int(n[12:14]))


def is_male(number: str) -> bool:
    """The 17th character (order code's last digit) is odd for men."""
    return int(normalise(number)[16]) % 2 == 1


@lru_cache(maxsize=8192)
def _region_known(region: str, year: int) -> bool:
    """The region code existed in the birth year (stdnum's administrative-division database)."""
    try:
        ric.get_birth_place(f"{region}{year:04d}01010000")
    except InvalidComponent:
        return False
    return True


def region_known(code: str) -> bool:
    return bool(numdb.get("cn/loc").info(code))


def mask(number: str) -> str:
    """For lists and notices: the region and the last four only (公示不得显示身份证号码)."""
    return mask_id_number(number)
