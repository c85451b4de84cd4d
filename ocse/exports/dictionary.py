"""The data dictionary of a publication, generated from the dbt docs in the snapshot.

Every measure that comes straight from a mart column quotes that column's dbt description
(`meta.definitions`, copied into the serving snapshot by the run that built the numbers), so
the dictionary and the marts cannot drift apart. The few measures the exports derive
themselves (`exposed`, the list and data-quality counts) are described here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ocse.exports.disclosure import MIN_K
from ocse.exports.sources import LATE_FILE_MINUTES
from ocse.exports.tables import ALL, ProtectedTable

# (table, measure) -> (mart, column) whose dbt description defines it
MART_COLUMNS: dict[str, dict[str, tuple[str, str]]] = {
    "category_trends": {
        m: ("rpt_category_trends_weekly", m)
        for m in (
            "confirmed_hits",
            "reports_received",
            "takedowns",
            "proactive_takedowns",
            "proactive_share",
        )
    },
    "takedown_sla": {
        **{
            m: ("rpt_takedown_sla_daily", m)
            for m in (
                "takedowns",
                "prevented",
                "within_sla",
                "breached",
                "compliance_rate",
                "median_exposure_minutes",
                "p90_exposure_minutes",
                "evidence_on_time_rate",
            )
        },
        "evidence_on_time": ("fct_content_takedowns", "is_evidence_on_time"),
    },
    "report_handling": {
        m: ("rpt_report_handling_daily", m)
        for m in (
            "received",
            "ack_decided",
            "ack_on_time",
            "ack_compliance_rate",
            "resolution_decided",
            "resolution_on_time",
            "resolution_compliance_rate",
            "resolved",
            "feedback_sent",
            "feedback_rate",
        )
    },
    "case_outcomes": {
        m: ("rpt_case_outcomes_monthly", m)
        for m in (
            "cases_opened",
            "confirmed",
            "referred",
            "referral_decided",
            "referral_on_time",
            "referral_compliance_rate",
            "authority_accepted",
            "prosecuted",
            "convicted",
            "victims",
            "support_offered",
            "support_accepted",
            "median_hours_to_referral",
        )
    },
    "detection_quality": {
        m: ("rpt_detection_quality_weekly", m)
        for m in (
            "hits",
            "reviewed",
            "confirmed",
            "false_positives",
            "pending",
            "precision",
            "median_minutes_to_review",
        )
    },
    "data_quality": {
        m: ("ops_ingest_ledger", m) for m in ("rows_read", "rows_loaded", "rows_quarantined")
    },
}

OWN_DEFINITIONS = {
    "exposed": "Takedowns that were not prevented (the content was visible): takedowns - "
    "prevented. The units over which the exposure quantiles are taken.",
    "evidence_on_time": "Takedowns with evidence preserved at or before the takedown.",
    "accounts_at_end": "Accounts in this tier, for this rule, at the end of the period (or at "
    "the snapshot's as-of time T when the period ends later), from "
    "`fct_user_tier_history`.",
    "entries": "Times an account entered this tier during the period (its previous stretch "
    "had another tier, or it had none), attributed to the rule that put it there.",
    "files": "Files processed by the ingestion gate in the scope (by ingestion date).",
    "files_rejected": "Of those, rejected as a whole (a file-level problem).",
    "files_duplicate": "Of those, duplicate deliveries (same bytes as an earlier file).",
    "files_late": f"Of those, processed more than {LATE_FILE_MINUTES} minutes after they "
    "landed: late data (the one-hour CSAM rule cannot be watched on data that old).",
    "quarantine_rate": "rows_quarantined / rows_read.",
    "late_file_rate": "files_late / files.",
}

DIMENSIONS = {
    "category_code": ("dim_categories", "category_code"),
    "detection_method": ("rpt_detection_quality_weekly", "detection_method"),
}

FIXED_COLUMNS = {
    "period_start": "First day of the period (local date in the reporting time zone): a "
    "Monday for weeks, the 1st for months and quarters.",
    "period_end": "Last day of the period (inclusive).",
    "list_rule": "`<tier>:<rule id>` of policy.md (e.g. `black:zero_tolerance`); `black` and "
    "`grey` are the tier subtotals.",
    "feed": "The landing feed.",
    "suppressed": "The measures of this row withheld by disclosure control, separated by `|` "
    "(empty: none). A withheld value is empty in CSV and null in Parquet.",
}


@dataclass(frozen=True)
class ColumnDoc:
    name: str
    type: str
    description: str
    defined_by: str | None  # marts.<table>.<column>
    disclosure: str


def _kind(table: ProtectedTable, column: str) -> tuple[str, str]:
    spec = table.spec
    k = table.k
    if column in spec.counts:
        extra = ""
        for magnitude, units in spec.contributors:
            if magnitude == column:
                extra = f", or when fewer than {k} {units} contribute to it"
        return (
            "integer",
            f"count: withheld when below {k} (zeros too){extra}, "
            "or to protect another withheld cell",
        )
    for rate in spec.rates:
        if rate.name == column:
            return "double", (
                f"rate {rate.numerator} / {rate.denominator}: published only when both counts are"
            )
    for quantile in spec.quantiles:
        if quantile.name == column:
            need = max(k, math.ceil(k / (2 * min(quantile.q, 1 - quantile.q)) - 1e-9))
            return "double", (
                f"quantile {quantile.q:g} over `{quantile.units}`: published only when "
                f"`{quantile.units}` is and is at least {need}"
            )
    if column in ("period_start", "period_end"):
        return "date", "none"
    return "string", "none"


def column_docs(table: ProtectedTable, definitions: dict[tuple[str, str | None], str]):
    docs = []
    sources = MART_COLUMNS.get(table.name, {})
    for column in table.columns():
        type_, disclosure = _kind(table, column)
        defined_by = None
        if column in sources:
            mart, mart_column = sources[column]
            defined_by = f"marts.{mart}.{mart_column}"
            text = definitions.get((mart, mart_column), "")
            if type_ == "integer":
                text = f"Summed over the period. {text}"
            elif column in table.data.measures and "quantile" in disclosure:
                text = f"Taken over every unit of the period (not an average of days). {text}"
        elif column in DIMENSIONS:
            mart, mart_column = DIMENSIONS[column]
            defined_by = f"marts.{mart}.{mart_column}"
            text = definitions.get((mart, mart_column), "") + (
                f" `{ALL}`: every group together; `csam`: the CSAM categories together."
            )
        else:
            text = OWN_DEFINITIONS.get(column) or FIXED_COLUMNS.get(column, "")
        docs.append(ColumnDoc(column, type_, text.strip(), defined_by, disclosure))
    return docs


def disclosure_rules(k: int) -> list[str]:
    return [
        f"Every count below k = {k} is withheld, zeros included (the minimum k any export "
        f"may use is {MIN_K}). Victims are also withheld when fewer than k cases contribute.",
        "Complementary suppression: further cells are withheld so that no withheld cell can "
        "be worked out from the published ones, using every equation a reader can write: "
        "the `all` and `csam` rows are sums of their groups, identities within a row "
        "(takedowns = within_sla + breached = prevented + exposed; hits = reviewed + "
        "pending; reviewed = confirmed + false_positives; rows_read = rows_loaded + "
        "rows_quarantined), the same quantity in two tables (reports received, takedowns, "
        "confirmed hits), and the known order between counts (proactive <= takedowns, ...). "
        "Where one equation holds a single withheld cell, or withheld cells adding up to "
        "less than k, the smallest published cell of that equation is withheld too; then "
        "every withheld cell is checked to take more than one value among the non-negative "
        "integer solutions of all those equations together.",
        "A rate is published only when its numerator and denominator both are. A quantile "
        "is published only when its unit count is and at least k/2 units lie on each side "
        "of it (median: at least k units; 90th percentile: at least 5k).",
        "There are no totals over several periods: each period is protected on its own, so "
        "every export shows the same cells for the same period and grain.",
        "No user reference, content, report or case id, file name, free text or time finer "
        "than a day is published.",
    ]


def dictionary_json(publication, definitions) -> dict:
    return {
        "publication": publication.describe(),
        "conventions": [
            "Periods are local dates in the reporting time zone "
            f"({publication.info.reporting_tz}); weeks are ISO weeks starting on Monday.",
            "Each period has a row per group, per subtotal (`csam`) and for all groups "
            "(`all`). Counts add up: the `all` row is the sum of the group rows.",
            "An empty value (CSV) or null (Parquet) is a withheld value, named in the row's "
            "`suppressed` column, or a cell that cannot exist (no takedown is "
            "`unclassified`), which is never named there.",
            "Rates are fractions in [0, 1] rounded to 4 decimals; quantiles are continuous "
            "(`quantile_cont`) and rounded to 1 decimal.",
        ],
        "disclosure_control": disclosure_rules(publication.k),
        "tables": [
            {
                "name": table.name,
                "title": table.spec.title,
                "description": table.spec.description,
                "grain": table.data.periods[0].grain,
                "files": [f"{table.name}.csv", f"{table.name}.parquet"],
                "source_marts": [
                    {"name": f"marts.{mart}", "description": definitions.get((mart, None), "")}
                    for mart in table.spec.source
                ],
                "columns": [doc.__dict__ for doc in column_docs(table, definitions)],
            }
            for table in publication.tables
        ],
    }


def dictionary_markdown(content: dict) -> str:
    pub = content["publication"]
    lines = [
        f"# Data dictionary: {pub['title']}",
        "",
        f"- Period covered: {pub['covered_period']['from']} to {pub['covered_period']['to']} "
        f"(requested {pub['requested_period']['from']} to {pub['requested_period']['to']})",
        f"- Grain: {pub['grain']}; disclosure threshold k = {pub['k']}",
        f"- Policy version(s) in force: {', '.join(map(str, pub['policy_versions'])) or 'none'}",
        f"- Data as of {pub['snapshot']['as_of_date']} (reporting time zone "
        f"{pub['snapshot']['reporting_time_zone']}), serving snapshot run "
        f"{pub['snapshot']['run_id']}",
        "",
        "## Conventions",
        "",
        *(f"- {line}" for line in content["conventions"]),
        "",
        "## Disclosure control",
        "",
        *(f"{i}. {line}" for i, line in enumerate(content["disclosure_control"], start=1)),
        "",
    ]
    for table in content["tables"]:
        lines += [
            f"## `{table['name']}`: {table['title']}",
            "",
            table["description"],
            "",
            f"Grain: {table['grain']}. Files: {', '.join(f'`{f}`' for f in table['files'])}.",
            "",
            "Computed from:",
            "",
            *(
                f"- `{m['name']}`: {' '.join(m['description'].split())}"
                for m in table["source_marts"]
            ),
            "",
            "| column | type | definition | disclosure control |",
            "|---|---|---|---|",
        ]
        for col in table["columns"]:
            text = " ".join(col["description"].split()).replace("|", "\\|")
            if col["defined_by"]:
                text += f" (`{col['defined_by']}`)"
            lines.append(f"| `{col['name']}` | {col['type']} | {text} | {col['disclosure']} |")
        lines.append("")
    return "\n".join(lines)


def load_definitions(conn) -> dict[tuple[str, str | None], str]:
    return {
        (table, column): description
        for table, column, description in conn.execute(
            "select table_name, column_name, description from meta.definitions"
        ).fetchall()
    }
