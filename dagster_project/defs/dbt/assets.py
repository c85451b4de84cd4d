"""dbt models as Dagster assets (keys and groups from each model's layer folder); dbt tests
surface as asset checks, source tests included."""

import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from dagster_project.defs.dbt.project import dbt_project
from dagster_project.defs.resources import FULL_REFRESH_TAG, WarehouseResource


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
    dbt_vars = {"as_of": as_of.isoformat(), "reporting_tz": warehouse.settings.reporting_tz}
    # Unit tests (rows in, rows out) check the SQL, not the data: the test suite runs them
    # (tests/test_dbt_unit_tests.py); a production run need not repeat them every time.
    args = ["build", "--vars", json.dumps(dbt_vars), "--exclude-resource-type", "unit_test"]
    staged_as_of = warehouse.staged_as_of()
    if context.run.tags.get(FULL_REFRESH_TAG) == "true":
        args.append("--full-refresh")
        context.log.info("Full refresh requested: staging rebuilt from raw history.")
    elif staged_as_of is not None and as_of < staged_as_of:
        args.append("--full-refresh")
        last = "unknown" if staged_as_of.year == 9999 else staged_as_of.isoformat()
        context.log.info(
            f"T {as_of.isoformat()} is not after the last staged T ({last}): "
            "staging rebuilt from raw history."
        )
    built = 0
    for event in dbt.cli(args, context=context).stream():
        if isinstance(event, dg.Output):
            built += 1
            context.log.info(f"dbt built {event.output_name} ({built} models so far)")
        elif isinstance(event, dg.AssetCheckResult) and not event.passed:
            context.log.warning(f"dbt test failed: {event.check_name} on {event.asset_key}")
        yield event


MART_KEYS = [key for key in ocse_dbt_models.keys if key.path[0] == "marts"]
