"""Personal names typical of the area: Han, Dai (Dehong Tai), Jingpo (birth-order names), Lisu and Achang styles.
Generated, so any likeness to a real person is chance."""

from __future__ import annotations

import random

from povguard_tools.synthetic.places import ACHANG, DAI, HAN, JINGPO, LISU

SURNAMES: dict[str, str] = {
    HAN: "李杨张王赵刘陈段尹寸许黄罗周何郭杜孙马番闫董蒋余彭",
    DAI: "线刀龚孟思方郎闷晃喊俸类混蒋朗岳",
    JINGPO: "排岳何金石董祁孔早腊麻雷沙穆尚郭",
    LISU: "余胡麻蔡李熊褚密祝开何杨",
    ACHANG: "曹赵梁杨番孙许司",
}
_COMPOUND_SURNAMES: dict[str, tuple[str, ...]] = {JINGPO: ("勒排", "木然", "排早", "石然")}

# Han given-name characters, older and younger cohorts
_HAN_MALE_OLD = "德明正华家富文学兴荣国庆建永福贵发光志云忠祥有才"
_HAN_FEMALE_OLD = "桂芳春兰秀英玉珍凤仙美丽琼花梅菊翠红金"
_HAN_MALE_YOUNG = "俊杰浩然宇航梓轩子豪博文明宏泽锦程"
_HAN_FEMALE_YOUNG = "欣怡雨萱梓涵诗琪思雨佳慧晓雪婷"
# Dai: prefix and personal syllable
_DAI_MALE_PREFIX = ("岩", "小", "保", "永", "")
_DAI_FEMALE_PREFIX = ("玉", "小", "金", "喃", "")
_DAI_SYLLABLES = "团约扎宝温罕吞坎帕相拜腊卯乃庄香"
# Jingpo: birth-order name plus personal syllable
_JINGPO_MALE_ORDER = "麻诺腊当跳"
_JINGPO_FEMALE_ORDER = "果路锐扎堵"
_JINGPO_SYLLABLES = "途干都丁昆新南宽拥咪相汤崩准勒弄"
# Lisu
_LISU_PREFIX = ("阿", "扒", "恒", "")
_LISU_MALE = "普三四五才路友福勇"
_LISU_FEMALE = "妹花英珍香芬秀"


def _han(rng: random.Random, male: bool, birth_year: int) -> str:
    if birth_year < 1980:
        chars = _HAN_MALE_OLD if male else _HAN_FEMALE_OLD
    else:
        chars = _HAN_MALE_YOUNG if male else _HAN_FEMALE_YOUNG
    return "".join(rng.sample(chars, 2)) if rng.random() < 0.85 else rng.choice(chars)


def surname(rng: random.Random, ethnicity: str) -> str:
    compound = _COMPOUND_SURNAMES.get(ethnicity, ())
    if compound and rng.random() < 0.15:
        return rng.choice(compound)
    return rng.choice(SURNAMES.get(ethnicity, SURNAMES[HAN]))


def given_name(rng: random.Random, ethnicity: str, male: bool, birth_year: int) -> str:
    if ethnicity == DAI:
        return rng.choice(_DAI_MALE_PREFIX if male else _DAI_FEMALE_PREFIX) + rng.choice(_DAI_SYLLABLES)
    if ethnicity == JINGPO:
        order = rng.choice(_JINGPO_MALE_ORDER if male else _JINGPO_FEMALE_ORDER)
        return order + rng.choice(_JINGPO_SYLLABLES) if rng.random() < 0.8 else order
    if ethnicity == LISU and birth_year < 1995:
        return rng.choice(_LISU_PREFIX) + rng.choice(_LISU_MALE if male else _LISU_FEMALE)
    return _han(rng, male, birth_year)  # Han, Achang, and younger Lisu


def full_name(rng: random.Random, family_name: str, ethnicity: str, male: bool, birth_year: int) -> str:
    return family_name + given_name(rng, ethnicity, male, birth_year)
