"""Cut whole record lives into the versions upstream delivers.

A record gets a version at each of its event times (a hit when detected and when reviewed, a
report when received, acknowledged, resolved and answered, ...). Every version is a full row
showing what was known at that moment: an event after the version's `updated_at` is masked
to null and the status fields are derived from what is visible. That is how a report arrives
as `pending`, then acknowledged, then `actioned` with feedback.
"""

from __future__ import annotations

import polars as pl

from sample_data.schema import ACTIONS, CASES, HITS, REPORTS, Feed

U = pl.col("_u")


def _seen(column: str) -> pl.Expr:
    return pl.when(pl.col(column) <= U).then(pl.col(column))


def _is_seen(column: str) -> pl.Expr:
    return pl.col(column).is_not_null() & (pl.col(column) <= U)


# (event columns, creation column, expressions giving the feed's fields at version time _u)
_VERSIONING: dict[str, tuple[list[str], str, list[pl.Expr]]] = {
    HITS.name: (
        ["detected_at", "posted_at", "reviewed_at"],
        "detected_at",
        [
            _seen("posted_at").alias("posted_at"),
            pl.when(_is_seen("reviewed_at"))
            .then(pl.col("final_status"))
            .otherwise(pl.lit("pending"))
            .alias("review_status"),
            _seen("reviewed_at").alias("reviewed_at"),
            pl.when(_is_seen("reviewed_at")).then(pl.col("reviewer_id")).alias("reviewer_id"),
        ],
    ),
    REPORTS.name: (
        ["received_at", "acknowledged_at", "resolved_at", "feedback_sent_at"],
        "received_at",
        [
            _seen("acknowledged_at").alias("acknowledged_at"),
            _seen("resolved_at").alias("resolved_at"),
            pl.when(_is_seen("resolved_at"))
            .then(pl.col("final_resolution"))
            .otherwise(pl.lit("pending"))
            .alias("resolution"),
            _seen("feedback_sent_at").alias("feedback_sent_at"),
        ],
    ),
    ACTIONS.name: (
        ["actioned_at", "evidence_preserved_at", "reversed_at"],
        "actioned_at",
        [
            _seen("evidence_preserved_at").alias("evidence_preserved_at"),
            pl.when(_is_seen("evidence_preserved_at"))
            .then(pl.col("evidence_ref"))
            .alias("evidence_ref"),
            _seen("reversed_at").alias("reversed_at"),
        ],
    ),
    CASES.name: (
        [
            "opened_at",
            "confirmed_at",
            "referred_at",
            "authority_accepted_at",
            "support_offered_at",
            "support_answered_at",
            "prosecuted_at",
            "terminal_at",
        ],
        "opened_at",
        [
            pl.when(_is_seen("confirmed_at"))
            .then(pl.col("victims_final"))
            .otherwise(pl.col("victims_open"))
            .alias("victims_count"),
            _seen("confirmed_at").alias("confirmed_at"),
            _seen("referred_at").alias("referred_at"),
            pl.when(_is_seen("referred_at")).then(pl.col("authority_type")).alias("authority_type"),
            _seen("authority_accepted_at").alias("authority_accepted_at"),
            pl.when(_is_seen("terminal_at"))
            .then(pl.col("terminal_outcome"))
            .when(_is_seen("prosecuted_at"))
            .then(pl.lit("prosecuted"))
            .when(_is_seen("authority_accepted_at"))
            .then(pl.lit("under_investigation"))
            .when(_is_seen("referred_at"))
            .then(pl.lit("referred"))
            .otherwise(pl.lit("open"))
            .alias("outcome"),
            pl.when(_is_seen("support_offered_at"))
            .then(pl.col("support_types"))
            .alias("support_types"),
            _seen("terminal_at").alias("closed_at"),
        ],
    ),
}


def explode(records: pl.DataFrame, feed: Feed) -> pl.DataFrame:
    """All versions of the records: the feed's fields in contract order, plus `_protect`."""
    if records.width == 0:
        return pl.DataFrame()
    events, created, expressions = _VERSIONING[feed.name]
    versions = (
        records.with_columns(_u=pl.concat_list(events))
        .explode("_u")
        .filter(U.is_not_null() & (pl.col(created) <= U))
        .unique([feed.key, "_u"], maintain_order=True)
        .with_columns(expressions)
        .with_columns(updated_at=U)
    )
    if feed is CASES:
        # Age band of the youngest victim is only known once there is a known victim, and
        # support questions only arise then.
        versions = versions.with_columns(
            youngest_victim_age_band=pl.when(pl.col("victims_count") > 0).then(pl.col("age_band")),
            victim_support=pl.when(pl.col("victims_count") == 0)
            .then(pl.lit("not_applicable"))
            .when(_is_seen("support_answered_at"))
            .then(pl.col("support_final"))
            .when(_is_seen("support_offered_at"))
            .then(pl.lit("offered"))
            .otherwise(pl.lit("not_offered")),
        )
    return versions.select([*feed.fields, "_protect"])
