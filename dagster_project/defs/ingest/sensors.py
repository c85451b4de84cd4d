"""Runs the pipeline when new files land, so data is minutes-fresh without anyone watching."""

import hashlib

import dagster as dg

from dagster_project.defs.jobs import ocse_pipeline
from dagster_project.defs.run_queue import pipeline_waiting, reap_dead_runs
from ocse.ingest.discovery import discover
from ocse.run_tags import TRIGGER_TAG
from ocse.settings import get_settings


@dg.sensor(
    job=ocse_pipeline,
    # Listing the landing folder is cheap (7,300 files at L: milliseconds); a file waits at
    # most this long before its run is requested.
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a pipeline run when the set of complete files in the landing folder "
    "changes (in-flight .tmp and dot files are not counted), unless a pipeline run is already "
    "waiting: that run reads the landing folder when it starts, so it takes these files too.",
)
def landing_sensor(context: dg.SensorEvaluationContext):
    settings = get_settings()
    # A run whose process died still holds the pipeline's lane in the run queue (it shows as
    # started): no new run could start to notice. The sensor notices, every few seconds.
    for line in reap_dead_runs(context.instance, None, None, settings):
        context.log.warning(line)
    files = discover(settings.landing_dir)
    fingerprint = hashlib.sha256(
        "\n".join(f"{f.file_name}:{f.size}" for f in files).encode()
    ).hexdigest()
    if not files or fingerprint == context.cursor:
        return dg.SkipReason(f"No new files ({len(files)} complete files in the landing folder).")
    context.update_cursor(fingerprint)
    waiting = pipeline_waiting(context.instance)
    if waiting is not None:
        return dg.SkipReason(
            f"New files; run {waiting.run_id[:8]} is already waiting and will take them."
        )
    # The gate skips files already in the ledger, so a run per change is safe and cheap.
    return dg.RunRequest(run_key=fingerprint, tags={TRIGGER_TAG: "landing_sensor"})
