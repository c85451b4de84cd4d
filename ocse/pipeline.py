"""Running the Dagster pipeline in-process (what `ocse run` does) and summarising it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ocse.settings import PROJECT_ROOT, OcseSettings, dbt_env, get_settings

DBT_DIR = PROJECT_ROOT / "dbt"


def _dbt_parse_key(env: dict[str, str]) -> str:
    """What dbt's manifest depends on: every file of the project and the settings its
    profile and vars read (`env`)."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(DBT_DIR.rglob("*")):
        rel = path.relative_to(DBT_DIR)
        if rel.parts[0] in ("target", "logs", "dbt_packages") or not path.is_file():
            continue
        stat = path.stat()
        digest.update(f"{rel}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    for name, value in sorted(env.items()):
        digest.update(f"{name}={value}\n".encode())
    return digest.hexdigest()


def install_dbt_packages() -> None:
    """Link the vendored dbt packages (dbt/vendor/, `local:` in dbt/packages.yml) into
    dbt/dbt_packages/, which every dbt parse and build needs: `dbt deps`, offline. Only when
    one is missing (a fresh clone, or after `dbt clean`)."""
    installed = DBT_DIR / "dbt_packages"
    if all((installed / p.name).exists() for p in (DBT_DIR / "vendor").iterdir() if p.is_dir()):
        return
    subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"),
            "deps",
            "--quiet",
            "--project-dir",
            str(DBT_DIR),
            "--profiles-dir",
            str(DBT_DIR),
        ],
        check=True,
        cwd=DBT_DIR,
    )


def prepare_dbt() -> None:
    """Parse the dbt project into target/manifest.json, which the Dagster assets load.
    Skipped when nothing it depends on changed since the last parse (a parse costs seconds
    on every run otherwise).

    The parse sees the same profile and vars as the runs' `dbt build` (`dbt_env`: no --vars,
    the profile's variables from the settings), so dagster-dbt's copy of its
    partial_parse.msgpack lets every build skip parsing; any difference and dbt re-parses the
    whole project on every run ("config vars, config profile, or config target have
    changed" in its log)."""
    marker = DBT_DIR / "target" / ".ocse_parse_key"
    env = dbt_env(get_settings())
    install_dbt_packages()
    key = _dbt_parse_key(env)
    manifest = DBT_DIR / "target" / "manifest.json"
    if manifest.exists() and marker.exists() and marker.read_text() == key:
        return
    dbt = Path(sys.executable).parent / "dbt"
    # Parsed into a folder of its own, then moved into place: a process loading the
    # definitions meanwhile reads the old manifest whole, never half of the new one.
    scratch = DBT_DIR / "target" / f".parse-{os.getpid()}"
    subprocess.run(
        [
            str(dbt),
            "parse",
            "--quiet",
            "--project-dir",
            str(DBT_DIR),
            "--profiles-dir",
            str(DBT_DIR),
            "--target-path",
            str(scratch),
        ],
        check=True,
        cwd=DBT_DIR,
        env={**os.environ, **env},
    )
    for name in ("partial_parse.msgpack", "manifest.json"):
        if (scratch / name).exists():
            os.replace(scratch / name, DBT_DIR / "target" / name)
    shutil.rmtree(scratch, ignore_errors=True)
    marker.write_text(key)


@dataclass
class RunSummary:
    success: bool
    run_id: str
    as_of: datetime
    files: Counter = field(default_factory=Counter)
    rows_loaded: int = 0
    rows_quarantined: int = 0
    reasons: Counter = field(default_factory=Counter)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    published_tables: dict[str, int] = field(default_factory=dict)
    headline: dict[str, float | int | None] = field(default_factory=dict)
    failure: str | None = None
    alerts: dict[str, object] = field(default_factory=dict)  # the outbox step's metadata
    channels: dict[str, dict] = field(default_factory=dict)  # this run's delivery rounds

    @property
    def channels_down(self) -> list[str]:
        """Alert channels down with alerts waiting for them after this run's deliveries."""
        return sorted(
            c
            for c, v in self.channels.items()
            if v["channel_state"] == "down" and v["waiting"] + v["retry_later"] + v["failed"]
        )


def run_pipeline(
    as_of: datetime,
    *,
    full_refresh: bool = False,
    instance=None,
    explicit_as_of: bool = True,  # noqa: ARG001 - T is a tag either way; kept for callers
) -> RunSummary:
    """Execute job `ocse_pipeline` in this process (same assets, checks and order as in the
    Dagster UI) at as-of time `as_of`, then summarise what it did from the warehouse.
    `full_refresh` rebuilds the incremental staging models from raw history. Holds the
    warehouse lease throughout (ocse/runlock.py): raises WarehouseBusyError, having done
    nothing, when another run holds it."""
    from ocse import runlock

    settings = get_settings()
    settings.key_bytes  # noqa: B018 - fail before anything else when no key is configured
    lease = runlock.acquire(settings.warehouse, trigger="cli")
    try:
        return _run_pipeline(settings, as_of, full_refresh, instance)
    finally:
        runlock.release(lease)


