"""Retention as a Dagster job and its daily schedule (ocse/lifecycle/retention.py).

The job runs in the warehouse lane (tag ocse/lane, dagster.yaml), so the run queue never
starts it beside a pipeline run, and it takes the warehouse lease itself, waiting up to
OCSE_RUN_LEASE_WAIT_SECONDS for a run started elsewhere (`ocse run` from a shell).
"""

import dagster as dg

from dagster_project.defs.jobs import WAREHOUSE_LANE
from ocse.run_tags import TRIGGER_TAG
from ocse.settings import get_settings

REQUESTED_BY_TAG = "ocse/requested_by"


@dg.op(
    description="Purge every table of what is older than its retention period "
    "(OCSE_RETENTION_CONFIG), after a full append-only check; an audit row per table in "
    "lifecycle.audit, zeros included."
)
def purge_past_retention(context: dg.OpExecutionContext) -> dg.Output:
    from ocse.lifecycle.retention import run_retention

    settings = get_settings()
    tags = context.run.tags
    requested_by = tags.get(REQUESTED_BY_TAG) or f"dagster ({tags.get(TRIGGER_TAG, 'ui')})"
    result = run_retention(
        settings,
        requested_by=requested_by,
        run_id=context.run.run_id,
        trigger="retention",
        wait_seconds=settings.run_lease_wait_seconds,
        log=context.log.info,
    )
    return dg.Output(
        None,
        metadata={
            "rows_removed": result.rows_removed,
            "seal": result.seal,
            "purges": dg.MetadataValue.json(
                {
                    p.table: {
                        "cutoff": p.cutoff.isoformat() if p.cutoff else None,
                        "rows_removed": p.rows,
                    }
                    for p in result.purges
                }
            ),
        },
    )


@dg.job(
    name="ocse_retention",
    description="Retention: purge what is past its period (retention.yaml), with an audit "
    "row per table. Same as `ocse retention run`.",
    executor_def=dg.in_process_executor,
    tags=WAREHOUSE_LANE,
)
def ocse_retention():
    purge_past_retention()


def _retention_schedule():
    settings = get_settings()

    @dg.schedule(
        name="retention_schedule",
        job=ocse_retention,
        cron_schedule=settings.retention_cron,
        execution_timezone=settings.reporting_tz,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Runs retention once a day (OCSE_RETENTION_CRON, in OCSE_REPORTING_TZ).",
    )
    def retention_schedule(context: dg.ScheduleEvaluationContext):
        day = context.scheduled_execution_time.date().isoformat()
        return dg.RunRequest(run_key=f"retention:{day}", tags={TRIGGER_TAG: "schedule"})

    return retention_schedule


retention_schedule = _retention_schedule()
