"""The one pipeline job: ingest new files, dbt build, checks, alerts, publish; and its
schedule."""

import dagster as dg

from dagster_project.defs.run_queue import pipeline_waiting
from ocse.run_tags import TRIGGER_TAG
from ocse.settings import get_settings

# The run queue's lanes (dagster.yaml, tag_concurrency_limits): one pipeline run at a time
# (DuckDB has one writer; the warehouse lease enforces it for runs from anywhere), and alert
# runs beside it, since they never open the warehouse.
WAREHOUSE_LANE = {"ocse/lane": "warehouse"}

ocse_pipeline = dg.define_asset_job(
    "ocse_pipeline",
    # Exports run on request (job `research_export`), never every few minutes.
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups("exports"),
    executor_def=dg.in_process_executor,
    tags=WAREHOUSE_LANE,
    description="Ingest new landed files, build and test the dbt models at T, publish the "
    "serving snapshot. `ocse run` runs this same job in-process.",
)


@dg.schedule(
    name="pipeline_schedule",
    job=ocse_pipeline,
    cron_schedule=f"*/{get_settings().pipeline_interval_minutes} * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Runs the pipeline every few minutes (OCSE_PIPELINE_INTERVAL_MINUTES) even "
    "without new files: SLA clocks cross 75% and 100% of their target as time passes, and "
    "feeds go silent, with no file to trigger the landing sensor. A tick while a pipeline "
    "run is already waiting is absorbed by it.",
)
def pipeline_schedule(context: dg.ScheduleEvaluationContext):
    waiting = pipeline_waiting(context.instance)
    if waiting is not None:
        return dg.SkipReason(f"Run {waiting.run_id[:8]} is already waiting; it takes this tick.")
    return dg.RunRequest(tags={TRIGGER_TAG: "schedule"})
