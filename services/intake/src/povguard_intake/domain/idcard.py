"""居民身份证号码 (GB 11643-1999): check character (ISO 7064 MOD 11-2), birth date and region prefix, by
python-stdnum; plus what the number says about birth date and sex."""

from __future__ import annotations

from datetime import date

from stdnum import numdb
from stdnum.cn import ric
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength, ValidationError


def id_number_problems(number: str) -> list[str]:
    """Why an ID number is invalid, in Chinese (empty when it is valid)."""
    compact = ric.compact(number)
    try:
        ric.validate(compact)
    except InvalidLength:
        return ["身份证号码应为18位"]
    except InvalidFormat:
        return ["身份证号码前17位应为数字"]
    except InvalidChecksum:
        return [f"身份证号码校验码错误（应为 {ric.calc_check_digit(compact)}）"]
    except InvalidComponent:
        try:
            ric.get_birth_date(compact)
        except InvalidComponent:
            return ["身份证号码中的出生日期无效"]
        return [f"身份证号码的地区代码 {compact[:6]} 不存在"]
    except ValidationError:
        return ["身份证号码无效"]
    return []


def normalise(number: str) -> str:
    return str(ric.compact(number))


def birth_date_of(number: str) -> date:
    return ric.get_birth_date(ric.compact(number))


def is_male(number: str) -> bool:
    """The 17th character (order code's last digit) is odd for men."""
    return int(ric.compact(number)[16]) % 2 == 1


def region_known(code: str) -> bool:
    return bool(numdb.get("cn/loc").info(code))


def mask(number: str) -> str:
    """For lists and notices: the region and the last four only (公示不得显示身份证号码)."""
    return number[:6] + "*" * (len(number) - 10) + number[-4:] if len(number) > 10 else "*" * len(number)
