"""The live edge: hand-placed records so the operations queue is never empty at the end.

Random volumes alone may or may not leave a CSAM item at 50-59 minutes without takedown when
the data ends; the demo must show one. These records are placed relative to the end time T
(with a little jitter from the seed): near-breaches and breaches on every clock of
`fct_open_sla_breaches`, each cleared by a later version after T that `--follow` delivers.
They are marked `_protect` so that no deliberate defect lands on them.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from sample_data.ids import IdMaker
from sample_data.simulate import Counters, Population, Records

M, H = 60, 3600


def _ids(ids: IdMaker, counters: Counters, kind: str, n: int) -> list[str]:
    return ids.make(kind, counters.take(kind, n)).to_list()


def _frame(rows: list[dict], columns: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=columns, orient="row") if rows else pl.DataFrame()


HIT_COLUMNS = {
    "hit_id": pl.String,
    "content_id": pl.String,
    "content_type": pl.String,
    "uploader_id": pl.String,
    "posted_at": pl.Int64,
    "detected_at": pl.Int64,
    "detection_method": pl.String,
    "matched_list": pl.String,
    "score": pl.Float64,
    "category_code": pl.String,
    "final_status": pl.String,
    "reviewed_at": pl.Int64,
    "reviewer_id": pl.String,
    "_protect": pl.Boolean,
}
ACTION_COLUMNS = {
    "action_id": pl.String,
    "content_id": pl.String,
    "user_id": pl.String,
    "category_code": pl.String,
    "action_type": pl.String,
    "trigger": pl.String,
    "hit_id": pl.String,
    "report_id": pl.String,
    "posted_at": pl.Int64,
    "detected_at": pl.Int64,
    "actioned_at": pl.Int64,
    "evidence_preserved_at": pl.Int64,
    "evidence_ref": pl.String,
    "reversed_at": pl.Int64,
    "_protect": pl.Boolean,
}
REPORT_COLUMNS = {
    "report_id": pl.String,
    "received_at": pl.Int64,
    "channel": pl.String,
    "reporter_type": pl.String,
    "reporter_id": pl.String,
    "content_id": pl.String,
    "reported_user_id": pl.String,
    "category_code": pl.String,
    "acknowledged_at": pl.Int64,
    "resolved_at": pl.Int64,
    "final_resolution": pl.String,
    "feedback_sent_at": pl.Int64,
    "_protect": pl.Boolean,
}
CASE_COLUMNS = {
    "case_id": pl.String,
    "opened_at": pl.Int64,
    "category_code": pl.String,
    "subject_user_id": pl.String,
    "action_id": pl.String,
    "victims_open": pl.Int64,
    "victims_final": pl.Int64,
    "age_band": pl.String,
    "confirmed_at": pl.Int64,
    "referred_at": pl.Int64,
    "authority_type": pl.String,
    "authority_accepted_at": pl.Int64,
    "prosecuted_at": pl.Int64,
    "terminal_at": pl.Int64,
    "terminal_outcome": pl.String,
    "support_final": pl.String,
    "support_offered_at": pl.Int64,
    "support_answered_at": pl.Int64,
    "support_types": pl.List(pl.String),
    "_protect": pl.Boolean,
}


class _Builder:
    def __init__(
        self, rng: np.random.Generator, ids: IdMaker, counters: Counters, pop: Population
    ) -> None:
        self.rng, self.ids, self.counters, self.pop = rng, ids, counters, pop
        self.hits: list[dict] = []
        self.actions: list[dict] = []
        self.reports: list[dict] = []
        self.cases: list[dict] = []

    def account(self, repeat: bool = False) -> str:
        idx = self.pop.offenders(self.rng, 1) if repeat else self.pop.fresh(self.rng, 1)
        return self.ids.accounts(idx)[0]

    def moderator(self) -> str:
        return self.ids.make("mod", self.pop.moderators(self.rng, 1))[0]

    def content(
        self,
        *,
        category: str,
        ctype: str,
        method: str,
        posted: int,
        detected: int,
        reviewed: int,
        status: str = "confirmed",
        action_type: str | None = None,
        acted: int | None = None,
        repeat: bool = False,
    ) -> dict:
        content_id = _ids(self.ids, self.counters, "cnt", 1)[0]
        uploader = self.account(repeat)
        hit_id = _ids(self.ids, self.counters, "hit", 1)[0]
        score = round(float(self.rng.uniform(0.8, 0.99)), 4) if method == "classifier" else None
        matched = "kw-grooming-v7" if method == "keyword_match" else None
        self.hits.append(
            {
                "hit_id": hit_id,
                "content_id": content_id,
                "content_type": ctype,
                "uploader_id": uploader,
                "posted_at": posted,
                "detected_at": detected,
                "detection_method": method,
                "matched_list": matched,
                "score": score,
                "category_code": category,
                "final_status": status,
                "reviewed_at": reviewed,
                "reviewer_id": self.moderator(),
                "_protect": True,
            }
        )
        if action_type is not None and acted is not None:
            self.action(
                content_id=content_id,
                user_id=uploader,
                category=category,
                action_type=action_type,
                hit_id=hit_id,
                posted=posted,
                detected=detected,
                acted=acted,
            )
        return {"content_id": content_id, "uploader": uploader}

    def action(
        self,
        *,
        content_id: str | None,
        user_id: str,
        category: str,
        action_type: str,
        hit_id: str | None,
        posted: int | None,
        detected: int,
        acted: int,
        trigger: str = "proactive",
        report_id: str | None = None,
    ) -> str:
        action_id = _ids(self.ids, self.counters, "act", 1)[0]
        self.actions.append(
            {
                "action_id": action_id,
                "content_id": content_id,
                "user_id": user_id,
                "category_code": category,
                "action_type": action_type,
                "trigger": trigger,
                "hit_id": hit_id,
                "report_id": report_id,
                "posted_at": posted,
                "detected_at": detected,
                "actioned_at": acted,
                "evidence_preserved_at": acted - int(self.rng.integers(5, 90)),
                "evidence_ref": _ids(self.ids, self.counters, "ev", 1)[0],
                "reversed_at": None,
                "_protect": True,
            }
        )
        return action_id

    def report(
        self,
        *,
        received: int,
        acknowledged: int,
        resolved: int,
        resolution: str,
        category: str,
        content_id: str | None = None,
        reported_user: str | None = None,
    ) -> None:
        self.reports.append(
            {
                "report_id": _ids(self.ids, self.counters, "rpt", 1)[0],
                "received_at": received,
                "channel": "in_app",
                "reporter_type": "guardian",
                "reporter_id": self.account(),
                "content_id": content_id,
                "reported_user_id": reported_user,
                "category_code": category,
                "acknowledged_at": acknowledged,
                "resolved_at": resolved,
                "final_resolution": resolution,
                "feedback_sent_at": resolved + 300,
                "_protect": True,
            }
        )

    def case(
        self,
        *,
        action_id: str,
        user_id: str,
        category: str,
        opened: int,
        confirmed: int,
        referred: int,
    ) -> None:
        self.cases.append(
            {
                "case_id": _ids(self.ids, self.counters, "case", 1)[0],
                "opened_at": opened,
                "category_code": category,
                "subject_user_id": user_id,
                "action_id": action_id,
                "victims_open": 1,
                "victims_final": 1,
                "age_band": "10_13",
                "confirmed_at": confirmed,
                "referred_at": referred,
                "authority_type": "public_security",
                "authority_accepted_at": referred + 3 * 86400,
                "prosecuted_at": None,
                "terminal_at": None,
                "terminal_outcome": "closed_internal",
                "support_final": "accepted",
                "support_offered_at": confirmed + 6 * H,
                "support_answered_at": confirmed + 30 * H,
                "support_types": ["psychological"],
                "_protect": True,
            }
        )

    def records(self) -> Records:
        return Records(
            _frame(self.hits, HIT_COLUMNS),
            _frame(self.reports, REPORT_COLUMNS),
            _frame(self.actions, ACTION_COLUMNS),
            _frame(self.cases, CASE_COLUMNS),
        )


def live_edge(
    rng: np.random.Generator, ids: IdMaker, counters: Counters, pop: Population, end: int
) -> tuple[Records, dict[str, int]]:
    """Open clocks at the end time T, each resolved by a version after T."""
    b = _Builder(rng, ids, counters, pop)

    def ago(minutes: float) -> int:
        return end - int(minutes * M) - int(rng.integers(0, 30))

    def later(minutes: float) -> int:
        return end + int(minutes * M) + int(rng.integers(0, 30))

    # CSAM posted 46-58 minutes ago, still visible: near-breaches of the 60-minute rule.
    for posted_min, review_min, take_min in ((57, None, 6), (52, -20, 15), (47, None, 12)):
        posted = ago(posted_min)
        reviewed = ago(-review_min) if review_min is not None else later(take_min - 2)
        b.content(
            category="csam_production_distribution",
            ctype="image",
            method="classifier",
            posted=posted,
            detected=posted + 120,
            reviewed=reviewed,
            action_type="content_removed",
            acted=later(take_min),
        )
    # CSAM past the hour: breaches.
    posted = ago(95)
    b.content(
        category="csam_possession",
        ctype="video",
        method="human_moderator",
        posted=posted,
        detected=posted + 25 * M,
        reviewed=posted + 30 * M,
        action_type="content_removed",
        acted=later(25),
    )
    posted = ago(180)
    b.content(
        category="csam_production_distribution",
        ctype="livestream",
        method="classifier",
        posted=posted,
        detected=posted + 40 * M,
        reviewed=later(30),
        action_type="transmission_blocked",
        acted=later(32),
        repeat=True,
    )
    # Other categories against their 24-hour target.
    posted = ago(20 * 60)
    groomed = b.content(
        category="grooming",
        ctype="chat_message",
        method="keyword_match",
        posted=posted,
        detected=posted + 60,
        reviewed=later(180),
        action_type="content_removed",
        acted=later(185),
        repeat=True,
    )
    posted = ago(27 * 60)
    b.content(
        category="sextortion",
        ctype="text",
        method="keyword_match",
        posted=posted,
        detected=posted + 60 * M,
        reviewed=ago(120),
        action_type="content_removed",
        acted=later(120),
    )
    # Recent, not yet near anything: the queue also has fresh items.
    posted = ago(30)
    b.content(
        category="online_indecency",
        ctype="livestream",
        method="classifier",
        posted=posted,
        detected=posted + 60,
        reviewed=later(40),
        status="false_positive",
    )

    # Reports: acknowledgement at 19 h, 22 h and 26 h; resolution at 60 h and 80 h.
    b.report(
        received=ago(19 * 60),
        acknowledged=later(120),
        resolved=later(600),
        resolution="actioned",
        category="grooming",
        content_id=groomed["content_id"],
        reported_user=groomed["uploader"],
    )
    b.report(
        received=ago(22 * 60),
        acknowledged=later(30),
        resolved=later(900),
        resolution="no_violation",
        category="sexual_bullying",
    )
    b.report(
        received=ago(26 * 60),
        acknowledged=later(60),
        resolved=later(1200),
        resolution="insufficient_information",
        category="unclassified",
    )
    b.report(
        received=ago(60 * 60),
        acknowledged=ago(58 * 60),
        resolved=later(300),
        resolution="no_violation",
        category="online_indecency",
    )
    b.report(
        received=ago(80 * 60),
        acknowledged=ago(70 * 60),
        resolved=later(180),
        resolution="duplicate",
        category="grooming",
    )
    b.report(
        received=ago(10),
        acknowledged=later(90),
        resolved=later(1440),
        resolution="no_violation",
        category="unclassified",
    )

    # Confirmed cases waiting for referral: 20 h (near) and 30 h (breach) after confirmation.
    for category, confirmed_h in (("sextortion", 20), ("child_prostitution", 30)):
        user = b.account(repeat=True)
        detected = ago((confirmed_h + 12) * 60)
        action_id = b.action(
            content_id=None,
            user_id=user,
            category=category,
            action_type="account_banned",
            hit_id=None,
            posted=None,
            detected=detected,
            acted=detected + 20 * M,
        )
        b.case(
            action_id=action_id,
            user_id=user,
            category=category,
            opened=detected + 2 * H,
            confirmed=ago(confirmed_h * 60),
            referred=later(60 + confirmed_h),
        )
    counts = {"takedown": 8, "report": 6, "referral": 2}
    return b.records(), counts


def slow_takedown(
    rng: np.random.Generator, ids: IdMaker, counters: Counters, pop: Population, a: int, b: int
) -> Records:
    """One CSAM item posted in (a, b] that will be taken down 50-85 minutes later: in follow
    mode it shows up as a near-breach, maybe a breach, then clears."""
    builder = _Builder(rng, ids, counters, pop)
    posted = int(rng.integers(a, b)) + 1
    take = posted + int(rng.integers(50 * M, 85 * M))
    builder.content(
        category="csam_production_distribution",
        ctype="image",
        method="classifier",
        posted=posted,
        detected=posted + int(rng.integers(30, 300)),
        reviewed=take - 60,
        action_type="content_removed",
        acted=take,
    )
    return builder.records()
