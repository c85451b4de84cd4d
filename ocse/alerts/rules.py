"""What is alert-worthy at T, read from the marts the run has just built. Each candidate has a
dedupe key, its identity: one alert per clock when it turns near-breach, one more when it
turns breach, none again later (ocse/alerts/outbox.py keeps the keys for good).

A clock is identified by its subject and its start (metrics.md: the content's earliest
`posted_at`, the report's `received_at`, the case's `confirmed_at`): a clock that stops and
runs again with the same start (a takedown reversed, an acknowledgement corrected away, a
backfill that saw it before it started) is the same clock and raises nothing new; a clock
whose start changed is a new clock."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import duckdb

from ocse.alerts.config import SEVERITIES, AlertingConfig

CLOCK_WORDS = {
    "takedown": ("still visible", "takedown"),
    "report_acknowledgement": ("not acknowledged", "report acknowledgement"),
    "report_resolution": ("not resolved", "report resolution"),
    "referral": ("not referred to the authority", "referral"),
}


@dataclass(frozen=True)
class AlertCandidate:
    alert_key: str  # dedupe key: <type>:<subject>:<status>
    episode_key: str  # the state it belongs to (<type>:<subject>); resolves as a whole
    alert_type: str
    status: str
    severity: str
    subject_id: str
    category_code: str | None
    title: str
    facts: dict = field(default_factory=dict)
    is_state: bool = True  # a state resolves when it stops holding; an event does not
    # when the clock crossed the threshold of its status (75 % of its target, its deadline):
    # the backlog rule compares it with T (AlertingConfig.backlog)
    transition_at: datetime | None = None

    @property
    def severity_rank(self) -> int:
        return SEVERITIES.index(self.severity)


def clock_severity(clock: str, status: str, is_csam: bool) -> str:
    if clock == "takedown" and is_csam:
        return "critical" if status == "breach" else "high"
    if clock == "referral" or status == "breach":
        return "high"
    return "warning"


def clock_alerts(conn: duckdb.DuckDBPyConnection, config: AlertingConfig) -> list[AlertCandidate]:
    rows = conn.execute(
        """
        select b.clock, b.subject_id, b.category_code, b.status, b.elapsed_minutes,
            b.target_minutes, b.clock_started_at, b.deadline_at, b.as_of, b.policy_version,
            coalesce(c.is_csam, false), coalesce(c.label_en, b.category_code),
            coalesce(c.label_zh, b.category_code),
            case when b.status = 'breach' then b.deadline_at
                else b.clock_started_at
                    + to_microseconds((b.target_minutes * 60e6 * p.near_breach_share)::bigint)
            end as transition_at
        from marts.fct_open_sla_breaches b
        left join marts.dim_categories c using (category_code)
        left join marts.dim_policy_versions p using (policy_version)
        """
    ).fetchall()
    out = []
    for (
        clock,
        subject,
        category,
        status,
        elapsed,
        target,
        started,
        deadline,
        as_of,
        version,
        is_csam,
        label_en,
        label_zh,
        transition_at,
    ) in rows:
        words, clock_name = CLOCK_WORDS[clock]
        what = "CSAM" if (clock == "takedown" and is_csam) else label_en
        state = "past its deadline" if status == "breach" else "nearing its deadline"
        title = (
            f"{what} {words}, {state}: {elapsed:,.0f} of {target:,} min ({clock_name} {subject})"
        )
        episode = f"{clock}:{subject}:{started.astimezone(UTC):%Y%m%dT%H%M%SZ}"
        out.append(
            AlertCandidate(
                alert_key=f"{episode}:{status}",
                episode_key=episode,
                alert_type=clock,
                status=status,
                severity=clock_severity(clock, status, is_csam),
                subject_id=subject,
                category_code=category,
                title=title,
                transition_at=transition_at or deadline,
                facts={
                    "clock": clock,
                    "category_label_en": label_en,
                    "category_label_zh": label_zh,
                    "is_csam": is_csam,
                    "elapsed_minutes": round(elapsed, 1),
                    "target_minutes": target,
                    "clock_started_at": started.isoformat(),
                    "deadline_at": deadline.isoformat(),
                    "as_of": as_of.isoformat(),
                    "policy_version": version,
                    "link": f"{config.dashboard_url}/operations_queue"
                    f"?clock={clock}&subject={subject}",
                },
            )
        )
    return out


def health_alerts(
    conn: duckdb.DuckDBPyConnection, config: AlertingConfig, now: datetime
) -> list[AlertCandidate]:
    """Feeds gone silent (dead man's switch), rejected files and quarantine spikes in the
    last 24 hours, from the ingestion ledger."""
    out = []
    last = dict(
        (feed, (file_id, received))
        for feed, file_id, received in conn.execute(
            "select feed, max(file_id), max(received_at) from ingest.ledger group by feed"
        ).fetchall()
    )
    link = f"{config.dashboard_url}/pipeline_health"
    for feed, minutes in config.thresholds.feed_silence_minutes.items():
        file_id, received = last.get(feed, (None, None))
        if received is not None and now - received <= timedelta(minutes=minutes):
            continue
        silent_for = (
            "never delivered"
            if received is None
            else (f"silent for {(now - received).total_seconds() / 60:,.0f} min")
        )
        out.append(
            AlertCandidate(
                alert_key=f"feed_silent:{feed}:{file_id if file_id is not None else 'none'}",
                episode_key=f"feed_silent:{feed}",
                alert_type="feed_silent",
                status="open",
                severity="high",
                subject_id=feed,
                category_code=None,
                title=f"Feed {feed} {silent_for} (limit {minutes} min)",
                facts={
                    "feed": feed,
                    "last_file_received_at": received.isoformat() if received else None,
                    "limit_minutes": minutes,
                    "link": link,
                },
            )
        )
    recent = conn.execute(
        """
        select file_id, file_name, feed, outcome, rows_read, rows_quarantined, error
        from ingest.ledger
        where ingested_at >= ?::timestamptz - interval 24 hour
            and (outcome = 'rejected'
                 or (rows_quarantined >= ? and rows_quarantined >= ? * rows_read))
        order by file_id
        """,
        [
            now,
            config.thresholds.quarantine_spike_min_rows,
            config.thresholds.quarantine_spike_share,
        ],
    ).fetchall()
    for file_id, name, feed, outcome, read, quarantined, error in recent:
        if outcome == "rejected":
            code = (error or "rejected").split(":", 1)[0]
            key, alert_type, severity = f"file_rejected:{file_id}", "file_rejected", "warning"
            title = f"File rejected ({code}): {name}"
        else:
            key, alert_type, severity = f"quarantine_spike:{file_id}", "quarantine_spike", "warning"
            title = f"{quarantined:,} of {read:,} rows quarantined: {name}"
        out.append(
            AlertCandidate(
                alert_key=key,
                episode_key=key,
                alert_type=alert_type,
                status="event",
                severity=severity,
                subject_id=name,
                category_code=None,
                title=title,
                facts={
                    "feed": feed,
                    "file_name": name,
                    "rows_read": read,
                    "rows_quarantined": quarantined,
                    "error_code": (error or "").split(":", 1)[0] or None,
                    "link": link,
                },
                is_state=False,
            )
        )
    return out


def pipeline_failed_alert(
    run_id: str, job_name: str, failed_at: datetime, message: str, config: AlertingConfig
) -> AlertCandidate:
    # Only the step name and Dagster's own summary: a failure message may quote data.
    first_line = (message or "failed").splitlines()[0][:200]
    return AlertCandidate(
        alert_key=f"pipeline_failed:{run_id}",
        episode_key=f"pipeline_failed:{run_id}",
        alert_type="pipeline_failed",
        status="event",
        severity="critical",
        subject_id=run_id,
        category_code=None,
        title=f"Pipeline run {run_id[:8]} of {job_name} failed; "
        "the last good snapshot is still served",
        facts={
            "run_id": run_id,
            "job": job_name,
            "failed_at": failed_at.isoformat(),
            "summary": first_line,
            "link": f"{config.dashboard_url}/pipeline_health",
        },
        is_state=False,
    )


def facts_json(candidate: AlertCandidate) -> str:
    return json.dumps(candidate.facts, sort_keys=True, ensure_ascii=False)
