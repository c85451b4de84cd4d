"""The daily digest for the leadership body: the previous local day's breaches, those that
closed, those still open, and takedown compliance, as one alert to the digest channels.
Alerts come from the alert store; the marts from the serving snapshot (the published
figures, readable while a pipeline run holds the warehouse)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import duckdb

from ocse.alerts.config import AlertingConfig
from ocse.alerts.rules import AlertCandidate
from ocse.alerts.store import AlertStore, ts


def digest_alert(
    store: AlertStore,
    conn: duckdb.DuckDBPyConnection,
    config: AlertingConfig,
    day: date,
    tz: str,
) -> AlertCandidate:
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time(0), zone)
    end = start + timedelta(days=1)
    raised = dict(
        store.rows(
            "select alert_type, count(*) from outbox where status = 'breach' "
            "and raised_at >= ? and raised_at < ? group by 1",
            (ts(start), ts(end)),
        )
    )
    closed = dict(
        store.rows(
            "select alert_type, count(*) from outbox where status = 'breach' "
            "and resolved_at >= ? and resolved_at < ? group by 1",
            (ts(start), ts(end)),
        )
    )
    still_open = dict(
        conn.execute(
            "select clock, count(*) from marts.fct_open_sla_breaches where status = 'breach' "
            "group by 1"
        ).fetchall()
    )
    takedowns, within = conn.execute(
        "select coalesce(sum(takedowns), 0), coalesce(sum(within_sla), 0) "
        "from marts.rpt_takedown_sla_daily where report_date = ?",
        [day],
    ).fetchone()
    (failed,) = store.rows("select count(*) from deliveries where state = 'failed'")[0]
    clocks = ("takedown", "report_acknowledgement", "report_resolution", "referral")
    lines = [
        f"Takedowns on {day}: {takedowns:,}, {within / takedowns:.1%} within SLA"
        if takedowns
        else f"Takedowns on {day}: none",
    ]
    for clock in clocks:
        lines.append(
            f"{clock}: {raised.get(clock, 0)} new breaches, {closed.get(clock, 0)} closed, "
            f"{still_open.get(clock, 0)} open now"
        )
    if failed:
        lines.append(
            f"Alert deliveries failed for good: {failed} (see the operations queue; "
            "`ocse alerts retry --failed` re-queues them)"
        )
    total_new = sum(raised.get(c, 0) for c in clocks)
    return AlertCandidate(
        alert_key=f"digest:{day.isoformat()}",
        episode_key=f"digest:{day.isoformat()}",
        alert_type="digest",
        status="event",
        severity="info",
        subject_id=day.isoformat(),
        category_code=None,
        title=f"Daily SLA digest for {day}: {total_new} new breaches",
        facts={
            "day": day.isoformat(),
            "lines": lines,
            "link": f"{config.dashboard_url}/operations_queue",
        },
        is_state=False,
    )
