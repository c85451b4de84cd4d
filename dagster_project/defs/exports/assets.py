"""Research exports: a Dagster asset of their own, outside the every-few-minutes pipeline
job, run on request (job `research_export`) for a period given in the run config."""

from datetime import date

import dagster as dg

from ocse.access import release_register
from ocse.exports.periods import last_complete_month
from ocse.exports.research import export_name, write_research_export
from ocse.settings import get_settings


class ResearchExportConfig(dg.Config):
    """The research partner of the release register (`ocse releases list`), the period (ISO
    dates, inclusive; default: the last complete month), the grain (week or month; default
    the partner's, when it has one) and the disclosure threshold k (default the partner's
    registered k, never below it)."""

    partner: str
    start: str | None = None
    end: str | None = None
    grain: str | None = None
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
    data dictionary and a manifest, written atomically under OCSE_EXPORT_DIR, for a partner
    of the release register and within its rules, recorded in the register and the access
    log."""
    settings = get_settings()
    if config.start or config.end:
        if not (config.start and config.end):
            raise dg.Failure("give both start and end, or neither (the last complete month)")
        start, end = date.fromisoformat(config.start), date.fromisoformat(config.end)
    else:
        month = last_complete_month(date.today())
        start, end = month.start, month.end
    grain, k = release_register(settings).terms(config.partner, config.grain, config.k)
    out_dir = settings.export_dir / export_name(start, end, grain, k)
    result = write_research_export(
        settings.serving,
        start,
        end,
        out_dir,
        partner=config.partner,
        grain=grain,
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
