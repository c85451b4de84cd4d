"""One pipeline run at a time, whoever starts it, always at the newest T.

What operators would see go wrong: two runs writing one warehouse at once (half-done work,
DuckDB lock errors), a dead run holding the warehouse for ever, the sensor and the schedule
piling up runs in the queue, a run that waited executing at an older T than the run before."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ocse import runlock
from ocse.settings import PROJECT_ROOT
from tests.feeds import TEST_KEY, VALID_ROWS, write_csv


def test_a_second_holder_is_refused_with_who_holds_it(tmp_path):
    warehouse = tmp_path / "ocse.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from ocse import runlock; "
            f"runlock.acquire(Path({str(warehouse)!r}), run_id='run-a', trigger='cli'); "
            "print('held', flush=True); time.sleep(60)",
        ],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(runlock.WarehouseBusyError) as refused:
            runlock.acquire(warehouse, trigger="cli")
        assert "run run-a (cli)" in str(refused.value) and f"pid {holder.pid}" in str(refused.value)
        assert runlock.current_holder(warehouse)["run_id"] == "run-a"
        # a dead holder loses the lease at once (kill -9: no clean-up ran), and the next
        # holder learns it died holding it
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        lease = runlock.acquire(warehouse, run_id="run-b")
        try:
            assert lease.previous["run_id"] == "run-a" and lease.previous["released_at"] is None
        finally:
            runlock.release(lease)
        assert runlock.current_holder(warehouse) is None
        # a clean release is recorded as such
        again = runlock.acquire(warehouse, run_id="run-c")
        assert again.previous["run_id"] == "run-b" and again.previous["released_at"]
        runlock.release(again)
    finally:
        holder.kill()


def test_the_lease_is_reentrant_within_a_process(tmp_path):
    warehouse = tmp_path / "ocse.duckdb"
    outer = runlock.acquire(warehouse, trigger="cli")
    inner = runlock.acquire(warehouse, run_id="r1")  # the job's resource, inside `ocse run`
    assert inner is outer and outer.holder["run_id"] == "r1"
    runlock.release(inner)
    assert runlock.current_holder(warehouse) is not None  # still held by the outer take
    runlock.release(outer)
    assert runlock.current_holder(warehouse) is None


@pytest.mark.integration
def test_two_concurrent_ocse_runs_one_refused_nothing_half_done(tmp_path):
    landing = tmp_path / "landing"
    for feed, row in VALID_ROWS.items():
        write_csv(landing / feed / f"{feed}.csv", [row])
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OCSE_")},
        "OCSE_PSEUDONYM_KEY": TEST_KEY,
        "OCSE_LANDING_DIR": str(landing),
        "OCSE_WAREHOUSE": str(tmp_path / "ocse.duckdb"),
        "OCSE_SERVING": str(tmp_path / "serving.duckdb"),
        "OCSE_ALERTING_CONFIG": str(PROJECT_ROOT / "tests" / "alerting.quiet.yaml"),
        "DAGSTER_HOME": str(tmp_path),
    }
    ocse = str(Path(sys.executable).parent / "ocse")
    first = subprocess.Popen(
        [ocse, "run"], env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while runlock.current_holder(tmp_path / "ocse.duckdb") is None:
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.1)
    second = subprocess.run(
        [ocse, "run"], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    out, _ = first.communicate(timeout=600)
    assert first.returncode == 0, out.decode()[-3000:]
    assert second.returncode == 75
    assert "Refused" in second.stderr and "is in use by" in second.stderr
    assert "succeeded" not in second.stdout
    with duckdb.connect(str(tmp_path / "ocse.duckdb"), read_only=True) as wh:
        files = wh.execute(
            "select count(*), count(distinct file_name) from ingest.ledger"
        ).fetchone()
    assert files == (len(VALID_ROWS), len(VALID_ROWS))  # each file once: only the first ran
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(job_name="ocse_pipeline"))
    assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS]


# -- the run queue: coalescing, absorption, T at start ---------------------------------------


@pytest.fixture
def queued_instance(tmp_path):
    with dg.instance_for_test(
        temp_dir=str(tmp_path),
        overrides={
            "run_coordinator": {
                "module": "dagster.core.run_coordinator",
                "class": "QueuedRunCoordinator",
            }
        },
    ) as instance:
        yield instance


def _event(instance, run_id: str, event_type: dg.DagsterEventType) -> None:
    instance.handle_new_event(
        dg.EventLogEntry(
            error_info=None,
            level="INFO",
            user_message="",
            run_id=run_id,
            timestamp=time.time(),
            dagster_event=dg.DagsterEvent(
                event_type_value=event_type.value, job_name="ocse_pipeline"
            ),
        )
    )


def _origin():
    from dagster._core.remote_origin import (
        InProcessCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    location = InProcessCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(module_name="dagster_project.definitions")
    )
    return RemoteJobOrigin(
        repository_origin=RemoteRepositoryOrigin(
            code_location_origin=location, repository_name="__repository__"
        ),
        job_name="ocse_pipeline",
    )


def _add_run(instance, status) -> dg.DagsterRun:
    """A pipeline run in `status` (queued as the daemon's sensor would queue it)."""
    queued = status == dg.DagsterRunStatus.QUEUED
    run = dg.DagsterRun(
        job_name="ocse_pipeline",
        run_id=str(uuid.uuid4()),
        status=status if queued else dg.DagsterRunStatus.NOT_STARTED,
        remote_job_origin=_origin(),
    )
    instance.add_run(run)
    if status == dg.DagsterRunStatus.STARTED:
        _event(instance, run.run_id, dg.DagsterEventType.RUN_START)
    return instance.get_run_by_id(run.run_id)


def test_the_sensor_and_the_schedule_are_absorbed_by_a_waiting_run(
    queued_instance, tmp_path, monkeypatch
):
    from dagster_project.defs.ingest.sensors import landing_sensor
    from dagster_project.defs.jobs import pipeline_schedule

    landing = tmp_path / "landing"
    write_csv(landing / "reports" / "r.csv", [VALID_ROWS["reports"]])
    monkeypatch.setenv("OCSE_LANDING_DIR", str(landing))
    monkeypatch.setenv("OCSE_WAREHOUSE", str(tmp_path / "w.duckdb"))
    # nothing waiting: both request a run
    context = dg.build_sensor_context(instance=queued_instance)
    assert isinstance(landing_sensor(context), dg.RunRequest)
    tick = dg.build_schedule_context(instance=queued_instance)
    assert isinstance(pipeline_schedule(tick), dg.RunRequest)
    # a run waits: the next file and the next tick are absorbed by it
    waiting = _add_run(queued_instance, dg.DagsterRunStatus.QUEUED)
    write_csv(landing / "reports" / "r2.csv", [VALID_ROWS["reports"]])
    skipped = landing_sensor(
        dg.build_sensor_context(instance=queued_instance, cursor=context.cursor)
    )
    assert isinstance(skipped, dg.SkipReason) and waiting.run_id[:8] in skipped.skip_message
    assert isinstance(pipeline_schedule(tick), dg.SkipReason)


def test_a_run_that_starts_cancels_the_runs_queued_before_it(queued_instance):
    from dagster_project.defs.run_queue import absorb_waiting_runs

    earlier = _add_run(queued_instance, dg.DagsterRunStatus.QUEUED)
    starting = _add_run(queued_instance, dg.DagsterRunStatus.STARTED)
    absorbed = absorb_waiting_runs(queued_instance, starting)
    assert absorbed == [earlier.run_id]
    after = queued_instance.get_run_by_id(earlier.run_id)
    assert after.status == dg.DagsterRunStatus.CANCELED
    assert after.tags["ocse/absorbed_by"] == starting.run_id
    # a run queued after this one started is a new trigger: it stays queued
    later = _add_run(queued_instance, dg.DagsterRunStatus.QUEUED)
    assert absorb_waiting_runs(queued_instance, starting) == []
    assert queued_instance.get_run_by_id(later.run_id).status == dg.DagsterRunStatus.QUEUED


def test_a_started_run_whose_process_died_is_marked_failed_and_alerted(
    queued_instance, tmp_path, monkeypatch
):
    from dagster_project.defs.run_queue import reap_dead_runs
    from ocse.settings import get_settings

    monkeypatch.setenv("OCSE_WAREHOUSE", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("OCSE_ALERTING_CONFIG", str(PROJECT_ROOT / "tests" / "alerting.quiet.yaml"))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = _add_run(queued_instance, dg.DagsterRunStatus.STARTED)
    queued_instance.add_run_tags(gone.run_id, {"ocse/pid": str(dead.pid)})
    alive = _add_run(queued_instance, dg.DagsterRunStatus.STARTED)
    queued_instance.add_run_tags(alive.run_id, {"ocse/pid": str(os.getpid())})

    lines = reap_dead_runs(queued_instance, None, None, get_settings())

    assert len(lines) == 1 and gone.run_id in lines[0]
    assert queued_instance.get_run_by_id(gone.run_id).status == dg.DagsterRunStatus.FAILURE
    assert queued_instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED
    import sqlite3

    with sqlite3.connect(tmp_path / "alerts.sqlite") as store:
        keys = [k for (k,) in store.execute("select alert_key from outbox")]
    assert keys == [f"pipeline_failed:{gone.run_id}"]
    # noticed again by a later tick: nothing new
    assert reap_dead_runs(queued_instance, None, None, get_settings()) == []


def test_t_is_when_the_run_started_not_when_it_was_queued(queued_instance, monkeypatch):
    from dagster_project.defs.resources import WarehouseResource

    monkeypatch.delenv("OCSE_AS_OF", raising=False)
    run = _add_run(queued_instance, dg.DagsterRunStatus.QUEUED)
    time.sleep(1.2)  # it waited in the queue
    _event(queued_instance, run.run_id, dg.DagsterEventType.RUN_START)
    record = queued_instance.get_run_record_by_id(run.run_id)

    class Context:
        instance = queued_instance

    Context.run = queued_instance.get_run_by_id(run.run_id)
    t = WarehouseResource().as_of(Context)
    created = record.create_timestamp.astimezone(UTC)
    assert t >= created.replace(microsecond=0) + timedelta(seconds=1)
    assert abs(t.timestamp() - record.start_time) < 1
