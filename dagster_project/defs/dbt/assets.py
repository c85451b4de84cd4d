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
from dagster_project.defs.resources import WarehouseResource


class OcseDbtTranslator(DagsterDbtTranslator):
    """Models get the key [<layer>, <model>] and the group of their domain folder
    (models/<layer>/<domain>/...); sources get [<source schema>, <table>], which is exactly
    the key of the ingestion asset that writes them."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        layer = dbt_resource_props["fqn"][1]
        return dg.AssetKey([layer, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        meta_group = dbt_resource_props.get("meta", {}).get("dagster", {}).get("group")
        if meta_group:
            return meta_group
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
    """Staging and marts, built and tested by `dbt build` at the run's as-of time T."""
    dbt_vars = {
        "as_of": warehouse.as_of(context).isoformat(),
        "reporting_tz": warehouse.settings.reporting_tz,
    }
    built = 0
    for event in dbt.cli(["build", "--vars", json.dumps(dbt_vars)], context=context).stream():
        if isinstance(event, dg.Output):
            built += 1
            context.log.info(f"dbt built {event.output_name} ({built} models so far)")
        elif isinstance(event, dg.AssetCheckResult) and not event.passed:
            context.log.warning(f"dbt test failed: {event.check_name} on {event.asset_key}")
        yield event


MART_KEYS = [key for key in ocse_dbt_models.keys if key.path[0] == "marts"]
