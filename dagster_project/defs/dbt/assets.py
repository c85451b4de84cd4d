"""dbt models as Dagster assets (keys and groups from each model's layer folder), in two
builds per run (the alert path first); dbt tests on models surface as asset checks."""

import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)
from dagster_dbt.core import dbt_cli_event

from dagster_project.defs.dbt.project import DBT_PROJECT_DIR, dbt_project
from dagster_project.defs.resources import FULL_REFRESH_TAG, WarehouseResource
from ocse.settings import dbt_env

# dbt reads the run's as-of time T from here (macro as_of).
AS_OF_ENV = "OCSE_DBT_AS_OF"
# dagster-dbt gives every `dbt` call a folder of its own under dbt/target (artifacts and
# log, ~10 MB; two per run); a run every few minutes would fill the disk. The newest are kept
# to debug.
KEEP_INVOCATION_FOLDERS = 20


def _prune_invocation_folders(keep: int) -> None:
    folders = sorted(
        (DBT_PROJECT_DIR / "target").glob("ocse_dbt_*-*"),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for folder in folders[keep:]:
        shutil.rmtree(folder, ignore_errors=True)


class OcseDbtTranslator(DagsterDbtTranslator):
    """Models get the key [<layer>, <model>] and the group of their domain folder
    (models/<layer>/<domain>/...); seeds (reference data) [<schema>, <seed>]; sources
    [<source schema>, <table>], which is exactly the key of the ingestion asset that writes
    them."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in ("source", "seed"):
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        layer = dbt_resource_props["fqn"][1]
        return dg.AssetKey([layer, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        meta_group = dbt_resource_props.get("meta", {}).get("dagster", {}).get("group")
        if meta_group:
            return meta_group
        if dbt_resource_props["resource_type"] == "seed":
            return "policy"
        fqn = dbt_resource_props["fqn"]
        return fqn[1] if len(fqn) > 2 else "dbt"


# The tests of the raw sources run in the alert path's `dbt build` (they fail the run), but
# are not Dagster checks on the raw assets: an op that holds checks of an asset is not made
# to wait for that asset's blocking checks, and the Great Expectations checks of the gate
# must stop every dbt build (tests/test_dagster_definitions.py).
translator = OcseDbtTranslator(
    settings=DagsterDbtTranslatorSettings(enable_source_tests_as_checks=False)
)


class _SourceTestsAreObservations(logging.Filter):
    """dagster-dbt records each source test as an observation of its raw asset, and warns
    for each (~60 a run) that it was "likely executed due to dbt indirect selection". Here
    that is the design, not a surprise: drop those warnings, keep every other."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (
            message.startswith("Logging an `AssetObservation` instead of an `AssetCheckResult`")
            and "for dbt test `source_" in message
        )


dbt_cli_event.logger.addFilter(_SourceTestsAreObservations())


# The alert path (dbt/selectors.yml, selector alert_path): fct_open_sla_breaches, the
# categories and policy versions its alerts read, and everything upstream. A run builds and
# tests these first, in a `dbt build` of their own; the alerts are raised and delivered next
# (their steps have a higher priority), and only then does the second `dbt build` (selector
# rest_of_project) make every other mart. An SLA breach in a new file reaches operations
# without waiting for the year-long marts, their tests and the snapshot.
ALERT_PATH_SELECTOR = "alert_path"
REST_SELECTOR = "rest_of_project"
# Run tag, set by the alert path's build: it rebuilt staging in full, so this run is a full
# build for the rest of the marts too (what OCSE_DBT_TESTS=full_builds asks about).
FULL_BUILD_TAG = "ocse/dbt_full_build"


@dataclass(frozen=True)
class DbtBuildPlan:
    """What one of a run's two `dbt build` calls does, decided before anything runs."""

    args: list[str]
    env: dict[str, str]
    full_build: bool  # staging rebuilt from raw history in this run
    notes: list[str] = field(default_factory=list)  # what the run log says about the choice


