"""The warehouse resource shared by every asset: settings, connections, the run's as-of time,
and the warehouse lease that makes a run the only one working on the warehouse."""

import os
import socket
from datetime import UTC, datetime

import dagster as dg
import duckdb
from pydantic import PrivateAttr

from dagster_project.defs.run_queue import absorb_waiting_runs, reap_dead_runs
from ocse import runlock
from ocse.pseudonymise import PseudonymKey
from ocse.run_tags import AS_OF_TAG, FULL_REFRESH_TAG, TRIGGER_TAG  # noqa: F401 - re-exported
from ocse.settings import OcseSettings, get_settings
from ocse.warehouse import connect

HOST = socket.gethostname()


class WarehouseResource(dg.ConfigurableResource):
    """Reads OcseSettings from the environment (the same variables dbt's profile reads).

    Set up once per run (every step of a run executes in one process): it takes the
    warehouse lease before the first step and gives it back after the last, so whatever
    started the run, it is the only one working on the warehouse. A run that has to wait for
    the lease (an `ocse run` from a shell holds it) waits up to OCSE_RUN_LEASE_WAIT_SECONDS,
    then fails saying who holds it. Holding the lease proves no other run is alive, so the
    holder marks failed any run that the instance still shows as started but whose process
    died, and cancels the runs queued before it started: their triggers are absorbed by this
    run, which reads the landing folder and takes T when it starts."""

    @property
    def settings(self) -> OcseSettings:
        return get_settings()

    _lease: runlock.Lease | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        run = context.run
        if run is None:  # a resource used outside a run (tests, scripts)
            return
        settings = self.settings
        instance = context.instance
        trigger = run.tags.get(TRIGGER_TAG, "ui")
        # Who this run is, before it waits: the reaper of a later run tells a run that waits
        # from one whose process died.
        instance.add_run_tags(run.run_id, {"ocse/pid": str(os.getpid()), "ocse/host": HOST})
        already = runlock.held_by_this_process(settings.warehouse)
        wait = 0.0 if already else settings.run_lease_wait_seconds
        if not already and wait:
            holder = runlock.current_holder(settings.warehouse)
            if holder is not None:
                context.log.info(
                    f"Waiting up to {wait:.0f} s for the warehouse lease held by "
                    f"{runlock.describe(holder)}"
                )
        self._lease = runlock.acquire(
            settings.warehouse, run_id=run.run_id, trigger=trigger, wait_seconds=wait
        )
        reaped = reap_dead_runs(instance, run.run_id, self._lease.previous, settings)
        for line in reaped:
            context.log.warning(line)
        absorbed = absorb_waiting_runs(instance, run)
        if absorbed:
            context.log.info(
                f"Absorbed {len(absorbed)} queued run(s) triggered before this one started: "
                + ", ".join(r[:8] for r in absorbed)
            )

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        lease = getattr(self, "_lease", None)
        if lease is not None:
            runlock.release(lease)
            self._lease = None

    def connect(self) -> duckdb.DuckDBPyConnection:
        return connect(self.settings.warehouse)

    def pseudonym_key(self) -> PseudonymKey:
        """The current key (with the previous one during a rotation: ocse/keys.py)."""
        return self.settings.pseudonym_keys()

    def as_of(self, context: dg.OpExecutionContext | dg.AssetCheckExecutionContext) -> datetime:
        """T for this run: the run's `ocse/as_of` tag (an explicit backfill), else OCSE_AS_OF,
        else when the run started, so that every asset of one run sees the same T. Never when
        it was queued: a run that waited would otherwise run at a T older than the run
        before it, which is a backfill (a full rebuild, no alerts) nobody asked for."""
        tag = context.run.tags.get(AS_OF_TAG)
        if tag:
            return datetime.fromisoformat(tag).astimezone(UTC)
        if self.settings.as_of:
            return self.settings.resolved_as_of()
        record = context.instance.get_run_record_by_id(context.run.run_id)
        if record is not None and record.start_time:
            started = datetime.fromtimestamp(record.start_time, UTC)
        else:
            started = record.create_timestamp if record else datetime.now(UTC)
        return started.astimezone(UTC).replace(microsecond=0)

    def staged_as_of(self) -> datetime | None:
        """The latest T the incremental staging models were built at (None before the first
        build). A run at an earlier T must rebuild them in full. A staging table from before
        staging was incremental (no watermark column) reads as the end of time, which forces
        that rebuild too."""
        conn = self.connect()
        try:
            # the staged tables (the base views and the bookkeeping views are not staged)
            staged = conn.execute(
                "select c.table_name, list(c.column_name) from information_schema.columns c "
                "join information_schema.tables t using (table_schema, table_name) "
                "where c.table_schema = 'staging' and c.table_name like 'stg_%' "
                "and t.table_type = 'BASE TABLE' group by 1"
            ).fetchall()
            latest = None
            for table, columns in staged:
                if "_staged_as_of" not in columns:
                    return datetime.max.replace(tzinfo=UTC)
                (value,) = conn.execute(
                    f'select max(_staged_as_of) from staging."{table}"'
                ).fetchone()
                if value is not None and (latest is None or value > latest):
                    latest = value
            return latest
        finally:
            conn.close()
