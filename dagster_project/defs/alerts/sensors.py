"""A failed pipeline run is itself an alert: operations must know the numbers stopped
moving (the last good snapshot is still served)."""

import dagster as dg

from dagster_project.defs.alerts.jobs import (
    FAILED_JOB_TAG,
    FAILED_RUN_TAG,
    FAILED_STEPS_TAG,
    ocse_alerts,
)
from dagster_project.defs.jobs import ocse_pipeline
from ocse.run_tags import TRIGGER_TAG


@dg.run_failure_sensor(
    monitored_jobs=[ocse_pipeline],
    request_job=ocse_alerts,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Raises a pipeline_failed alert (and delivers it) when a pipeline run fails.",
)
def pipeline_failure_alert_sensor(context: dg.RunFailureSensorContext):
    run = context.dagster_run
    steps = sorted({e.step_key for e in context.get_step_failure_events() if e.step_key})
    return dg.RunRequest(
        run_key=f"pipeline_failed:{run.run_id}",
        tags={
            FAILED_RUN_TAG: run.run_id,
            FAILED_JOB_TAG: run.job_name,
            FAILED_STEPS_TAG: ",".join(steps) or "unknown",
            TRIGGER_TAG: "pipeline_failure",
        },
    )
