"""One pipeline run at a time, always at the newest T.

- At most one run waits: the landing sensor and the schedule request a run only when no
  pipeline run is already waiting (`pipeline_waiting`); a trigger while one waits is
  absorbed by it, since the waiting run reads the landing folder and takes T when it starts.
  Two triggers that race (sensor and schedule tick in separate daemon threads) can still
  queue two: the first to start cancels the other (`absorb_waiting_runs`).
- A run whose process died stays STARTED in Dagster's run storage forever unless someone
  says otherwise: the next lease holder does (`reap_dead_runs`), which also fires the
  failed-run alert (the failure sensor sees the run fail; the alert is also raised directly,
  for `ocse run` without a daemon; one dedupe key, sent once).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import dagster as dg

PIPELINE_JOB = "ocse_pipeline"
WAITING = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
]
ABSORBED_TAG = "ocse/absorbed_by"
# A run that the instance shows as started but that never recorded its process (it died
# while starting) is taken as dead after this long.
NO_PID_GRACE = timedelta(minutes=10)


def pipeline_waiting(instance: dg.DagsterInstance) -> dg.DagsterRun | None:
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name=PIPELINE_JOB, statuses=WAITING), limit=1
    )
    return runs[0] if runs else None


def absorb_waiting_runs(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[str]:
    """Cancel the pipeline runs queued before `run` started (it does their work)."""
    record = instance.get_run_record_by_id(run.run_id)
    started = (
        datetime.fromtimestamp(record.start_time, UTC)
        if record is not None and record.start_time
        else datetime.now(UTC)
    )
    absorbed = []
    for other in instance.get_runs(
        filters=dg.RunsFilter(
            job_name=PIPELINE_JOB, statuses=[dg.DagsterRunStatus.QUEUED], created_before=started
        )
    ):
        if other.run_id == run.run_id:
            continue
        instance.add_run_tags(other.run_id, {ABSORBED_TAG: run.run_id})
        if instance.run_coordinator.cancel_run(other.run_id):
            absorbed.append(other.run_id)
    return absorbed


def _alive(pid: int, host: str | None) -> bool:
    if host and host != os.uname().nodename:
        return True  # another machine's process: not ours to judge
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_dead_runs(
    instance: dg.DagsterInstance, current_run_id: str, previous: dict | None, settings
) -> list[str]:
    """Mark failed every pipeline run the instance shows as started whose process is gone,
    and raise its failed-run alert. Returns a log line per run."""
    lines = []
    now = datetime.now(UTC)
    dead: dict[str, str] = {}
    started = instance.get_runs(
        filters=dg.RunsFilter(job_name=PIPELINE_JOB, statuses=[dg.DagsterRunStatus.STARTED])
    )
    for run in started:
        if run.run_id == current_run_id:
            continue
        pid = run.tags.get("ocse/pid")
        if pid is not None:
            if _alive(int(pid), run.tags.get("ocse/host")):
                continue
        else:
            record = instance.get_run_record_by_id(run.run_id)
            begun = record.start_time if record else None
            if begun and now - datetime.fromtimestamp(begun, UTC) < NO_PID_GRACE:
                continue
        reason = (
            f"The process of run {run.run_id} (pid {pid or 'unknown'}) died without ending the "
            "run (killed, or out of memory); marked failed by the next run."
        )
        instance.report_run_failed(run, reason)
        dead[run.run_id] = reason
    # The lease file names the last holder: if it never released, it died; a run of another
    # Dagster instance (an `ocse run` without DAGSTER_HOME) is known only from there.
    last = (previous or {}).get("run_id")
    if last and previous.get("released_at") is None and last not in dead and last != current_run_id:
        dead[last] = (
            f"The process of run {previous['run_id']} (pid {previous.get('pid')}) died "
            "holding the warehouse lease."
        )
    if dead:
        _raise_failed_run_alerts(dead, settings)
    lines.extend(dead.values())
    return lines


def _raise_failed_run_alerts(dead: dict[str, str], settings) -> None:
    from ocse.alerts.config import load_alerting_config
    from ocse.alerts.outbox import raise_alerts
    from ocse.alerts.rules import pipeline_failed_alert
    from ocse.alerts.store import open_store

    config = load_alerting_config(settings.alerting_config)
    now = datetime.now(UTC)
    with open_store(settings.alerts_store) as store:
        raise_alerts(
            store,
            [
                pipeline_failed_alert(run_id, PIPELINE_JOB, now, reason, config)
                for run_id, reason in dead.items()
            ],
            config,
            now,
        )
