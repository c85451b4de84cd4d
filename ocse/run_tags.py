"""The Dagster run tags this project sets and reads. They are the contract between whatever
starts a run (`ocse run`, the landing sensor, the schedule, the delivery sensor, the
Dagster UI) and the code that executes it, so they live here, in the library: the
orchestration layer (dagster_project) imports them, never the other way round."""

# The run's as-of time T (ISO-8601 with offset); without it, the run's creation time.
AS_OF_TAG = "ocse/as_of"
# Rebuild the incremental models from raw history ("true").
FULL_REFRESH_TAG = "ocse/full_refresh"
# What started the run: cli | landing_sensor | schedule | delivery_sensor | pipeline_failure
# | ui.
TRIGGER_TAG = "ocse/trigger"
