"""Small hand-made feed rows for tests: one valid row per feed, and writers for each format."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ocse.contracts import load_contract

TEST_KEY = "test-pseudonym-key-0123456789"

VALID_ROWS: dict[str, dict[str, str | None]] = {
    "screening_hits": {
        "hit_id": "hit-1",
        "content_id": "cnt-1",
        "content_type": "image",
        "uploader_id": "acct-00000000a1",
        "posted_at": "2025-03-01T09:00:00Z",
        "detected_at": "2025-03-01T09:10:00Z",
        "detection_method": "hash_match",
        "matched_list": "csam-hashes-2025-03",
        "score": "0.99",
        "category_code": "csam_possession",
        "review_status": "confirmed",
        "reviewed_at": "2025-03-01T17:20:00+08:00",
        "reviewer_id": "mod-0000000b",
        "updated_at": "2025-03-01T09:20:00Z",
    },
    "reports": {
        "report_id": "rpt-1",
        "received_at": "2025-03-01T09:00:00Z",
        "channel": "in_app",
        "reporter_type": "guardian",
        "reporter_id": "acct-00000000c1",
        "content_id": "cnt-1",
        "reported_user_id": "acct-00000000a1",
        "category_code": "grooming",
        "acknowledged_at": "2025-03-01T10:00:00Z",
        "resolved_at": "2025-03-02T09:00:00Z",
        "resolution": "actioned",
        "feedback_sent_at": "2025-03-02T10:00:00Z",
        "updated_at": "2025-03-02T10:00:00Z",
    },
    "enforcement_actions": {
        "action_id": "act-1",
        "content_id": "cnt-1",
        "user_id": "acct-00000000a1",
        "category_code": "csam_possession",
        "action_type": "content_removed",
        "trigger": "proactive",
        "hit_id": "hit-1",
        "report_id": None,
        "posted_at": "2025-03-01T09:00:00Z",
        "detected_at": "2025-03-01T09:10:00Z",
        "actioned_at": "2025-03-01T09:30:00Z",
        "evidence_preserved_at": "2025-03-01T09:25:00Z",
        "evidence_ref": "ev-1",
        "reversed_at": None,
        "updated_at": "2025-03-01T09:30:00Z",
    },
    "cases": {
        "case_id": "case-1",
        "opened_at": "2025-03-01T10:00:00Z",
        "category_code": "sextortion",
        "subject_user_id": "acct-00000000a1",
        "action_id": "act-1",
        "victims_count": "1",
        "youngest_victim_age_band": "10_13",
        "confirmed_at": "2025-03-01T12:00:00Z",
        "referred_at": "2025-03-01T20:00:00Z",
        "authority_type": "public_security",
        "authority_accepted_at": "2025-03-03T09:00:00Z",
        "outcome": "under_investigation",
        "victim_support": "accepted",
        "support_types": "psychological|legal",
        "closed_at": None,
        "updated_at": "2025-03-03T09:00:00Z",
    },
}


def row(feed: str, **changes: str | None) -> dict[str, str | None]:
    return {**VALID_ROWS[feed], **changes}


def write_csv(path: Path, rows: list[dict], columns: list[str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = columns or list(rows[0])
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for r in rows:
            writer.writerow(["" if r.get(c) is None else r.get(c) for c in columns])
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for r in rows:
            obj = {k: v for k, v in r.items() if v is not None}
            if "support_types" in obj:
                obj["support_types"] = obj["support_types"].split("|")
            fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {c: [r.get(c) for r in rows] for c in rows[0]}
    if "support_types" in columns:
        columns["support_types"] = [v.split("|") if v else None for v in columns["support_types"]]
    pq.write_table(pa.table(columns), path)
    return path


def contract_fields(feed: str) -> list[str]:
    return load_contract(feed).names
