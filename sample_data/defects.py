"""Deliberately bad input: broken rows inside otherwise valid files, and broken files.

Every row defect breaks exactly one thing, chosen so that the ingestion gate has one clear
reason code to give: timestamps are corrupted only in fields no contract rule reads, enums
only where the rule does not also fail, and each rule of the contracts is broken with every
other field left valid. Each defect is recorded (file, row number, kind, field) in the
manifest `_bad_rows.csv` so tests of the gate can check that exactly these rows were
quarantined.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from sample_data.schema import ACTIONS, CASES, HITS, REPORTS, Feed

H = 3600

# Required fields that no rule reads: blanking them gives exactly one reason.
MISSING_FIELDS = {
    HITS.name: (
        "content_id",
        "content_type",
        "uploader_id",
        "detection_method",
        "category_code",
        "updated_at",
    ),
    REPORTS.name: ("channel", "reporter_type", "category_code", "updated_at"),
    ACTIONS.name: ("user_id", "category_code", "trigger", "updated_at"),
    CASES.name: ("category_code", "victims_count", "victim_support", "updated_at"),
}
# Timestamp fields outside every rule, corrupted as text.
TEXT_TIMESTAMP_FIELDS = {
    HITS.name: ("posted_at", "updated_at"),
    REPORTS.name: ("feedback_sent_at", "updated_at"),
    ACTIONS.name: ("evidence_preserved_at", "reversed_at", "updated_at"),
    CASES.name: ("closed_at", "updated_at"),
}
BAD_ENUM_VALUES = {
    "content_type": ("gif", "Image", "audio_clip"),
    "detection_method": ("ai_model", "hash", "Manual"),
    "review_status": ("approved", "Confirmed", "rejected"),
    "channel": ("wechat", "phone_call", "In_App"),
    "reporter_type": ("teacher", "parent", "police_officer"),
    "resolution": ("closed", "resolved", "Actioned"),
    "action_type": ("content_hidden", "shadow_ban", "removed"),
    "trigger": ("automated", "appeal", "Proactive"),
    "outcome": ("pending_trial", "dismissed", "Convicted"),
    "victim_support": ("pending", "unknown", "Offered"),
    "authority_type": ("police", "interpol", "ministry"),
    "youngest_victim_age_band": ("0_5", "under_14", "15_18"),
    "support_types": ("housing", "Psychological", "education"),
}
BAD_CATEGORIES = ("csam_other", "child_trafficking", "CSAM_POSSESSION", "Grooming", "porn")
# Enum fields whose corruption keeps every rule true for the eligible rows (a status is only
# corrupted on rows where it is not `pending`, because the rules compare it with 'pending').
ENUM_FIELDS = {
    HITS.name: ("content_type", "detection_method", "review_status"),
    REPORTS.name: ("channel", "reporter_type", "resolution"),
    ACTIONS.name: ("action_type", "trigger"),
    CASES.name: (
        "outcome",
        "victim_support",
        "authority_type",
        "youngest_victim_age_band",
        "support_types",
    ),
}
CONTENT_ACTIONS = ("content_removed", "upload_blocked", "transmission_blocked")
REQUIRES_REFERRAL = ("referred", "under_investigation", "prosecuted", "convicted")


@dataclass(frozen=True)
class Defect:
    row: int  # 0-based index in the file's rows
    kind: str
    field: str


Row = dict
Typed = dict[str, object]  # field -> new typed value


def _enum_fields(feed: Feed, row: Row) -> list[str]:
    fields = []
    for name in ENUM_FIELDS[feed.name]:
        value = row.get(name)
        if value is None or (name in ("review_status", "resolution") and value == "pending"):
            continue
        fields.append(name)
    return fields


def _rule_mutation(feed: Feed, kind: str, row: Row, rng: np.random.Generator) -> Typed | None:
    """New typed values that break exactly the named contract rule, or None if the row
    cannot carry that defect."""
    shift = int(rng.integers(5 * 60, 36 * H))
    rule = kind.removeprefix("rule:")
    if rule == "reviewed_after_detected":
        if row["reviewed_at"] is None:
            return None
        return {"reviewed_at": row["detected_at"] - shift}
    if rule == "reviewed_iff_not_pending":
        if row["review_status"] == "pending":
            return {"review_status": "confirmed"}
        return {"reviewed_at": None}
    if rule == "acknowledged_after_received":
        return {"acknowledged_at": row["received_at"] - shift}
    if rule == "resolved_after_received":
        if row["resolved_at"] is None:
            return None
        return {"resolved_at": row["received_at"] - shift}
    if rule == "resolved_iff_not_pending":
        if row["resolution"] == "pending":
            return {"resolution": "actioned"}
        return {"resolved_at": None}
    if rule == "actioned_after_detected":
        return {"detected_at": row["actioned_at"] + shift}
    if rule == "actioned_after_posted":
        if row["action_type"] == "upload_blocked":
            return None
        return {"posted_at": row["actioned_at"] + shift}
    if rule == "upload_blocked_never_posted":
        if row["action_type"] != "upload_blocked":
            return None
        return {"posted_at": row["actioned_at"] - shift}
    if rule == "content_action_has_content_id":
        if row["action_type"] not in CONTENT_ACTIONS:
            return None
        return {"content_id": None}
    if rule == "confirmed_after_opened":
        return {"confirmed_at": row["opened_at"] - shift}
    if rule == "referred_after_opened":
        if row["referred_at"] is None:
            return None
        return {"referred_at": row["opened_at"] - shift}
    if rule == "accepted_after_referred":
        if row["referred_at"] is None:
            return None
        return {"authority_accepted_at": row["referred_at"] - shift}
    if rule == "referred_when_outcome_requires":
        if row["outcome"] in REQUIRES_REFERRAL:
            return {"referred_at": None, "authority_accepted_at": None}
        if row["referred_at"] is None and row["authority_accepted_at"] is None:
            return {"outcome": "referred"}
        return None
    raise ValueError(kind)


RULES = {
    HITS.name: ("reviewed_after_detected", "reviewed_iff_not_pending"),
    REPORTS.name: (
        "acknowledged_after_received",
        "resolved_after_received",
        "resolved_iff_not_pending",
    ),
    ACTIONS.name: (
        "actioned_after_detected",
        "actioned_after_posted",
        "upload_blocked_never_posted",
        "content_action_has_content_id",
    ),
    CASES.name: (
        "confirmed_after_opened",
        "referred_after_opened",
        "accepted_after_referred",
        "referred_when_outcome_requires",
    ),
}
COMMON_KINDS = (
    "missing_required",
    "unknown_enum",
    "unknown_category",
    "unparsable_timestamp",
    "timestamp_without_offset",
)
FEED_KINDS = {
    HITS.name: ("score_out_of_range", "score_not_numeric"),
    REPORTS.name: (),
    ACTIONS.name: (),
    CASES.name: ("victims_count_negative", "victims_count_not_integer"),
}
TEXT_KINDS = frozenset(
    {
        "unparsable_timestamp",
        "timestamp_without_offset",
        "score_not_numeric",
        "victims_count_not_integer",
    }
)
CSV_ONLY = frozenset({"score_not_numeric", "victims_count_not_integer"})


def kinds_for(feed: Feed) -> list[str]:
    return [*COMMON_KINDS, *FEED_KINDS[feed.name], *(f"rule:{r}" for r in RULES[feed.name])]


class KindCycler:
    """Hands out defect kinds least-recently-used first, so every kind shows up early even
    when there are only a few bad rows, and the mix stays even after that."""

    def __init__(self, feed: Feed, rng: np.random.Generator) -> None:
        kinds = kinds_for(feed)
        self.order = [kinds[i] for i in rng.permutation(len(kinds))]
        self.unseen = set(kinds)

    def take(self, usable: Callable[[str], bool]) -> str | None:
        for i, kind in enumerate(self.order):
            if usable(kind):
                self.order.append(self.order.pop(i))
                self.unseen.discard(kind)
                return kind
        return None


def plan(
    rows: pl.DataFrame,
    feed: Feed,
    fmt: str,
    share: float,
    cycler: KindCycler,
    rng: np.random.Generator,
    force_coverage: bool = True,
) -> tuple[dict[str, tuple[list[int], list[object]]], list[tuple[int, str, str]], list[Defect]]:
    """Choose bad rows and their typed mutations (applied before formatting) and text
    mutations (applied to the printed file)."""
    if share <= 0 or rows.height == 0:
        return {}, [], []
    n_bad = int(rng.binomial(rows.height, share))
    if force_coverage and cycler.unseen:
        # Until every kind has appeared once, each file carries at least one bad row: a
        # small run still shows the whole catalogue.
        n_bad = max(n_bad, 1)
    candidates = np.flatnonzero(~rows["_protect"].to_numpy())
    if candidates.size == 0:
        return {}, [], []
    chosen = np.sort(rng.choice(candidates, size=min(n_bad, candidates.size), replace=False))
    typed: dict[str, tuple[list[int], list[object]]] = {}
    text: list[tuple[int, str, str]] = []
    defects: list[Defect] = []
    for index in chosen.tolist():
        row = rows.row(index, named=True)
        mutation: dict = {}

        def usable(kind: str, row: Row = row, mutation: dict = mutation) -> bool:
            if kind in CSV_ONLY and fmt != "csv":
                return False
            found = _mutation(feed, kind, row, rng)
            if found is None:
                return False
            mutation.clear()
            mutation.update(found)
            return True

        kind = cycler.take(usable)
        if kind is None:
            continue
        field = mutation.pop("__field__")
        if kind in TEXT_KINDS:
            text.append((index, field, mutation.pop("__text__")))
        for name, value in mutation.items():
            typed.setdefault(name, ([], []))
            typed[name][0].append(index)
            typed[name][1].append(value)
        defects.append(Defect(index, kind, field))
    return typed, text, defects


def _mutation(feed: Feed, kind: str, row: Row, rng: np.random.Generator) -> dict | None:
    """{field: typed value, '__field__': reported field, '__text__': text variant} or None."""
    if kind.startswith("rule:"):
        found = _rule_mutation(feed, kind, row, rng)
        if found is None:
            return None
        return {**found, "__field__": ",".join(sorted(found))}
    if kind == "missing_required":
        field = str(rng.choice(MISSING_FIELDS[feed.name]))
        return {field: None, "__field__": field}
    if kind == "unknown_enum":
        fields = _enum_fields(feed, row)
        if not fields:
            return None
        field = str(rng.choice(fields))
        bad = str(rng.choice(BAD_ENUM_VALUES[field]))
        if field == "support_types":
            return {field: [*row[field], bad], "__field__": field}
        return {field: bad, "__field__": field}
    if kind == "unknown_category":
        return {"category_code": str(rng.choice(BAD_CATEGORIES)), "__field__": "category_code"}
    if kind in ("unparsable_timestamp", "timestamp_without_offset"):
        fields = [f for f in TEXT_TIMESTAMP_FIELDS[feed.name] if row[f] is not None]
        field = str(rng.choice(fields))
        return {"__field__": field, "__text__": kind}
    if kind == "score_out_of_range":
        score = row["score"]
        # A percentage where a fraction belongs, or a negative calibration artefact.
        value = round(score * 100, 2) if score is not None and score > 0.02 else -0.2
        return {"score": value, "__field__": "score"}
    if kind == "score_not_numeric":
        value = "high" if row["score"] is None else f"{row['score']:.2f}".replace(".", ",")
        return {"__field__": "score", "__text__": value}
    if kind == "victims_count_negative":
        return {"victims_count": -int(rng.integers(1, 3)), "__field__": "victims_count"}
    if kind == "victims_count_not_integer":
        return {"__field__": "victims_count", "__text__": str(rng.choice(["2.5", "two", "3+"]))}
    raise ValueError(kind)


def expected_reason(defect: Defect) -> str:
    """The reason code an ingestion gate that follows the contract gives this row
    (`<kind>:<field or rule id>`, as in ocse/ingest/validation.py)."""
    kind, field = defect.kind, defect.field
    if kind.startswith("rule:"):
        return kind
    code = {
        "missing_required": "missing_required",
        "unknown_enum": "unknown_code",
        "unknown_category": "unknown_code",
        "unparsable_timestamp": "invalid_timestamp",
        "timestamp_without_offset": "timestamp_without_offset",
        "score_out_of_range": "out_of_range",
        "score_not_numeric": "invalid_number",
        "victims_count_negative": "out_of_range",
        "victims_count_not_integer": "invalid_integer",
    }[kind]
    return f"{code}:{field}"


def apply_typed(rows: pl.DataFrame, typed: dict[str, tuple[list[int], list[object]]]):
    for name, (index, values) in typed.items():
        column = rows[name].clone()
        if isinstance(column.dtype, pl.List):
            # scatter does not take lists; list columns (support_types) are small.
            items = column.to_list()
            for i, value in zip(index, values, strict=True):
                items[i] = value
            column = pl.Series(name, items, dtype=column.dtype)
        elif all(v is None for v in values):
            column = column.scatter(index, None)
        else:
            column = column.scatter(index, pl.Series(values, dtype=column.dtype))
        rows = rows.with_columns(column)
    return rows


def _broken_timestamp(value: str, rng: np.random.Generator) -> str:
    """Timestamps that no ISO-8601 parser accepts, in the shapes hand-edited exports take."""
    date, _, clock = value.partition("T")
    year, month, day = date.split("-")
    return str(
        rng.choice(
            [
                f"{day}/{month}/{year} {clock[:5]}",
                f"{year}-02-30T25:61:00Z",
                f"{year}年{int(month)}月{int(day)}日 {clock[:5]}",
                "yesterday",
            ]
        )
    )


def apply_text(
    frame: pl.DataFrame, text: list[tuple[int, str, str]], rng: np.random.Generator
) -> pl.DataFrame:
    """Text defects on the printed (all-string) CSV frame or typed JSON/Parquet frame."""
    by_field: dict[str, tuple[list[int], list[str]]] = {}
    for index, field, what in text:
        current = frame[field][index]
        if what == "timestamp_without_offset":
            value = (
                current.removesuffix("Z")[:-6]
                if current.endswith("+08:00")
                else (current.removesuffix("Z"))
            )
        elif what == "unparsable_timestamp":
            value = _broken_timestamp(current, rng)
        else:
            value = what
        by_field.setdefault(field, ([], []))
        by_field[field][0].append(index)
        by_field[field][1].append(value)
    for field, (index, values) in by_field.items():
        column = frame[field]
        if column.dtype != pl.String:
            column = column.cast(pl.String)
        frame = frame.with_columns(column.scatter(index, pl.Series(values, dtype=pl.String)))
    return frame
