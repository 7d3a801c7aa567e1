"""Allowed values of the national 防返贫监测 form and of the seed, as the Chinese strings the form uses."""

from __future__ import annotations

from enum import StrEnum


class HouseholdKind(StrEnum):
    """户类型"""

    LIFTED = "脱贫户"
    MONITORED = "监测对象"
    ORDINARY = "一般农户"


class MonitoringCategory(StrEnum):
    """监测对象类别"""

    UNSTABLE_LIFTED = "脱贫不稳定户"
    MARGINAL = "边缘易致贫户"
    SUDDEN_HARDSHIP = "突发严重困难户"


class MonitoringStatus(StrEnum):
    """监测状态 (as decided by review)"""

    NOT_MONITORED = "未纳入监测"
    RISK_NOT_ELIMINATED = "风险未消除"
    RISK_ELIMINATED = "风险已消除"
    REMOVED = "整户清退"


class PriorityGroup(StrEnum):
    """The nine priority groups of seed §二(一)1 (重点排查对象)."""

    LIFTED_2020 = "2020年脱贫户"
    LOW_OR_FALLEN_INCOME = "2021年收入较低或明显减少"
    SCATTERED_TEKUN = "分散供养特困人员"
    DIBAO = "农村低保对象"
    DISABLED = "农村残疾人家庭"
    MANY_CHILDREN_IN_SCHOOL = "多子女非义务教育阶段在读"
    UNSTABLE_MIGRANT_INCOME = "务工收入占比高且不稳定"
    RIGID_SPENDING_OR_INCOME_DROP = "因病因灾因意外刚性支出大或收入大幅缩减"
    ASSISTANCE_PLATFORM = "政府救助平台申请救助"


class Sex(StrEnum):
    MALE = "男"
    FEMALE = "女"


class Relation(StrEnum):
    """与户主关系"""

    HEAD = "户主"
    SPOUSE = "配偶"
    SON = "之子"
    DAUGHTER = "之女"
    DAUGHTER_IN_LAW = "之儿媳"
    SON_IN_LAW = "之女婿"
    GRANDSON = "之孙子"
    GRANDDAUGHTER = "之孙女"
    DAUGHTERS_SON = "之外孙子"
    DAUGHTERS_DAUGHTER = "之外孙女"
    FATHER = "之父"
    MOTHER = "之母"
    WIFES_FATHER = "之岳父"
    WIFES_MOTHER = "之岳母"
    HUSBANDS_FATHER = "之公公"
    HUSBANDS_MOTHER = "之婆婆"
    GRANDFATHER = "之祖父"
    GRANDMOTHER = "之祖母"
    MATERNAL_GRANDFATHER = "之外祖父"
    MATERNAL_GRANDMOTHER = "之外祖母"
    SIBLING = "之兄弟姐妹"
    GREAT_GRANDSON = "之曾孙子"
    GREAT_GRANDDAUGHTER = "之曾孙女"
    NEPHEW = "之侄儿"
    NIECE = "之侄女"
    SIBLINGS_WIFE = "之兄弟媳妇"
    UNCLE = "之叔伯"
    OTHER = "其他"


class Education(StrEnum):
    """文化程度 (for members not in school)"""

    ILLITERATE = "文盲或半文盲"
    PRIMARY = "小学"
    JUNIOR = "初中"
    SENIOR = "高中"
    COLLEGE = "大专"
    BACHELOR_OR_ABOVE = "本科及以上"


class SchoolStatus(StrEnum):
    """在校生状况"""

    PRESCHOOL_CHILD = "学龄前儿童"
    PRESCHOOL_EDUCATION = "学前教育"
    PRIMARY = "小学"
    GRADES_7_9 = "七至九年级"
    SENIOR_HIGH = "普通高中"
    SECONDARY_VOCATIONAL = "中职"
    HIGHER_VOCATIONAL = "高职高专"
    TECHNICIAN_COLLEGE = "技师学院"
    BACHELOR = "本科"
    POSTGRADUATE = "硕士研究生及以上"


class Health(StrEnum):
    """健康状况 (several may hold, except 健康 which stands alone)"""

    HEALTHY = "健康"
    CHRONIC = "长期慢性病"
    SERIOUS_ILLNESS = "患有大病"
    DISABLED = "残疾"


class DisabilityCategory(StrEnum):
    """残疾类别"""

    VISUAL = "视力残疾"
    HEARING = "听力残疾"
    SPEECH = "言语残疾"
    PHYSICAL = "肢体残疾"
    INTELLECTUAL = "智力残疾"
    MENTAL = "精神残疾"
    MULTIPLE = "多重残疾"


class LabourSkill(StrEnum):
    """劳动技能"""

    ORDINARY = "普通劳动力"
    SKILLED = "技能劳动力"
    WEAK = "弱劳动力或半劳动力"
    LOST = "丧失劳动力"
    NONE = "无劳动力"


LABOUR_CAPABLE = frozenset({LabourSkill.ORDINARY, LabourSkill.SKILLED, LabourSkill.WEAK})


class MigrantPlace(StrEnum):
    """务工所在地"""

    IN_COUNTY = "县内"
    IN_PROVINCE = "省内县外"
    OUT_OF_PROVINCE = "省外"
    ABROAD = "境外"


class MedicalInsurance(StrEnum):
    RESIDENT = "城乡居民基本医疗保险"
    EMPLOYEE = "职工基本医疗保险"
    NONE = "未参加"


class PensionInsurance(StrEnum):
    RESIDENT = "城乡居民基本养老保险"
    EMPLOYEE = "职工基本养老保险"
    NONE = "未参加"


