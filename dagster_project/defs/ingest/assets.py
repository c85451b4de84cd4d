"""The ingestion gate as Dagster assets: landing files -> raw history, ledger, quarantine."""

import dagster as dg

from dagster_project.defs.resources import WarehouseResource
from ocse.contracts import FEEDS, load_contract
from ocse.ingest.gate import ingest_landing

RAW_KEYS = {feed: dg.AssetKey(["raw", feed]) for feed in FEEDS}
LEDGER_KEY = dg.AssetKey(["ingest", "ledger"])
QUARANTINE_KEY = dg.AssetKey(["ingest", "quarantine"])


def _raw_spec(feed: str) -> dg.AssetSpec:
    contract = load_contract(feed)
    return dg.AssetSpec(
        RAW_KEYS[feed],
        group_name="ingest",
        description=(
            f"Every valid version of every `{feed}` record (contract "
            f"{contract.path.name} v{contract.version}), personal identifiers pseudonymised, "
            "with the file and row each came from."
        ),
        metadata={"contract": f"data_contracts/{contract.path.name}"},
        kinds={"duckdb"},
    )


@dg.multi_asset(
    specs=[_raw_spec(feed) for feed in FEEDS]
    + [
        dg.AssetSpec(
            LEDGER_KEY,
            group_name="ingest",
            description="One row per landed file: hash, outcome, rows read/loaded/quarantined.",
            kinds={"duckdb"},
        ),
        dg.AssetSpec(
            QUARANTINE_KEY,
            group_name="ingest",
            description="One row per row that broke its contract, with reason codes "
            "(identifiers pseudonymised).",
            kinds={"duckdb"},
        ),
    ],
    can_subset=False,
)
def landing_gate(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Ingest every new landed file: validate against its contract, pseudonymise personal
    identifiers, load valid rows, quarantine the rest, record the file in the ledger. Each
    file in one transaction; files already in the ledger are skipped (idempotent)."""
    settings = warehouse.settings
    key = warehouse.pseudonym_key()  # fails clearly, before anything is read, if no key
    conn = warehouse.connect()
    try:
        summary = ingest_landing(conn, settings.landing_dir, key, progress=context.log.info)
    finally:
        conn.close()
    for feed in FEEDS:
        files = [f for f in summary.files if f.feed == feed]
        loaded_ids = [f.file_id for f in files if f.outcome in ("loaded", "partially_quarantined")]
        yield dg.MaterializeResult(
            asset_key=RAW_KEYS[feed],
            metadata={
                "files": len(files),
                "rows_loaded": summary.count("rows_loaded", feed),
                "rows_quarantined": summary.count("rows_quarantined", feed),
                # The contract check validates exactly the rows these files brought.
                "first_file_id": min(loaded_ids) if loaded_ids else -1,
                "last_file_id": max(loaded_ids) if loaded_ids else -1,
            },
        )
    outcomes = summary.outcomes()
    yield dg.MaterializeResult(
        asset_key=LEDGER_KEY,
        metadata={
            "files_processed": len(summary.files),
            **{f"files_{outcome}": n for outcome, n in sorted(outcomes.items())},
        },
    )
    yield dg.MaterializeResult(
        asset_key=QUARANTINE_KEY,
        metadata={
            "rows_quarantined": summary.count("rows_quarantined"),
            "reasons": dg.MetadataValue.json(dict(summary.reasons().most_common())),
        },
    )
