"""Loads and merges the definitions of each concern under defs/."""

import os
import sys
from pathlib import Path

import dagster as dg

from dagster_project.defs.alerts.assets import alert_deliveries, alert_outbox
from dagster_project.defs.alerts.jobs import (
    alert_delivery_sensor,
    alert_digest_schedule,
    ocse_alerts,
)
from dagster_project.defs.alerts.resources import alerting_config
from dagster_project.defs.alerts.sensors import pipeline_failure_alert_sensor
from dagster_project.defs.dbt.assets import DBT_ASSETS
from dagster_project.defs.dbt.project import dbt_project
from dagster_project.defs.dbt.resource import OcseDbtCliResource
from dagster_project.defs.exports.assets import research_export, research_export_job
from dagster_project.defs.ingest.assets import landing_gate
from dagster_project.defs.ingest.checks import contract_checks
from dagster_project.defs.ingest.sensors import landing_sensor
from dagster_project.defs.jobs import ocse_pipeline, pipeline_schedule
from dagster_project.defs.lifecycle.jobs import ocse_retention, retention_schedule
from dagster_project.defs.publish.assets import serving_snapshot
from dagster_project.defs.resources import WarehouseResource

# Fail at start-up, with the reason, when the alert routing is wrong (ocse/alerts/config.py).
alerting_config()

DBT_SHIM = Path(__file__).parent / "defs" / "dbt" / "dbt_bound_to_run.sh"
os.environ.setdefault("OCSE_DBT_EXECUTABLE", str(Path(sys.executable).parent / "dbt"))

defs = dg.Definitions(
    assets=[
        landing_gate,
        *DBT_ASSETS,
        alert_outbox,
        alert_deliveries,
        serving_snapshot,
        research_export,
    ],
    asset_checks=contract_checks,
    jobs=[ocse_pipeline, ocse_alerts, research_export_job, ocse_retention],
    sensors=[landing_sensor, pipeline_failure_alert_sensor, alert_delivery_sensor],
    schedules=[pipeline_schedule, alert_digest_schedule, retention_schedule],
    # DuckDB allows one writing process: every step of a run executes in the run's own
    # process, one after another (a step per process would collide on the file lock).
    executor=dg.in_process_executor,
    resources={
        # The dbt of this environment, whether or not its bin folder is on PATH, started so
        # that it dies with the run (dbt_bound_to_run.sh).
        "dbt": OcseDbtCliResource(project_dir=dbt_project, dbt_executable=str(DBT_SHIM)),
        "warehouse": WarehouseResource(),
    },
)