def _run_pipeline(settings: OcseSettings, as_of: datetime, full_refresh: bool, instance):
    import dagster as dg

    from ocse.lifecycle import guard
    from ocse.run_tags import AS_OF_TAG, FULL_REFRESH_TAG, TRIGGER_TAG
    from ocse.warehouse import connect, ensure_schema

    conn = connect(settings.warehouse)
    try:
        ensure_schema(conn)
        # Raw history, ledger and quarantine only grow outside retention and erasure: a run
        # on rows deleted or changed behind their back refuses, naming the table.
        try:
            guard.verify(conn, full=settings.append_only_verify == "full", by="ocse run")
        except guard.AppendOnlyViolation as exc:
            return RunSummary(success=False, run_id="refused", as_of=as_of, failure=str(exc))
        (before,) = conn.execute("select coalesce(max(file_id), 0) from ingest.ledger").fetchone()
    finally:
        conn.close()

    prepare_dbt()
    defs = code_location()

    instance = instance or (
        dg.DagsterInstance.get()
        if os.environ.get("DAGSTER_HOME")
        else dg.DagsterInstance.ephemeral()
    )
    result = defs.resolve_job_def("ocse_pipeline").execute_in_process(
        instance=instance,
        tags={
            AS_OF_TAG: as_of.isoformat(),
            FULL_REFRESH_TAG: str(full_refresh).lower(),
            TRIGGER_TAG: "cli",
        },
        # Progress lines (files ingested, models built, checks) without Dagster's debug events.
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        raise_on_error=False,
    )
    summary = RunSummary(success=result.success, run_id=result.run_id, as_of=as_of)
    if not result.success:
        failures = [f"{e.step_key}: {e.message}" for e in result.all_events if e.is_step_failure]
        checks = [
            f"{e.asset_check_evaluation_data.asset_key.to_user_string()}"
            f" {e.asset_check_evaluation_data.check_name}"
            for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"
            and not e.asset_check_evaluation_data.passed
        ]
        summary.failure = "; ".join(failures + [f"check failed: {c}" for c in checks]) or "failed"
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            materialization = event.event_specific_data.materialization
            if materialization.asset_key.path == ["alerts", "outbox"]:
                summary.alerts = {k: v.value for k, v in materialization.metadata.items()}
    _summarise_ingest(settings, before, summary)
    _summarise_deliveries(settings, summary)
    return summary


def code_location():
    """The Dagster definitions of this project, found the way `dagster dev` finds them: by the
    module named in pyproject.toml, [tool.dagster] module_name. The library names no module
    of the orchestration layer; it runs whatever code location the project configures."""
    import importlib
    import tomllib

    with (PROJECT_ROOT / "pyproject.toml").open("rb") as fh:
        module = tomllib.load(fh)["tool"]["dagster"]["module_name"]
    return importlib.import_module(module).defs


def _summarise_deliveries(settings: OcseSettings, summary: RunSummary) -> None:
    from ocse.alerts.store import open_store

    if not settings.alerts_store.exists():
        return
    with open_store(settings.alerts_store) as store:
        for channel, state, delivered, retry, failed, waiting, error in store.rows(
            "select channel, channel_state, delivered, retry_later, failed, waiting, last_error "
            "from delivery_rounds where run_id = ? order by round_id",
            (summary.run_id,),
        ):
            summary.channels[channel] = {
                "channel_state": state,
                "delivered": delivered,
                "retry_later": retry,
                "failed": failed,
                "waiting": waiting,
                "error": error,
            }


def _summarise_ingest(settings: OcseSettings, before: int, summary: RunSummary) -> None:
    from ocse.warehouse import connect

    conn = connect(settings.warehouse)
    try:
        rows = conn.execute(
            "select outcome, file_name, rows_loaded, rows_quarantined, error "
            "from ingest.ledger where file_id > ? order by file_id",
            [before],
        ).fetchall()
        for outcome, name, loaded, quarantined, error in rows:
            summary.files[outcome] += 1
            summary.rows_loaded += loaded
            summary.rows_quarantined += quarantined
            if outcome == "rejected":
                summary.rejected.append((name, error))
        summary.reasons = Counter(
            dict(
                conn.execute(
                    "select split_part(r, ':', 1) || ':' || split_part(r, ':', 2), count(*) "
                    "from (select unnest(reason_codes) as r from ingest.quarantine "
                    "where file_id > ?) group by 1 order by 2 desc",
                    [before],
                ).fetchall()
            )
        )
    finally:
        conn.close()
    if settings.serving.exists() and summary.success:
        from ocse.serving import open_snapshot

        snap = open_snapshot(settings.serving)
        try:
            summary.published_tables = dict(
                snap.execute(
                    "select schema_name || '.' || table_name, estimated_size from duckdb_tables() "
                    "where schema_name = 'marts' order by 1"
                ).fetchall()
            )
            summary.headline = _headline(snap)
        finally:
            snap.close()


# The few numbers an operator wants at the end of a run, straight from the published marts.
HEADLINE_SQL = """
select
    (select count(*) from marts.fct_content_takedowns) as takedowns,
    (select avg(is_within_sla::int) from marts.fct_content_takedowns) as within_sla_share,
    (select count(*) from marts.fct_open_sla_breaches where status = 'breach') as open_breaches,
    (select count(*) from marts.fct_open_sla_breaches where status = 'near_breach')
        as open_near_breaches,
    (select count(*) from marts.dim_user_tiers where tier = 'black') as black_listed,
    (select count(*) from marts.dim_user_tiers where tier = 'grey') as grey_listed
"""


def _headline(snap) -> dict[str, float | int | None]:
    try:
        cursor = snap.execute(HEADLINE_SQL)
    except Exception:  # noqa: BLE001 - a snapshot from before the marts existed
        return {}
    names = [d[0] for d in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))
