"""Every code the pages show, with its label in both languages.

The marts speak in codes (`report_acknowledgement`, `near_breach`, `10_13`); people read
labels. One vocabulary per kind of code, each code with (English, Chinese), so a page never
shows a raw code and a test can check that every value a mart holds has a label
(tests/test_dashboard_labels.py). Category labels come from the data (`dim_categories`),
not from here. Kinds keep the order a reader expects (age bands youngest first, severities
mildest first), which `order()` gives for sorting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from dashboards.i18n import language

Vocabulary = Mapping[str, tuple[str, str]]

CLOCKS: Vocabulary = {
    "takedown": ("Takedown", "下架"),
    "evidence": ("Evidence preserved", "证据保全"),
    "report_acknowledgement": ("Report acknowledgement", "举报受理"),
    "report_resolution": ("Report resolution", "举报处理完结"),
    "referral": ("Referral to the authority", "移送主管机关"),
}
CLOCK_STATES: Vocabulary = {
    "on_time": ("On time", "按时"),
    "late": ("Late", "超时"),
    "missed": ("Missed (deadline passed)", "错过时限"),
    "running": ("Running", "进行中"),
    "resolved_unacknowledged": (
        "Resolved before acknowledgement was due (never acknowledged)",
        "到期前已处理完结（未受理）",
    ),
}
BREACH_STATUS: Vocabulary = {
    "breach": ("Breached", "已超时"),
    "near_breach": ("Near breach", "临近超时"),
    "event": ("Event", "事件"),
    "resolved": ("Resolved", "已解除"),
}
SEVERITIES: Vocabulary = {
    "info": ("Info", "提示"),
    "warning": ("Warning", "警告"),
    "high": ("High", "高"),
    "critical": ("Critical", "严重"),
}
ALERT_TYPES: Vocabulary = {
    "takedown": ("Takedown clock", "下架时钟"),
    "report_acknowledgement": ("Report acknowledgement clock", "举报受理时钟"),
    "report_resolution": ("Report resolution clock", "举报处理时钟"),
    "referral": ("Referral clock", "移送时钟"),
    "feed_silent": ("Feed silent", "数据源静默"),
    "file_rejected": ("File rejected", "文件被拒收"),
    "quarantine_spike": ("Quarantine spike", "隔离行激增"),
    "pipeline_failed": ("Pipeline failed", "数据管道失败"),
    "digest": ("Daily digest", "每日摘要"),
    "backlog_digest": ("Backlog digest", "积压摘要"),
    "minor_protection": ("Minor protection clock", "未成年人保护时钟"),
    "rights_request": ("Rights request clock", "权利请求时钟"),
}
CHANNELS: Vocabulary = {
    "ops_webhook": ("Operations webhook", "运营 Webhook"),
    "ops_email": ("Operations e-mail", "运营邮件"),
    "leadership_email": ("Leadership e-mail", "领导邮件"),
}
DELIVERY_STATES: Vocabulary = {
    "pending": ("waiting", "等待中"),
    "sending": ("sending", "发送中"),
    "delivered": ("delivered", "已送达"),
    "failed": ("failed", "失败"),
    "digested": ("in a digest", "并入摘要"),
}
TIERS: Vocabulary = {
    "black": ("Black list", "黑名单"),
    "grey": ("Grey list", "灰名单"),
    "white": ("White list", "白名单"),
    "none": ("Not listed", "未列入"),
}
TIER_REASONS: Vocabulary = {
    "zero_tolerance": ("Zero-tolerance violation", "零容忍类违规"),
    "repeat_180d": ("3+ violations in 180 days", "180 天内 3 次以上违规"),
    "violation_180d": ("Violation in 180 days", "180 天内有违规"),
    "reports_30d": ("2+ reports in 30 days", "30 天内 2 次以上被举报"),
    "cleared": ("Cleared (all came to nothing)", "已澄清（均未成立）"),
}
AGE_BANDS: Vocabulary = {
    "under_10": ("Under 10", "10 岁以下"),
    "10_13": ("10–13", "10–13 岁"),
    "14_17": ("14–17", "14–17 岁"),
    "unknown": ("Age unknown", "年龄不详"),
}
VICTIM_SUPPORT: Vocabulary = {
    "offered": ("Offered", "已提供"),
    "accepted": ("Accepted", "已接受"),
    "declined": ("Declined", "被拒绝"),
    "not_offered": ("Not offered", "未提供"),
    "not_applicable": ("Not applicable", "不适用"),
    "unknown": ("Not recorded", "未记录"),
}
CASE_OUTCOMES: Vocabulary = {
    "open": ("Open", "处理中"),
    "referred": ("Referred", "已移送"),
    "under_investigation": ("Under investigation", "侦查中"),
    "prosecuted": ("Prosecuted", "已起诉"),
    "convicted": ("Convicted", "已定罪"),
    "no_further_action": ("No further action", "不再处理"),
    "closed_internal": ("Closed internally", "内部结案"),
}
DETECTION_METHODS: Vocabulary = {
    "hash_match": ("Hash match", "哈希比对"),
    "keyword_match": ("Keyword match", "关键词匹配"),
    "classifier": ("Classifier", "分类模型"),
    "human_moderator": ("Human moderator", "人工审核"),
}
TRIGGERS: Vocabulary = {
    "proactive": ("Proactive detection", "主动发现"),
    "user_report": ("User report", "用户举报"),
    "partner_platform": ("Partner platform", "合作平台"),
    "authority_request": ("Authority request", "主管机关要求"),
}
REPORT_CHANNELS: Vocabulary = {
    "in_app": ("In the app", "应用内"),
    "web_form": ("Web form", "网页表单"),
    "hotline": ("Hotline", "热线"),
    "email": ("E-mail", "电子邮件"),
    "partner_platform": ("Partner platform", "合作平台"),
    "authority": ("Authority", "主管机关"),
    "ngo": ("NGO", "社会组织"),
}
ACTION_TYPES: Vocabulary = {
    "content_removed": ("Content removed", "删除内容"),
    "upload_blocked": ("Upload blocked", "拦截上传"),
    "transmission_blocked": ("Transmission blocked", "阻断传输"),
    "warning_issued": ("Warning issued", "发出警告"),
    "account_restricted": ("Account restricted", "限制账号"),
    "account_suspended": ("Account suspended", "暂停账号"),
    "account_banned": ("Account banned", "封禁账号"),
}
AUTHORITY_TYPES: Vocabulary = {
    "public_security": ("Public security (police)", "公安机关"),
    "procuratorate": ("Procuratorate", "检察机关"),
    "court": ("Court", "人民法院"),
    "cyberspace_admin": ("Cyberspace administration", "网信部门"),
    "other": ("Other authority", "其他主管机关"),
}
HIT_STATUS: Vocabulary = {
    "pending": ("Pending review", "待审核"),
    "confirmed": ("Confirmed", "已确认"),
    "false_positive": ("False positive", "误报"),
}
REPORT_RESOLUTIONS: Vocabulary = {
    "pending": ("Pending", "待处理"),
    "actioned": ("Actioned", "已处置"),
    "no_violation": ("No violation", "未违规"),
    "duplicate": ("Duplicate", "重复"),
    "insufficient_information": ("Insufficient information", "信息不足"),
}
SUBJECT_EVENTS: Vocabulary = {
    "posted": ("Posted", "发布"),
    "hit_detected": ("Screening hit", "筛查命中"),
    "hit_reviewed": ("Hit reviewed", "命中已复核"),
    "action_taken": ("Action taken", "采取处置"),
    "action_reversed": ("Action reversed", "处置被撤销"),
    "evidence_preserved": ("Evidence preserved", "证据已保全"),
    "report_received": ("Report received", "收到举报"),
    "report_acknowledged": ("Report acknowledged", "举报已受理"),
    "report_resolved": ("Report resolved", "举报已处理完结"),
    "feedback_sent": ("Feedback sent to the reporter", "已向举报人反馈"),
    "case_opened": ("Case opened", "立案"),
    "case_confirmed": ("Case confirmed", "案件确认"),
    "case_referred": ("Referred to the authority", "移送主管机关"),
    "authority_accepted": ("Accepted by the authority", "主管机关受理"),
    "case_closed": ("Case closed", "结案"),
}
# The `detail` codes of fct_subject_events: each comes from one of these vocabularies.
EVENT_DETAILS: Vocabulary = {
    **DETECTION_METHODS,
    **HIT_STATUS,
    **ACTION_TYPES,
    **TRIGGERS,
    **REPORT_CHANNELS,
    **REPORT_RESOLUTIONS,
    **CASE_OUTCOMES,
    **AUTHORITY_TYPES,
}
GRAINS: Vocabulary = {
    "day": ("Day", "日"),
    "week": ("Week", "周"),
    "month": ("Month", "月"),
    "quarter": ("Quarter", "季度"),
}

# The tier rule settings of dim_policy_tier_rules (the methodology page's rules table).
RULE_SETTINGS: Vocabulary = {
    "policy_version": ("Policy version", "政策版本"),
    "zero_tolerance_min_violations": (
        "Black: zero-tolerance violations needed",
        "黑名单：所需零容忍类违规次数",
    ),
    "repeat_min_violations": (
        "Black: violations needed in the window",
        "黑名单：时间窗内所需违规次数",
    ),
    "repeat_window_days": ("Black: window (days)", "黑名单：时间窗（天）"),
    "violation_min_violations": (
        "Grey: violations needed in the window",
        "灰名单：时间窗内所需违规次数",
    ),
    "violation_window_days": ("Grey: violation window (days)", "灰名单：违规时间窗（天）"),
    "reports_min_reports": ("Grey: reports needed in the window", "灰名单：时间窗内所需举报数"),
    "reports_window_days": ("Grey: report window (days)", "灰名单：举报时间窗（天）"),
}
# What each published table holds (the methodology page's headings; dbt names beside them).
MART_TITLES: Vocabulary = {
    "fct_content_takedowns": ("Takedowns, one row per content", "下架（每项内容一行）"),
    "rpt_takedown_sla_daily": ("Takedown SLA per day and category", "每日各类别下架时效"),
    "fct_open_sla_breaches": (
        "Clocks running past 75% of target",
        "已用去时限 75% 以上的运行中时钟",
    ),
    "fct_sla_clocks": ("Every SLA clock, decided or running", "全部时效时钟（已判定或运行中）"),
    "fct_subject_events": ("What happened to each subject", "各对象的处理经过"),
    "fct_reports": ("Reports, one row per report", "举报（每份举报一行）"),
    "rpt_report_handling_daily": ("Report handling per day", "每日举报处理"),
    "fct_cases": ("Cases, one row per case", "案件（每案一行）"),
    "rpt_case_outcomes_monthly": ("Case outcomes per month", "每月案件结果"),
    "dim_user_tiers": ("Accounts and their list tier at T", "账号及其截至 T 的名单"),
    "fct_user_tier_history": ("List tier history of each account", "各账号名单历史"),
    "rpt_repeat_offenders": ("The black and grey list", "黑名单与灰名单"),
    "rpt_tier_counts_daily": ("Accounts per tier per day", "每日各名单账号数"),
    "rpt_category_trends_weekly": ("Weekly trends per category", "各类别每周趋势"),
    "rpt_detection_quality_weekly": ("Detection quality per week", "每周检测质量"),
    "dim_categories": ("Categories", "类别"),
    "dim_policy_versions": ("Policy versions", "政策版本"),
    "dim_policy_sla_targets": ("SLA targets per policy version", "各政策版本的服务时限"),
    "dim_policy_tier_rules": ("List rules per policy version", "各政策版本的名单规则"),
    "ops_ingest_ledger": ("Files landed (ingest ledger)", "落地文件（导入台账）"),
    "ops_quarantine": ("Quarantined rows", "隔离行"),
}

ALL: dict[str, Vocabulary] = {
    "clock": CLOCKS,
    "clock_state": CLOCK_STATES,
    "breach_status": BREACH_STATUS,
    "severity": SEVERITIES,
    "alert_type": ALERT_TYPES,
    "channel": CHANNELS,
    "delivery_state": DELIVERY_STATES,
    "tier": TIERS,
    "tier_reason": TIER_REASONS,
    "age_band": AGE_BANDS,
    "victim_support": VICTIM_SUPPORT,
    "case_outcome": CASE_OUTCOMES,
    "detection_method": DETECTION_METHODS,
    "trigger": TRIGGERS,
    "report_channel": REPORT_CHANNELS,
    "action_type": ACTION_TYPES,
    "authority_type": AUTHORITY_TYPES,
    "hit_status": HIT_STATUS,
    "report_resolution": REPORT_RESOLUTIONS,
    "grain": GRAINS,
    "subject_event": SUBJECT_EVENTS,
}


def label(vocabulary: Vocabulary, code: object) -> str:
    """The code's label in the current language; a dash for no value. A code the
    vocabulary lacks is shown as it is (the labels test keeps that from happening)."""
    if code is None or (isinstance(code, float) and code != code):  # None or NaN
        return "–"
    pair = vocabulary.get(str(code))
    if pair is None:
        return str(code)
    return pair[1] if language() == "zh" else pair[0]


def labels(vocabulary: Vocabulary, codes: Iterable[object]) -> list[str]:
    return [label(vocabulary, code) for code in codes]


def order(vocabulary: Vocabulary, code: object) -> int:
    """Sort key: the vocabulary's own order; unknown codes last."""
    keys = list(vocabulary)
    return keys.index(code) if code in vocabulary else len(keys)


def formatter(vocabulary: Vocabulary):
    """For `format_func=` of selection widgets."""
    return lambda code: label(vocabulary, code)
