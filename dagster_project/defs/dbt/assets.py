"""dbt models as Dagster assets (keys and groups from each model's layer folder); dbt tests
surface as asset checks, source tests included."""

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
# log, ~10 MB); a run every few minutes would fill the disk. The newest are kept to debug.
KEEP_INVOCATION_FOLDERS = 10


def _prune_invocation_folders(keep: int) -> None:
    folders = sorted(
        (DBT_PROJECT_DIR / "target").glob("ocse_dbt_models-*"),
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


translator = OcseDbtTranslator(
    settings=DagsterDbtTranslatorSettings(enable_source_tests_as_checks=True)
)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=translator,
)
def ocse_dbt_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
):
    """Staging and marts, built and tested by `dbt build` at the run's as-of time T.
    Staging is incremental; it is rebuilt from raw history when the run asks for it (tag
    ocse/full_refresh) or when T is earlier than the T it was last built at (a backfill)."""
    as_of = warehouse.as_of(context)
    # No --vars: T goes in the environment (macro as_of) and the reporting time zone too
    # (dbt_project.yml reads OCSE_REPORTING_TZ), so dbt can reuse the parse of prepare_dbt
    # (a change of --vars makes it re-parse the whole project, and T changes on every run).
    # Unit tests (rows in, rows out) check the SQL, not the data: the test suite runs them
    # (tests/test_dbt_unit_tests.py); a production run need not repeat them every time.
    args = ["build", "--exclude-resource-type", "unit_test"]
    staged_as_of = warehouse.staged_as_of()
    full_build = staged_as_of is None
    if context.run.tags.get(FULL_REFRESH_TAG) == "true":
        args.append("--full-refresh")
        full_build = True
        context.log.info("Full refresh requested: staging rebuilt from raw history.")
    elif staged_as_of is not None and as_of < staged_as_of:
        args.append("--full-refresh")
        full_build = True
        last = "unknown" if staged_as_of.year == 9999 else staged_as_of.isoformat()
        context.log.info(
            f"T {as_of.isoformat()} is not after the last staged T ({last}): "
            "staging rebuilt from raw history."
        )
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


MART_KEYS = [key for key in ocse_dbt_models.keys if key.path[0] == "marts"]
