"""Alerts: raised into the outbox as soon as the open SLA clocks are built and tested, then
delivered. Part of every pipeline run (the landing sensor's and the schedule's), so a breach
in a new file is alerted on in the same run that loads it, before the rest of the marts are
built (dagster_project/defs/dbt/assets.py, ALERT_PATH_SELECTOR; dbt/selectors.yml)."""

from datetime import UTC, datetime

import dagster as dg

from dagster_project.defs.alerts.resources import alerting_config
from dagster_project.defs.resources import WarehouseResource
from ocse.alerts.deliver import deliver_due
from ocse.alerts.outbox import import_warehouse_outbox, raise_alerts
from ocse.alerts.rules import clock_alerts, health_alerts
from ocse.alerts.store import open_store
from ocse.settings import get_settings

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
        dg.AssetKey(["marts", "dim_policy_versions"]),  # the near-breach share
        dg.AssetKey(["ingest", "ledger"]),
    ],
    group_name="alerts",
    kinds={"duckdb"},
    op_tags=ALERTS_FIRST,
)
def alert_outbox(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """SLA clocks nearing or past their deadline (CSAM takedowns first and loudest), feeds
    gone silent, rejected files and quarantine spikes, recorded in the alert store once per
    identity: one alert when a clock turns near-breach, one when it turns breach, none again,
    whatever runs come after (a rebuild, a backfill). Clocks that crossed long before T go
    out as one backlog digest per channel. A run at a T earlier than the newest one alerts
    were evaluated at (a backfill) raises nothing. Clocks no longer running are resolved."""
    config = alerting_config()
    as_of = warehouse.as_of(context)
    conn = warehouse.connect()
    try:
        with open_store(warehouse.settings.alerts_store) as store:
            imported = import_warehouse_outbox(store, conn)
            if imported:
                context.log.info(f"Imported {imported} alerts from the warehouse's old outbox")
            candidates = clock_alerts(conn, config) + health_alerts(conn, config, as_of)
            result = raise_alerts(
                store,
                candidates,
                config,
                datetime.now(UTC),
                as_of=as_of,
                run_id=context.run.run_id,
                resolve_missing_types=STATE_TYPES,
            )
            (open_alerts,) = store.rows(
                "select count(*) from outbox where is_state = 1 and resolved_at is null"
            )[0]
    finally:
        conn.close()
    if result.mode == "backfill":
        context.log.info(
            f"Backfill at T {as_of.isoformat()}: no alerts raised or resolved (alerts follow "
            f"the newest T, {result.newest_as_of.isoformat()})."
        )
    else:
        context.log.info(
            f"Alerts: {len(result.raised)} raised ({result.deliveries} deliveries queued), "
            f"{len(result.backlog)} backlog in {len(result.digests)} digest(s), "
            f"{len(result.resolved)} resolved, {len(result.reopened)} reopened, "
            f"{open_alerts} open"
        )
    return dg.MaterializeResult(
        metadata={
            "mode": result.mode,
            "raised": len(result.raised),
            "backlog": len(result.backlog),
            "backlog_digests": len(result.digests),
            "resolved": len(result.resolved),
            "reopened": len(result.reopened),
            "open": open_alerts,
            "deliveries_queued": result.deliveries,
        }
    )


def deliver(context) -> dict[str, int]:
    """One delivery round, with a log line per channel that is down; the summary is the
    step's metadata."""
    with open_store(get_settings().alerts_store) as store:
        outcome = deliver_due(
            store,
            alerting_config(),
            now=lambda: datetime.now(UTC),
            run_id=context.run.run_id,
            log=context.log.warning,
        )
        (failed,) = store.rows("select count(*) from deliveries where state = 'failed'")[0]
    summary = {
        **{
            k: outcome.get(k, 0)
            for k in ("delivered", "retry_later", "failed", "waiting", "escalated", "reclaimed")
        },
        "failed_total": failed,
        "channels_down": ",".join(outcome.down) or "none",
    }
    context.log.info(
        f"Alert deliveries: {summary['delivered']} delivered, {summary['retry_later']} to "
        f"retry, {summary['waiting']} waiting for a channel, {summary['failed']} failed now "
        f"({failed} failed in all), {summary['escalated']} escalated; channels down: "
        f"{summary['channels_down']}"
    )
    return summary


@dg.asset(
    key=dg.AssetKey(["alerts", "deliveries"]),
    deps=[dg.AssetKey(["alerts", "outbox"])],
    group_name="alerts",
    kinds={"duckdb"},
    op_tags=ALERTS_FIRST,
)
def alert_deliveries(context: dg.AssetExecutionContext):
    """Every alert delivery that is due, sent to its webhook or e-mail channel, most severe
    first, each claimed before it is sent and marked after; a channel that fails is probed,
    not hammered; what exhausts its attempts is failed and escalated to the dead-letter
    channels (never dropped). The step's metadata says which channels were down."""
    return dg.MaterializeResult(metadata=deliver(context))
