"""Blocking contract checks: the Great Expectations suite of each feed, derived from its
contract, run on the rows this run loaded. A failure stops every downstream asset."""

import dagster as dg

from dagster_project.defs.ingest.assets import RAW_KEYS
from dagster_project.defs.resources import WarehouseResource
from ocse.contracts import FEEDS, load_contract


def _new_rows_range(context: dg.AssetCheckExecutionContext, feed: str) -> tuple[int, int]:
    event = context.instance.get_latest_materialization_event(RAW_KEYS[feed])
    if event is None or event.asset_materialization is None:
        return -1, -1
    meta = event.asset_materialization.metadata
    first, last = meta.get("first_file_id"), meta.get("last_file_id")
    return (first.value if first else -1), (last.value if last else -1)


def _contract_check(feed: str) -> dg.AssetChecksDefinition:
    contract = load_contract(feed)

    @dg.asset_check(
        asset=RAW_KEYS[feed],
        name="contract_expectations",
        blocking=True,
        description=f"Great Expectations suite from data_contracts/{contract.path.name} over the "
        "rows loaded by the latest run (a seeded sample above OCSE_GE_SAMPLE_ROWS rows).",
    )
    def check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
        first, last = _new_rows_range(context, feed)
        if first < 0:
            return dg.AssetCheckResult(passed=True, metadata={"rows_validated": 0})
        limit = warehouse.settings.ge_sample_rows
        conn = warehouse.connect()
        try:
            total = conn.execute(
                f"select count(*) from raw.{feed} where _file_id between ? and ?", [first, last]
            ).fetchone()[0]
            sample = (
                f" using sample reservoir({limit} rows) repeatable (42)" if total > limit else ""
            )
            frame = conn.execute(
                f"select * from (select * from raw.{feed} where _file_id between ? and ?){sample}",
                [first, last],
            ).df()
        finally:
            conn.close()
        # Imported here: Great Expectations takes seconds to import, the definitions should not.
        from ocse.ingest.expectations import validate_frame
        from ocse.ingest.validation import plausibility_window

        window = plausibility_window(contract, warehouse.as_of(context))
        result = validate_frame(contract, frame, window)
        return dg.AssetCheckResult(
            passed=result.success,
            severity=dg.AssetCheckSeverity.ERROR,
            description=None if result.success else "; ".join(result.failed),
            metadata={
                "rows_in_batch": total,
                "rows_validated": result.rows_validated,
                "sampled": total > limit,
                "expectations": result.expectations,
                "failed_expectations": dg.MetadataValue.json(result.failed),
            },
        )

    return check


contract_checks = [_contract_check(feed) for feed in FEEDS]