class ChangeReason(StrEnum):
    """人员自然变更 and corrections: why a member joined, changed or left."""

    BIRTH = "新生儿"
    DEATH = "死亡"
    MARRIAGE_IN = "婚入"
    MARRIAGE_OUT = "婚出"
    SPLIT = "分户"
    MOVE_IN = "迁入"
    MOVE_OUT = "迁出"
    CORRECTION = "信息更正"


JOIN_REASONS = frozenset({ChangeReason.BIRTH, ChangeReason.MARRIAGE_IN, ChangeReason.MOVE_IN, ChangeReason.SPLIT,
                          ChangeReason.CORRECTION})
LEAVE_REASONS = frozenset({ChangeReason.DEATH, ChangeReason.MARRIAGE_OUT, ChangeReason.MOVE_OUT, ChangeReason.SPLIT,
                           ChangeReason.CORRECTION})


class RiskType(StrEnum):
    """返贫致贫风险类型"""

    ILLNESS = "因病"
    SCHOOLING = "因学"
    DISABILITY = "因残"
    NATURAL_DISASTER = "因自然灾害"
    ACCIDENT = "因意外事故"
    INDUSTRY_FAILURE = "因产业项目失败"
    UNSTABLE_EMPLOYMENT = "因务工就业不稳"
    LACK_OF_LABOUR = "缺劳动力"
    OTHER = "其他"


class LeadSource(StrEnum):
    """线索来源"""

    SELF_REPORT = "农户自主申报"
    CADRE = "干部排查"
    DEPARTMENT = "部门筛查预警"


class Department(StrEnum):
    """行业部门 (附件1)"""

    CIVIL_AFFAIRS = "民政"
    MEDICAL_INSURANCE = "医保"
    HEALTH = "卫健"
    EDUCATION = "教育"
    HOUSING = "住建"
    HUMAN_RESOURCES = "人社"
    EMERGENCY = "应急"
    DISABLED_FEDERATION = "残联"
    PUBLIC_SECURITY = "公安"
    NATURAL_RESOURCES = "自然资源"
    AGRICULTURE = "农业农村"
    MARKET_REGULATION = "市场监管"
    FORESTRY = "林草"
    STATISTICS = "统计"
    FINANCE = "财政"
    PEOPLES_BANK = "人民银行"
    MEDIA_PETITIONS = "媒体信访"


class WarningKind(StrEnum):
    """预警类型"""

    HIGH_MEDICAL_SPENDING = "大额医疗支出"
    DISASTER = "受灾"
    UNEMPLOYMENT = "失业"
    NEW_DISABILITY = "新增残疾"
    ASSISTANCE_APPLIED = "申请救助"
    DIBAO_APPLIED = "申请低保"
    SCHOOL_DROPOUT = "辍学"
    HOUSING_UNSAFE = "住房不安全"
    ACCIDENT = "意外事故"
    OTHER = "其他"


class Outcome(StrEnum):
    """The eight outcomes of the screening (seed §三(五)), plus 无变化 when nothing changes."""

    NEWLY_IDENTIFIED = "新识别监测对象"
    RE_MARKED = "风险再标注"
    ELIMINATION_ROLLED_BACK = "风险消除不稳定回退"
    REMOVED_WRONGLY_IDENTIFIED = "识别不精准整户清退"
    RISK_ELIMINATION = "拟风险消除"
    INCOME_INCREASE_TARGET = "万元以下户户增收帮扶对象"
    FURTHER_SUPPORT = "风险未消除拟进一步帮扶"
    NATURAL_CHANGE = "自然变更"
    NO_CHANGE = "无变化"


# Outcomes that change who is a monitoring object and so go through public notice (户户增收 targets are not noticed)
NOTICED_OUTCOMES = frozenset({Outcome.NEWLY_IDENTIFIED, Outcome.RE_MARKED, Outcome.ELIMINATION_ROLLED_BACK,
                              Outcome.REMOVED_WRONGLY_IDENTIFIED, Outcome.RISK_ELIMINATION})


class EliminationMethod(StrEnum):
    """风险消除方式"""

    SUPPORTED = "帮扶消除"
    NATURAL = "自然消除"


class IncomeBand(StrEnum):
    """人均纯收入分段 (seed §二(一)2)"""

    UNDER_LINE = "监测范围以下"
    LINE_TO_7000 = "监测范围至7000元"
    B7000_8000 = "7000-8000元"
    B8000_9000 = "8000-9000元"
    B9000_10000 = "9000-10000元"
    OVER_10000 = "10000元以上"


class MeasureKind(StrEnum):
    """帮扶措施类型"""

    INDUSTRY = "产业帮扶"
    EMPLOYMENT = "就业帮扶"
    FINANCE = "金融帮扶"
    PUBLIC_WELFARE_JOB = "公益岗位帮扶"
    HOUSING = "住房安全保障"
    WATER = "饮水安全保障"
    HEALTH = "健康帮扶"
    COMPULSORY_EDUCATION = "义务教育保障"
    OTHER_EDUCATION = "其他教育帮扶"
    SOCIAL_SECURITY = "综合保障"
    SOCIAL_ASSISTANCE = "社会帮扶"
    RELOCATION = "搬迁"
    LIVING_CONDITIONS = "生产生活条件改善"
    INFRASTRUCTURE = "基础设施建设"


DEVELOPMENTAL_MEASURES = frozenset({MeasureKind.INDUSTRY, MeasureKind.EMPLOYMENT, MeasureKind.FINANCE,
                                    MeasureKind.PUBLIC_WELFARE_JOB})
