"""The one pipeline job: ingest new files, dbt build, checks, publish."""

import dagster as dg

ocse_pipeline = dg.define_asset_job(
    "ocse_pipeline",
    selection=dg.AssetSelection.all(),
    executor_def=dg.in_process_executor,
    description="Ingest new landed files, build and test the dbt models at T, publish the "
    "serving snapshot. `ocse run` runs this same job in-process.",
)
