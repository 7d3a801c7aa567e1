"""Yingjiang's 15 townships with codes, and generated administrative villages and village groups.

Township codes follow the national statistical convention (镇 100–1xx, 乡 200–2xx after the county code); village
codes add three digits (村委会 from 201), group codes three more (from 001). Names of villages and groups are
generated, not real. The ethnic mix and the plains/mountain split per township are rough approximations."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from povguard_contracts.intake import Place

COUNTY_CODE = "533123"
COUNTY = "盈江县"

HAN, DAI, JINGPO, LISU, ACHANG = "汉族", "傣族", "景颇族", "傈僳族", "阿昌族"
ETHNICITIES = (HAN, DAI, JINGPO, LISU, ACHANG)


@dataclass(frozen=True, slots=True)
class Township:
    code: str
    name: str
    villages: int  # administrative villages (about 100 in the county)
    mountain: bool  # mountain township: poorer, more 脱贫户, smaller farm incomes
    ethnic_mix: tuple[int, int, int, int, int]  # weights of HAN, DAI, JINGPO, LISU, ACHANG


TOWNSHIPS: tuple[Township, ...] = (
    Township("533123100", "平原镇", 14, False, (50, 40, 5, 3, 2)),
    Township("533123101", "旧城镇", 11, False, (45, 45, 5, 3, 2)),
    Township("533123102", "那邦镇", 3, True, (20, 40, 25, 15, 0)),
    Township("533123103", "弄璋镇", 11, False, (40, 50, 6, 3, 1)),
    Township("533123104", "盏西镇", 9, False, (60, 20, 14, 5, 1)),
    Township("533123105", "卡场镇", 7, True, (15, 5, 55, 25, 0)),
    Township("533123106", "昔马镇", 5, True, (30, 10, 25, 35, 0)),
    Township("533123107", "太平镇", 9, False, (45, 35, 15, 5, 0)),
    Township("533123200", "新城乡", 6, False, (55, 30, 10, 5, 0)),
    Township("533123201", "油松岭乡", 4, True, (25, 5, 30, 40, 0)),
    Township("533123202", "芒章乡", 5, True, (40, 15, 35, 10, 0)),
    Township("533123203", "支那乡", 5, True, (50, 5, 25, 20, 0)),
    Township("533123204", "苏典乡", 4, True, (15, 0, 35, 50, 0)),
    Township("533123205", "勐弄乡", 5, True, (35, 10, 35, 20, 0)),
    Township("533123206", "铜壁关乡", 5, True, (30, 20, 25, 25, 0)),
)
BY_CODE = {t.code: t for t in TOWNSHIPS}

# syllables for generated names: Dai-style place names on the plains, Han/Jingpo/Lisu-style in the mountains
_PLAINS_FIRST = "芒弄允贺拉户等蛮勐南那喊广景姐线帕"
_PLAINS_SECOND = "允哈璋线蚌东西坎冒角嘎莫宋勒板岗亥贡旺令"
_MOUNTAIN_FIRST = "石草松竹茶龙凤新红麻排卡吾勐岗平小大老桥"
_MOUNTAIN_SECOND = "坝山河岭箐坡场寨岩沟林梁塘田湾"
_GROUP_SUFFIXES = ("上寨", "下寨", "新寨", "老寨", "大寨", "小寨", "中寨", "河边", "坝头", "山脚", "坡头", "箐口",
                   "田坝", "岔河", "桥头", "街子", "凹子", "垭口", "松林", "竹林")
_NUMERALS = "一二三四五六七八九十"

HOUSEHOLDS_PER_GROUP = 45
MAX_GROUPS_PER_VILLAGE = 30


@dataclass(frozen=True, slots=True)
class Village:
    township: Township
    code: str
    name: str
    weight: float  # share of the township's households


def make_villages(rng: random.Random) -> list[Village]:
    """About 100 administrative villages with unique generated names and codes."""
    used: set[str] = set()
    out: list[Village] = []
    for t in TOWNSHIPS:
        first, second = (_MOUNTAIN_FIRST, _MOUNTAIN_SECOND) if t.mountain else (_PLAINS_FIRST, _PLAINS_SECOND)
        for i in range(t.villages):
            name = ""
            while not name or name in used:
                name = rng.choice(first) + rng.choice(second) + "村"
            used.add(name)
            out.append(Village(t, f"{t.code}{201 + i:03d}", name, rng.uniform(0.6, 1.5)))
    return out


def group_name(village: Village, index: int) -> str:
    stem = village.name.removesuffix("村")
    if index < len(_GROUP_SUFFIXES):
        return stem + _GROUP_SUFFIXES[index]
    n = index - len(_GROUP_SUFFIXES) + 1
    numeral = _NUMERALS[n - 1] if n <= 10 else f"十{_NUMERALS[n - 11]}" if n < 20 else str(n)
    return f"{stem}{numeral}组"


def _largest_remainder(total: int, weights: list[float]) -> list[int]:
    """Split `total` into integers proportional to `weights` (deterministic)."""
    s = sum(weights)
    exact = [total * w / s for w in weights]
    counts = [math.floor(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (counts[i] - exact[i], i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def township_weight(t: Township) -> float:
    """Plains townships are more populous per village."""
    return 1.0 if t.mountain else 1.35


def allocate(villages: list[Village], households: int, rng: random.Random) -> list[Place]:
    """One Place per household, in registry order (by township, village, group): households are split over
    villages by weight, and each village into groups of about HOUSEHOLDS_PER_GROUP."""
    per_village = _largest_remainder(households, [v.weight * township_weight(v.township) for v in villages])
    places: list[Place] = []
    for village, n in zip(villages, per_village, strict=True):
        if n == 0:
            continue
        groups = max(1, min(MAX_GROUPS_PER_VILLAGE, round(n / HOUSEHOLDS_PER_GROUP)))
        sizes = _largest_remainder(n, [rng.uniform(0.6, 1.4) for _ in range(groups)])
        for g, size in enumerate(sizes):
            if size == 0:
                continue
            place = Place(county_code=COUNTY_CODE, county=COUNTY, township_code=village.township.code,
                          township=village.township.name, village_code=village.code, village=village.name,
                          group_code=f"{village.code}{g + 1:03d}", group=group_name(village, g))
            places.extend([place] * size)
    return places
