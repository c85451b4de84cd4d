"""The one pipeline job: ingest new files, dbt build, checks, alerts, publish; and its
schedule."""

import dagster as dg

from ocse.settings import get_settings

ocse_pipeline = dg.define_asset_job(
    "ocse_pipeline",
    # Exports run on request (job `research_export`), never every few minutes.
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups("exports"),
    executor_def=dg.in_process_executor,
    description="Ingest new landed files, build and test the dbt models at T, publish the "
    "serving snapshot. `ocse run` runs this same job in-process.",
)


pipeline_schedule = dg.ScheduleDefinition(
    name="pipeline_schedule",
    job=ocse_pipeline,
    cron_schedule=f"*/{get_settings().pipeline_interval_minutes} * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Runs the pipeline every few minutes (OCSE_PIPELINE_INTERVAL_MINUTES) even "
    "without new files: SLA clocks cross 75% and 100% of their target as time passes, and "
    "feeds go silent, with no file to trigger the landing sensor.",
    tags={"ocse/trigger": "schedule"},
)
