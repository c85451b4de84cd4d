"""The alert job outside the pipeline: a failed pipeline run, the daily digest, and every
delivery that is due (retries, probes of a channel that was down). It never opens the
warehouse (alerts live in the alert store, the digest reads the serving snapshot), so it runs
beside a pipeline run in a lane of its own (tag ocse/lane, dagster.yaml) instead of waiting
behind it."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from dagster_project.defs.alerts.assets import deliver
from dagster_project.defs.alerts.resources import alerting_config
from ocse.alerts.deliver import deliveries_due
from ocse.alerts.digest import digest_alert
from ocse.alerts.outbox import raise_alerts
from ocse.alerts.rules import pipeline_failed_alert
from ocse.alerts.store import open_store
from ocse.run_tags import TRIGGER_TAG
from ocse.serving import open_snapshot
from ocse.settings import get_settings

FAILED_RUN_TAG = "ocse/failed_run_id"
FAILED_JOB_TAG = "ocse/failed_job"
FAILED_STEPS_TAG = "ocse/failed_steps"
DIGEST_DAY_TAG = "ocse/digest_day"


ALERTS_LANE = {"ocse/lane": "alerts"}


@dg.op
def record_and_deliver_alerts(context: dg.OpExecutionContext):
    """Record a failed pipeline run or the daily digest when this run is for one (its tags
    say so), then deliver every alert that is due."""
    config = alerting_config()
    settings = get_settings()
    tags = context.run.tags
    candidates = []
    with open_store(settings.alerts_store) as store:
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
            snapshot = open_snapshot(settings.serving)
            try:
                candidates.append(digest_alert(store, snapshot, config, day, settings.reporting_tz))
            finally:
                snapshot.close()
        if candidates:
            result = raise_alerts(store, candidates, config, datetime.now(UTC))
            context.log.info(f"Raised {len(result.raised)} alert(s)")
    deliver(context)


@dg.job(
    description="Deliver the alerts that are due (retries with backoff), and record a failed "
    "pipeline run or the daily digest when the run's tags ask for it.",
    executor_def=dg.in_process_executor,
    tags=ALERTS_LANE,
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


@dg.sensor(
    job=ocse_alerts,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts the alert job when deliveries are due between pipeline runs (a retry, "
    "the probe of a channel that was down, a claim left by a process that died), unless an "
    "alert job is already queued or running.",
)
def alert_delivery_sensor(context: dg.SensorEvaluationContext):
    settings = get_settings()
    if not settings.alerts_store.exists():
        return dg.SkipReason("No alert store yet.")
    with open_store(settings.alerts_store) as store:
        due = deliveries_due(store, datetime.now(UTC))
    if not due:
        return dg.SkipReason("No delivery is due.")
    busy = context.instance.get_runs(
        filters=dg.RunsFilter(
            job_name="ocse_alerts",
            statuses=[
                dg.DagsterRunStatus.QUEUED,
                dg.DagsterRunStatus.NOT_STARTED,
                dg.DagsterRunStatus.STARTING,
                dg.DagsterRunStatus.STARTED,
            ],
        ),
        limit=1,
    )
    if busy:
        return dg.SkipReason(f"{due} deliveries due; alert run {busy[0].run_id[:8]} has them.")
    return dg.RunRequest(tags={TRIGGER_TAG: "delivery_sensor"})