def plan_dbt_build(
    *,
    alert_path: bool,
    as_of: datetime,
    run_tags: Mapping[str, str],
    staged_as_of: datetime | None,
    dbt_tests: str,
    env: Mapping[str, str],
) -> DbtBuildPlan:
    """The `dbt build` of the alert path (`alert_path`) or of the rest of the project, at T
    `as_of`; pure: the run's tags, the T staging was last built at (None: never) and the
    settings in, the command and its environment out (tests/test_dbt_plan.py).

    - No --vars: T goes in the environment (macro as_of) and the reporting time zone too
      (dbt_project.yml reads OCSE_REPORTING_TZ), so dbt reuses the parse of prepare_dbt (a
      change of --vars makes it re-parse the whole project, and T changes on every run).
    - Unit tests (rows in, rows out) check the SQL, not the data: the test suite runs them
      (tests/test_dbt_unit_tests.py); a production run need not repeat them every time.
    - Staging (incremental) is on the alert path; it is rebuilt from raw history when the
      run asks (tag ocse/full_refresh), when it was never built, or when T is earlier than
      the T it was last built at (a backfill). The other incremental models keep watermarks
      of their own and rebuild in full when T moves back (macro changes_mode).
    - A test with parents on both sides of the split runs in the second build, after all its
      parents are built: the alert path takes only the tests whose parents are all on it
      ("cautious"); the second build takes every test that touches one of its models
      ("eager").
    - On an incremental run with OCSE_DBT_TESTS=full_builds the tests of models are left to
      full builds ("empty"): the tests of the raw sources, which catch bad data written
      behind the gate's back, and those next to dim_categories run every time (the
      selectors select them directly; README, "Speed").
    """
    # (the selector, alert_path or rest_of_project, is the assets' own: dagster-dbt adds it)
    args = ["build", "--exclude-resource-type", "unit_test"]
    notes: list[str] = []
    requested = run_tags.get(FULL_REFRESH_TAG) == "true"
    full_build = requested
    if requested:
        args.append("--full-refresh")
        if alert_path:
            notes.append("Full refresh requested: staging rebuilt from raw history.")
    elif alert_path:
        if staged_as_of is None:
            full_build = True
        elif as_of < staged_as_of:
            args.append("--full-refresh")
            full_build = True
            last = "unknown" if staged_as_of.year == 9999 else staged_as_of.isoformat()
            notes.append(
                f"T {as_of.isoformat()} is not after the last staged T ({last}): "
                "staging rebuilt from raw history."
            )
    else:
        full_build = run_tags.get(FULL_BUILD_TAG) == "true"
    indirect = "cautious" if alert_path else "eager"
    if not full_build and dbt_tests == "full_builds":
        # The tests of models come in by indirect selection only; the tests of the raw
        # sources are selected directly by the selectors, so they still run.
        indirect = "empty"
        notes.append(
            "Incremental run: dbt tests on sources run; tests on models run on full builds "
            "(OCSE_DBT_TESTS=full_builds, see README)."
        )
    env = {
        **env,
        AS_OF_ENV: as_of.isoformat(),
        "DBT_INDIRECT_SELECTION": indirect,
    }
    return DbtBuildPlan(args=args, env=env, full_build=full_build, notes=notes)


def _dbt_build(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    *,
    alert_path: bool,
):
    """Run the planned `dbt build` and stream its events to Dagster."""
    run_tags = dict(context.run.tags)
    if not alert_path:
        # the alert path's build may have tagged this run a full build since it started
        run = context.instance.get_run_by_id(context.run.run_id)
        run_tags.update(run.tags if run is not None else {})
    plan = plan_dbt_build(
        alert_path=alert_path,
        as_of=warehouse.as_of(context),
        run_tags=run_tags,
        staged_as_of=warehouse.staged_as_of() if alert_path else None,
        dbt_tests=warehouse.settings.dbt_tests,
        # dbt reads its profile (warehouse path, time zone, memory limit) from the
        # environment of the process it runs in: set from this run's settings.
        env=dbt_env(warehouse.settings),
    )
    for note in plan.notes:
        context.log.info(note)
    if alert_path and plan.full_build:
        context.instance.add_run_tags(context.run.run_id, {FULL_BUILD_TAG: "true"})
    built = 0
    previous = {name: os.environ.get(name) for name in plan.env}
    os.environ.update(plan.env)
    try:
        for event in dbt.cli(plan.args, context=context).stream():
            if isinstance(event, dg.Output):
                built += 1
                context.log.info(f"dbt built {event.output_name} ({built} models so far)")
            elif isinstance(event, dg.AssetCheckResult) and not event.passed:
                context.log.warning(f"dbt test failed: {event.check_name} on {event.asset_key}")
            yield event
    finally:
        _prune_invocation_folders(keep=KEEP_INVOCATION_FOLDERS)
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=translator,
    selector=ALERT_PATH_SELECTOR,
)
def ocse_dbt_alert_path(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
):
    """Staging, the facts as they stood at T, and the open SLA clocks, built and tested by
    `dbt build` at the run's as-of time T: what the alerts read. Staging is incremental; it
    is rebuilt from raw history when the run asks for it (tag ocse/full_refresh) or when T
    is earlier than the T it was last built at (a backfill)."""
    yield from _dbt_build(context, dbt, warehouse, alert_path=True)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=translator,
    selector=REST_SELECTOR,
)
def ocse_dbt_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
):
    """Every other model (the marts of metrics.md), built and tested by `dbt build` at the
    run's as-of time T, after the alerts of this run went out."""
    yield from _dbt_build(context, dbt, warehouse, alert_path=False)


DBT_ASSETS = [ocse_dbt_alert_path, ocse_dbt_models]
MART_KEYS = [key for a in DBT_ASSETS for key in a.keys if key.path[0] == "marts"]
