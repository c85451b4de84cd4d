"""The alert job outside the pipeline: a failed pipeline run, the daily digest (and any
delivery due by then). Each is a run, so like every warehouse write it waits its turn in the run
queue (one run at a time: DuckDB has one writer)."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from dagster_project.defs.alerts.assets import deliver
from dagster_project.defs.alerts.resources import alerting_config
from dagster_project.defs.resources import WarehouseResource
from ocse.alerts.digest import digest_alert
from ocse.alerts.outbox import ensure_alert_schema, raise_alerts
from ocse.alerts.rules import pipeline_failed_alert
from ocse.settings import get_settings

FAILED_RUN_TAG = "ocse/failed_run_id"
FAILED_JOB_TAG = "ocse/failed_job"
FAILED_STEPS_TAG = "ocse/failed_steps"
DIGEST_DAY_TAG = "ocse/digest_day"


@dg.op
def record_and_deliver_alerts(context: dg.OpExecutionContext, warehouse: WarehouseResource):
    """Record a failed pipeline run or the daily digest when this run is for one (its tags
    say so), then deliver every alert that is due."""
    config = alerting_config()
    tags = context.run.tags
    candidates = []
    conn = warehouse.connect()
    try:
        ensure_alert_schema(conn)
        if FAILED_RUN_TAG in tags:
            candidates.append(
                pipeline_failed_alert(
                    tags[FAILED_RUN_TAG],
                    tags.get(FAILED_JOB_TAG, "ocse_pipeline"),
                    datetime.now(UTC),
                    f"failed steps: {tags.get(FAILED_STEPS_TAG, 'unknown')}",
                    config,
                )
            )
        if DIGEST_DAY_TAG in tags and config.digest:
            day = datetime.fromisoformat(tags[DIGEST_DAY_TAG]).date()
            candidates.append(digest_alert(conn, config, day, warehouse.settings.reporting_tz))
        if candidates:
            result = raise_alerts(conn, candidates, config, datetime.now(UTC))
            context.log.info(f"Raised {len(result.raised)} alert(s)")
    finally:
        conn.close()
    deliver(context, warehouse)


@dg.job(
    description="Deliver the alerts that are due (retries with backoff), and record a failed "
    "pipeline run or the daily digest when the run's tags ask for it.",
    executor_def=dg.in_process_executor,
)
def ocse_alerts():
    record_and_deliver_alerts()


def digest_day(now_local: datetime) -> str:
    return (now_local.date() - timedelta(days=1)).isoformat()


def _digest_schedule():
    settings_tz = get_settings().reporting_tz
    config = alerting_config()
    hour = config.digest.hour if config.digest else 8

    @dg.schedule(
        job=ocse_alerts,
        cron_schedule=f"0 {hour} * * *",
        execution_timezone=settings_tz,
        default_status=(
            dg.DefaultScheduleStatus.RUNNING if config.digest else dg.DefaultScheduleStatus.STOPPED
        ),
        description="Daily digest of the previous day's breaches for the leadership body.",
    )
    def alert_digest_schedule(context: dg.ScheduleEvaluationContext):
        local = context.scheduled_execution_time.astimezone(ZoneInfo(settings_tz))
        day = digest_day(local)
        return dg.RunRequest(run_key=f"digest:{day}", tags={DIGEST_DAY_TAG: day})

    return alert_digest_schedule


alert_digest_schedule = _digest_schedule()
