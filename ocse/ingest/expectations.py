"""The Great Expectations suite of a feed, derived from its contract.

It validates what the gate *loaded* (`raw.<feed>`, typed, pseudonymised): a second,
independent implementation of the contract, run as a blocking Dagster asset check so that a
gate bug can never flow into the marts. GX 1.x validates pandas DataFrames; large batches are
validated on a seeded random sample (settings.ge_sample_rows), which is recorded.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

# No usage analytics from GX: this machine has no internet and the data is sensitive.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.expectations.row_conditions import Column

from ocse.contracts import EMAIL_LIKE, LINEAGE_COLUMNS, PHONE_LIKE, FeedContract
from ocse.ingest.validation import PlausibilityWindow, plausibility_window

PSEUDONYM_REGEX = r"^p\d+:[0-9a-f]{64}$"
PERSONAL_DATA_REGEX = f"(?:{EMAIL_LIKE})|(?:{PHONE_LIKE})"

# GX logs a line per expectation at INFO; the check's own metadata is what operators read.
logging.getLogger("great_expectations").setLevel(logging.WARNING)


def _condition(when: dict):
    col = Column(when["column"])
    if "in" in when:
        return col.is_in(when["in"])
    return col.is_not_in(when["not_in"])


def _negated(when: dict) -> dict:
    if "in" in when:
        return {"column": when["column"], "not_in": when["in"]}
    return {"column": when["column"], "in": when["not_in"]}


def build_expectations(
    contract: FeedContract, window: PlausibilityWindow | None = None
) -> list[gxe.Expectation]:
    """The suite of `contract`. `window`: the plausibility window timestamps must lie in
    (default: the contract's at this moment, which is never narrower than the gate's was)."""
    window = window or plausibility_window(contract)
    stored = [f.stored_name for f in contract.fields] + [n for n, _ in LINEAGE_COLUMNS]
    exps: list[gxe.Expectation] = [
        # Exactly the contract's columns: no unknown column, no raw personal identifier.
        gxe.ExpectTableColumnsToMatchSet(column_set=stored, exact_match=True),
    ]
    for f in contract.fields:
        col = f.stored_name
        if f.required:
            exps.append(gxe.ExpectColumnValuesToNotBeNull(column=col))
        if f.personal:
            exps.append(gxe.ExpectColumnValuesToMatchRegex(column=col, regex=PSEUDONYM_REGEX))
        if f.valid_values and f.logical_type != "array":
            exps.append(gxe.ExpectColumnValuesToBeInSet(column=col, value_set=list(f.valid_values)))
        if f.logical_type == "timestamp":
            exps.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=col, min_value=window.not_before, max_value=window.not_after
                )
            )
        if f.pattern:
            exps.append(gxe.ExpectColumnValuesToMatchRegex(column=col, regex=f.pattern))
            exps.append(
                gxe.ExpectColumnValuesToNotMatchRegex(column=col, regex=PERSONAL_DATA_REGEX)
            )
        if f.minimum is not None or f.maximum is not None:
            exps.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=col, min_value=f.minimum, max_value=f.maximum
                )
            )
    for rule in contract.rules:
        check, col = rule.check, rule.check["column"]
        match check["kind"]:
            case "not_before":
                exps.append(
                    gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                        column_A=col,
                        column_B=check["other"],
                        or_equal=True,
                        ignore_row_if="either_value_is_missing",
                    )
                )
            case "present_iff":
                exps.append(
                    gxe.ExpectColumnValuesToNotBeNull(
                        column=col, row_condition=_condition(check["when"])
                    )
                )
                exps.append(
                    gxe.ExpectColumnValuesToBeNull(
                        column=col, row_condition=_condition(_negated(check["when"]))
                    )
                )
            case "present_when":
                exps.append(
                    gxe.ExpectColumnValuesToNotBeNull(
                        column=col, row_condition=_condition(check["when"])
                    )
                )
            case "absent_when":
                exps.append(
                    gxe.ExpectColumnValuesToBeNull(
                        column=col, row_condition=_condition(check["when"])
                    )
                )
            case other:
                raise ValueError(f"no expectation for contract check kind {other!r}")
    return exps


@dataclass
class SuiteResult:
    success: bool
    rows_validated: int
    expectations: int
    failed: list[str]  # "<expectation type>(<column>): <unexpected count>" - never values


def validate_frame(
    contract: FeedContract, frame: pd.DataFrame, window: PlausibilityWindow | None = None
) -> SuiteResult:
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas(name=f"ocse_{contract.feed}")
    asset = source.add_dataframe_asset(name=contract.feed)
    batch = asset.add_batch_definition_whole_dataframe("new_rows").get_batch(
        batch_parameters={"dataframe": frame}
    )
    suite = gx.ExpectationSuite(name=f"{contract.feed}_contract_v{contract.version}")
    for exp in build_expectations(contract, window):
        suite.add_expectation(exp)
    result = batch.validate(suite, result_format="SUMMARY")
    failed = []
    for r in result.results:
        if not r.success:
            cfg = r.expectation_config
            column = cfg.kwargs.get("column") or cfg.kwargs.get("column_A") or "table"
            failed.append(
                f"{cfg.type}({column}): {r.result.get('unexpected_count', '?')} unexpected"
            )
    return SuiteResult(
        success=bool(result.success),
        rows_validated=len(frame),
        expectations=len(result.results),
        failed=failed,
    )
