"""Research exports: a Dagster asset of their own, outside the every-few-minutes pipeline
job, run on request (job `research_export`) for a period given in the run config."""

from datetime import date

import dagster as dg

from ocse.exports.periods import last_complete_month
from ocse.exports.research import export_name, write_research_export
from ocse.settings import get_settings


class ResearchExportConfig(dg.Config):
    """The period (ISO dates, inclusive; default: the last complete month), the grain
    (week or month) and the disclosure threshold k (default OCSE_DISCLOSURE_K, never
    below 5)."""

    start: str | None = None
    end: str | None = None
    grain: str = "month"
    k: int | None = None


@dg.asset(
    key=dg.AssetKey(["exports", "research"]),
    deps=[dg.AssetKey(["serving", "snapshot"])],
    group_name="exports",
    kinds={"csv", "parquet"},
)
def research_export(context: dg.AssetExecutionContext, config: ResearchExportConfig):
    """Anonymised research export under disclosure control (counts below k withheld, with
    complementary suppression), read from the serving snapshot: CSV and Parquet tables, a
    data dictionary and a manifest, written atomically under OCSE_EXPORT_DIR and recorded
    in the access log."""
    settings = get_settings()
    if config.start or config.end:
        if not (config.start and config.end):
            raise dg.Failure("give both start and end, or neither (the last complete month)")
        start, end = date.fromisoformat(config.start), date.fromisoformat(config.end)
    else:
        month = last_complete_month(date.today())
        start, end = month.start, month.end
    k = config.k if config.k is not None else settings.disclosure_k
    out_dir = settings.export_dir / export_name(start, end, config.grain, k)
    result = write_research_export(
        settings.serving,
        start,
        end,
        out_dir,
        grain=config.grain,
        k=k,
        username=f"dagster:{context.run.run_id[:8]}",
        role="pipeline",
        progress=context.log.info,
    )
    return dg.MaterializeResult(
        metadata={
            "path": str(out_dir),
            "covered": f"{result.covered[0]} .. {result.covered[1]}",
            "grain": result.grain,
            "k": result.k,
            "cells_suppressed": dg.MetadataValue.json(
                {t.name: t.cells_suppressed for t in result.tables}
            ),
        }
    )


research_export_job = dg.define_asset_job(
    "research_export",
    selection=dg.AssetSelection.assets(research_export),
    executor_def=dg.in_process_executor,
    description="Write a research export for the period in the run config (default: the "
    "last complete month) from the current serving snapshot.",
)
