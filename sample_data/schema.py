"""What the four landing feeds look like: field order, enums and the OCSE categories.

Mirrors `data_contracts/*.odcs.yaml` and `categories.csv`; `tests/test_generator.py` checks
that the two agree, so a contract change that is not made here fails a test instead of
producing files the ingestion gate rejects.
"""

from __future__ import annotations

from dataclasses import dataclass

# (code, zero_tolerance, is_csam), in the order of categories.csv.
CATEGORIES: tuple[tuple[str, bool, bool], ...] = (
    ("online_contact_rape", True, False),
    ("child_prostitution", True, False),
    ("sextortion", True, False),
    ("online_indecency", False, False),
    ("sexual_bullying", False, False),
    ("csam_production_distribution", True, True),
    ("csam_possession", False, True),
    ("grooming", False, False),
)
CATEGORY_CODES = tuple(code for code, _, _ in CATEGORIES)
ZERO_TOLERANCE = frozenset(code for code, zt, _ in CATEGORIES if zt)
CSAM = frozenset(code for code, _, csam in CATEGORIES if csam)


@dataclass(frozen=True, eq=False)
class Feed:
    name: str
    key: str
    fields: tuple[str, ...]
    required: frozenset[str]
    timestamps: tuple[str, ...]
    personal: tuple[str, ...]
    enums: dict[str, tuple[str, ...]]
    file_prefix: str
    # Hours per delivery batch: upstream systems export on their own rhythm.
    batch_hours: int


HITS = Feed(
    name="screening_hits",
    key="hit_id",
    fields=(
        "hit_id",
        "content_id",
        "content_type",
        "uploader_id",
        "posted_at",
        "detected_at",
        "detection_method",
        "matched_list",
        "score",
        "category_code",
        "review_status",
        "reviewed_at",
        "reviewer_id",
        "updated_at",
    ),
    required=frozenset(
        {
            "hit_id",
            "content_id",
            "content_type",
            "uploader_id",
            "detected_at",
            "detection_method",
            "category_code",
            "review_status",
            "updated_at",
        }
    ),
    timestamps=("posted_at", "detected_at", "reviewed_at", "updated_at"),
    personal=("uploader_id", "reviewer_id"),
    enums={
        "content_type": (
            "image",
            "video",
            "text",
            "livestream",
            "chat_message",
            "profile",
            "other",
        ),
        "detection_method": ("hash_match", "keyword_match", "classifier", "human_moderator"),
        "review_status": ("pending", "confirmed", "false_positive"),
    },
    file_prefix="hits",
    batch_hours=3,
)

REPORTS = Feed(
    name="reports",
    key="report_id",
    fields=(
        "report_id",
        "received_at",
        "channel",
        "reporter_type",
        "reporter_id",
        "content_id",
        "reported_user_id",
        "category_code",
        "acknowledged_at",
        "resolved_at",
        "resolution",
        "feedback_sent_at",
        "updated_at",
    ),
    required=frozenset(
        {
            "report_id",
            "received_at",
            "channel",
            "reporter_type",
            "category_code",
            "resolution",
            "updated_at",
        }
    ),
    timestamps=("received_at", "acknowledged_at", "resolved_at", "feedback_sent_at", "updated_at"),
    personal=("reporter_id", "reported_user_id"),
    enums={
        "channel": (
            "in_app",
            "web_form",
            "hotline",
            "email",
            "partner_platform",
            "authority",
            "ngo",
        ),
        "reporter_type": (
            "user",
            "guardian",
            "minor",
            "trusted_flagger",
            "ngo",
            "authority",
            "anonymous",
        ),
        "resolution": (
            "pending",
            "actioned",
            "no_violation",
            "duplicate",
            "insufficient_information",
        ),
    },
    file_prefix="reports",
    batch_hours=6,
)

ACTIONS = Feed(
    name="enforcement_actions",
    key="action_id",
    fields=(
        "action_id",
        "content_id",
        "user_id",
        "category_code",
        "action_type",
        "trigger",
        "hit_id",
        "report_id",
        "posted_at",
        "detected_at",
        "actioned_at",
        "evidence_preserved_at",
        "evidence_ref",
        "reversed_at",
        "updated_at",
    ),
    required=frozenset(
        {
            "action_id",
            "user_id",
            "category_code",
            "action_type",
            "trigger",
            "detected_at",
            "actioned_at",
            "updated_at",
        }
    ),
    timestamps=(
        "posted_at",
        "detected_at",
        "actioned_at",
        "evidence_preserved_at",
        "reversed_at",
        "updated_at",
    ),
    personal=("user_id",),
    enums={
        "action_type": (
            "content_removed",
            "upload_blocked",
            "transmission_blocked",
            "warning_issued",
            "account_restricted",
            "account_suspended",
            "account_banned",
        ),
        "trigger": ("proactive", "user_report", "partner_platform", "authority_request"),
    },
    file_prefix="actions",
    batch_hours=4,
)

CASES = Feed(
    name="cases",
    key="case_id",
    fields=(
        "case_id",
        "opened_at",
        "category_code",
        "subject_user_id",
        "action_id",
        "victims_count",
        "youngest_victim_age_band",
        "confirmed_at",
        "referred_at",
        "authority_type",
        "authority_accepted_at",
        "outcome",
        "victim_support",
        "support_types",
        "closed_at",
        "updated_at",
    ),
    required=frozenset(
        {
            "case_id",
            "opened_at",
            "category_code",
            "victims_count",
            "outcome",
            "victim_support",
            "updated_at",
        }
    ),
    timestamps=(
        "opened_at",
        "confirmed_at",
        "referred_at",
        "authority_accepted_at",
        "closed_at",
        "updated_at",
    ),
    personal=("subject_user_id",),
    enums={
        "youngest_victim_age_band": ("under_10", "10_13", "14_17", "unknown"),
        "authority_type": (
            "public_security",
            "procuratorate",
            "court",
            "cyberspace_admin",
            "other",
        ),
        "outcome": (
            "open",
            "referred",
            "under_investigation",
            "prosecuted",
            "convicted",
            "no_further_action",
            "closed_internal",
        ),
        "victim_support": ("not_applicable", "not_offered", "offered", "accepted", "declined"),
        "support_types": ("psychological", "financial", "legal", "mediation", "other"),
    },
    file_prefix="cases",
    batch_hours=12,
)

FEEDS: tuple[Feed, ...] = (HITS, REPORTS, ACTIONS, CASES)
FEED_BY_NAME = {feed.name: feed for feed in FEEDS}

# Regexes a leak test searches the warehouse for; every raw personal id matches one of them.
ACCOUNT_ID_PATTERN = r"acct-[0-9a-f]{10}"
REVIEWER_ID_PATTERN = r"mod-[0-9a-f]{8}"
