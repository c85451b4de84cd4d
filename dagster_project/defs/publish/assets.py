"""Publishing: the read-only serving snapshot that dashboards and exports read."""

import dagster as dg

from dagster_project.defs.dbt.assets import MART_KEYS
from dagster_project.defs.dbt.project import dbt_project
from dagster_project.defs.resources import WarehouseResource
from ocse.catalog import mart_definitions
from ocse.serving import publish_snapshot


@dg.asset(
    key=dg.AssetKey(["serving", "snapshot"]),
    # after the alerts, so the snapshot shows the outbox and delivery state of this run
    deps=[*MART_KEYS, dg.AssetKey(["alerts", "deliveries"])],
    group_name="publish",
    kinds={"duckdb"},
)
def serving_snapshot(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Copy of every published mart into a separate read-only DuckDB file, swapped in
    atomically. Runs only after the marts and their tests succeeded, so a failed run leaves
    the previous snapshot as it was."""
    settings = warehouse.settings
    as_of = warehouse.as_of(context)
    conn = warehouse.connect()
    try:
        published = publish_snapshot(
            conn,
            settings.serving,
            as_of=as_of,
            run_id=context.run.run_id,
            reporting_tz=settings.reporting_tz,
            definitions=mart_definitions(dbt_project.manifest_path),
            alerts_store=settings.alerts_store,
        )
    finally:
        conn.close()
    context.log.info(f"Published {len(published.tables)} tables to {published.path}")
    return dg.MaterializeResult(
        metadata={
            "path": str(published.path),
            "as_of": as_of.isoformat(),
            "tables": dg.MetadataValue.json(published.tables),
        }
    )
