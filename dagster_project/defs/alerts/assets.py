"""Alerts: raised into the outbox as soon as the open SLA clocks are built and tested, then
delivered. Part of every pipeline run (the landing sensor's and the schedule's), so a breach
in a new file is alerted on in the same run that loads it, before the rest of the marts are
built (dagster_project/defs/dbt/assets.py, ALERT_PATH_SELECT)."""

from datetime import UTC, datetime

import dagster as dg

from dagster_project.defs.alerts.resources import alerting_config
from dagster_project.defs.resources import WarehouseResource
from ocse.alerts.deliver import deliver_due
from ocse.alerts.outbox import ensure_alert_schema, raise_alerts
from ocse.alerts.rules import clock_alerts, health_alerts

# The in-process executor runs the ready step of highest priority first: the alerts go out
# before the second dbt build (the marts that alerts do not read), which is ready as soon as
# the alert path is built.
ALERTS_FIRST = {"dagster/priority": "10"}

STATE_TYPES = (
    "takedown",
    "report_acknowledgement",
    "report_resolution",
    "referral",
    "feed_silent",
)


@dg.asset(
    key=dg.AssetKey(["alerts", "outbox"]),
    deps=[
        dg.AssetKey(["marts", "fct_open_sla_breaches"]),
        dg.AssetKey(["marts", "dim_categories"]),
        dg.AssetKey(["ingest", "ledger"]),
    ],
    group_name="alerts",
    kinds={"duckdb"},
    op_tags=ALERTS_FIRST,
)
def alert_outbox(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """SLA clocks nearing or past their deadline (CSAM takedowns first and loudest), feeds
    gone silent, rejected files and quarantine spikes, recorded once per dedupe key: one
    alert when a clock turns near-breach, one when it turns breach, none again. Clocks no
    longer running are recorded as resolved."""
    config = alerting_config()
    conn = warehouse.connect()
    try:
        ensure_alert_schema(conn)
        candidates = clock_alerts(conn, config) + health_alerts(
            conn, config, warehouse.as_of(context)
        )
        result = raise_alerts(
            conn, candidates, config, datetime.now(UTC), resolve_missing_types=STATE_TYPES
        )
        (open_alerts,) = conn.execute(
            "select count(*) from alerts.outbox where is_state and resolved_at is null"
        ).fetchone()
    finally:
        conn.close()
    context.log.info(
        f"Alerts: {len(result.raised)} raised ({result.deliveries} deliveries queued), "
        f"{len(result.resolved)} resolved, {open_alerts} open"
    )
    return dg.MaterializeResult(
        metadata={
            "raised": len(result.raised),
            "resolved": len(result.resolved),
            "open": open_alerts,
            "deliveries_queued": result.deliveries,
        }
    )


def deliver(context, warehouse: WarehouseResource) -> dict[str, int]:
    conn = warehouse.connect()
    try:
        ensure_alert_schema(conn)
        outcome = deliver_due(
            conn, alerting_config(), now=lambda: datetime.now(UTC), log=context.log.warning
        )
        (failed,) = conn.execute(
            "select count(*) from alerts.deliveries where state = 'failed'"
        ).fetchone()
    finally:
        conn.close()
    summary = {
        **{k: outcome.get(k, 0) for k in ("delivered", "retry_later", "failed")},
        "failed_total": failed,
    }
    context.log.info(
        f"Alert deliveries: {summary['delivered']} delivered, {summary['retry_later']} to "
        f"retry, {summary['failed']} failed now ({failed} failed in all)"
    )
    return summary


@dg.asset(
    key=dg.AssetKey(["alerts", "deliveries"]),
    deps=[dg.AssetKey(["alerts", "outbox"])],
    group_name="alerts",
    kinds={"duckdb"},
    op_tags=ALERTS_FIRST,
)
def alert_deliveries(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Every alert delivery that is due, sent to its webhook or e-mail channel, most severe
    first; failures wait with exponential backoff, and are marked failed (never dropped)
    after the configured number of attempts."""
    return dg.MaterializeResult(metadata=deliver(context, warehouse))
