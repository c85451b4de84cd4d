"""dbt models as Dagster assets (keys and groups from each model's layer folder), in two
builds per run (the alert path first); dbt tests on models surface as asset checks."""

import logging
import os
import shutil
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)
from dagster_dbt.core import dbt_cli_event
from dagster_dbt.dbt_manifest import validate_manifest

from dagster_project.defs.dbt.project import DBT_PROJECT_DIR, dbt_project
from dagster_project.defs.resources import FULL_REFRESH_TAG, WarehouseResource
from ocse.settings import dbt_env

# dbt reads the run's as-of time T from here (macro as_of).
AS_OF_ENV = "OCSE_DBT_AS_OF"
# On an incremental run (OCSE_DBT_TESTS=full_builds) the data tests of models (every folder
# under models/ but the sources' YAML at the top of staging/, and the singular tests in
# tests/) are left to full builds; the tests of the raw sources, which catch bad data written
# behind the gate's back, run every time. See README, "Speed".
_MODEL_TEST_FOLDERS = sorted(
    path.relative_to(DBT_PROJECT_DIR).as_posix()
    for layer in (DBT_PROJECT_DIR / "models").iterdir()
    if layer.is_dir()
    for path in ([layer] if layer.name != "staging" else layer.iterdir())
    if path.is_dir()
) + ["tests"]
INCREMENTAL_RUN_SKIPS = tuple(f"resource_type:test,path:{p}" for p in _MODEL_TEST_FOLDERS)


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


# The alert path: fct_open_sla_breaches (and the categories its alerts name) with everything
# upstream of it. A run builds and tests these first, in a `dbt build` of their own; the
# alerts are raised and delivered next (their steps have a higher priority), and only then
# does the second `dbt build` make every other mart. An SLA breach in a new file reaches
# operations without waiting for the year-long marts, their tests and the snapshot.
ALERT_PATH_SELECT = "+fct_open_sla_breaches +dim_categories"
# Run tag, set by the alert path's build: it rebuilt staging in full, so this run is a full
# build for the rest of the marts too (what OCSE_DBT_TESTS=full_builds asks about).
FULL_BUILD_TAG = "ocse/dbt_full_build"


def _dbt_build(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    *,
    alert_path: bool,
):
    as_of = warehouse.as_of(context)
    # No --vars: T goes in the environment (macro as_of) and the reporting time zone too
    # (dbt_project.yml reads OCSE_REPORTING_TZ), so dbt can reuse the parse of prepare_dbt
    # (a change of --vars makes it re-parse the whole project, and T changes on every run).
    # Unit tests (rows in, rows out) check the SQL, not the data: the test suite runs them
    # (tests/test_dbt_unit_tests.py); a production run need not repeat them every time.
    args = ["build", "--exclude-resource-type", "unit_test"]
    full_build = context.run.tags.get(FULL_REFRESH_TAG) == "true"
    if full_build:
        args.append("--full-refresh")
        if alert_path:
            context.log.info("Full refresh requested: staging rebuilt from raw history.")
    if alert_path and not full_build:
        # Staging (incremental) lives on the alert path. The other incremental models keep
        # watermarks of their own and rebuild in full when T moves back (macro changes_mode).
        staged_as_of = warehouse.staged_as_of()
        if staged_as_of is None:
            full_build = True
        elif as_of < staged_as_of:
            args.append("--full-refresh")
            full_build = True
            last = "unknown" if staged_as_of.year == 9999 else staged_as_of.isoformat()
            context.log.info(
                f"T {as_of.isoformat()} is not after the last staged T ({last}): "
                "staging rebuilt from raw history."
            )
        if full_build:
            context.instance.add_run_tags(context.run.run_id, {FULL_BUILD_TAG: "true"})
    if not alert_path:
        run = context.instance.get_run_by_id(context.run.run_id)
        full_build = full_build or (run is not None and run.tags.get(FULL_BUILD_TAG) == "true")
    if not full_build and warehouse.settings.dbt_tests == "full_builds":
        args += ["--exclude", " ".join(INCREMENTAL_RUN_SKIPS)]
        context.log.info(
            "Incremental run: dbt tests on sources run; tests on models run on full builds "
            "(OCSE_DBT_TESTS=full_builds, see README)."
        )
    built = 0
    # dbt reads its profile (warehouse path, time zone, memory limit) and T from the
    # environment of the process it runs in: set them from this run's settings.
    env = dbt_env(warehouse.settings)
    env[AS_OF_ENV] = as_of.isoformat()
    # A test with parents on both sides of the split (a relationship from a mart to a
    # dimension on the alert path) runs in the second build, after all its parents are
    # built: the alert path takes only the tests whose parents are all on it ("cautious");
    # the second build takes every test that touches one of its models ("eager").
    env["DBT_INDIRECT_SELECTION"] = "cautious" if alert_path else "eager"
    previous = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        for event in dbt.cli(args, context=context).stream():
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
    select=ALERT_PATH_SELECT,
)
def ocse_dbt_alert_path(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
):
    """Staging, the facts as they stood at T, and the open SLA clocks, built and tested by
    `dbt build` at the run's as-of time T: what the alerts read. Staging is incremental; it
    is rebuilt from raw history when the run asks for it (tag ocse/full_refresh) or when T
    is earlier than the T it was last built at (a backfill)."""
    yield from _dbt_build(context, dbt, warehouse, alert_path=True)


def _rest_of_the_project(first: dg.AssetsDefinition) -> str:
    """A dbt selection of every model and seed that `first` does not build, by name. Not
    `exclude=`: dbt's exclusion also drops each test with an excluded parent, which would
    lose the relationship tests from the marts to dim_categories."""
    # dagster-dbt's reader caches the manifest it parsed for the assets: not read twice.
    manifest = validate_manifest(dbt_project.manifest_path)
    return " ".join(
        sorted(
            node["name"]
            for node in manifest["nodes"].values()
            if node["resource_type"] in ("model", "seed")
            and translator.get_asset_key(node) not in first.keys
        )
    )


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=translator,
    select=_rest_of_the_project(ocse_dbt_alert_path),
)
def ocse_dbt_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
):
    """Every other model (the marts of metrics.md), built and tested by `dbt build` at the
    run's as-of time T, after the alerts of this run went out."""
    yield from _dbt_build(context, dbt, warehouse, alert_path=False)


DBT_ASSETS = [ocse_dbt_alert_path, ocse_dbt_models]
MART_KEYS = [key for a in DBT_ASSETS for key in a.keys if key.path[0] == "marts"]
