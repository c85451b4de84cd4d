"""dbt exposures generated from the page code: `python -m dashboards.exposures [--check]`.

Each page declares the tables it reads where it opens (`open_page(page_id, TEXT, tables)` or
`frame.require_tables(snapshot, tables)`): the page refuses to draw when one is missing, and
tests/test_dashboard_truth.py records every query a page runs and checks it reads exactly
those (plus what every page reads: categories and the snapshot's metadata). This module reads
the declarations from the page files (without running them) and writes
`dbt/models/_exposures.yml`, so lineage in dbt shows exactly which page depends on which
mart. `--check` fails when the file is out of date (a test runs it).
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import yaml

from dashboards.queries import TABLES

ROOT = Path(__file__).resolve().parent.parent
PAGES_DIR = ROOT / "dashboards" / "views"
EXPOSURES_FILE = ROOT / "dbt" / "models" / "_exposures.yml"
# Every page opened by open_page reads the categories (labels); a page with the period
# filter (or that asks for the data's days itself) reads the days the data covers, from the
# two daily marts.
COMMON = ("dim_categories",)
DATA_DAYS = ("rpt_takedown_sla_daily", "rpt_report_handling_daily")
DASHBOARD_URL = "http://127.0.0.1:8501"

# Readers that are not pages: their marts are listed by hand (their code is not a page).
OTHER_EXPOSURES = [
    {
        "name": "sla_breach_alerts",
        "label": "SLA breach alerts",
        "type": "application",
        "maturity": "high",
        "description": "The alert rules (ocse/alerts/rules.py) raise and deliver breach and "
        "near-breach alerts from the open clocks and the ingest ledger, after the alert "
        "path's build (dbt selector alert_path).",
        "depends_on": [
            "ref('fct_open_sla_breaches')",
            "ref('dim_categories')",
            "ref('dim_policy_versions')",
            "ref('ops_ingest_ledger')",
        ],
        "owner": {"name": "OCSE Warehouse operations", "email": "ocse-ops@example.org"},
    },
    {
        "name": "assessment_report",
        "label": "Quarterly assessment report",
        "type": "analysis",
        "maturity": "high",
        "description": "`ocse report assessment` and the dashboard's download for the "
        "external assessment panel: HTML and PDF with the metrics and their definitions.",
        "depends_on": [
            "ref('rpt_takedown_sla_daily')",
            "ref('rpt_report_handling_daily')",
            "ref('rpt_case_outcomes_monthly')",
            "ref('rpt_category_trends_weekly')",
            "ref('rpt_tier_counts_daily')",
            "ref('dim_categories')",
        ],
        "owner": {"name": "OCSE Warehouse data team", "email": "ocse-data@example.org"},
    },
    {
        "name": "research_exports",
        "label": "Anonymised research exports",
        "type": "application",
        "maturity": "high",
        "description": "`ocse export research` and the research page: aggregates with "
        "small-cell suppression for research partners; never a user reference.",
        # the marts ocse/exports/sources.py reads
        "depends_on": [
            "ref('fct_content_takedowns')",
            "ref('fct_cases')",
            "ref('fct_user_tier_history')",
            "ref('ops_ingest_ledger')",
            "ref('dim_policy_versions')",
            "ref('dim_categories')",
            "ref('rpt_category_trends_weekly')",
            "ref('rpt_detection_quality_weekly')",
            "ref('rpt_report_handling_daily')",
        ],
        "owner": {"name": "OCSE Warehouse data team", "email": "ocse-data@example.org"},
    },
]


def _strings(node: ast.AST) -> tuple[str, ...] | None:
    if isinstance(node, ast.Tuple) and all(
        isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts
    ):
        return tuple(e.value for e in node.elts)
    return None


def declared_reads(path: Path) -> tuple[str, tuple[str, ...]] | None:
    """(page id, tables) a page file declares, or None for a file that is not a page."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    page_id: str | None = None
    tables: list[str] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and any(getattr(t, "id", None) == "OPTIONAL_READS" for t in node.targets)
            and _strings(node.value)
        ):
            tables += list(_strings(node.value))  # read only when the snapshot has them
            continue
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        if name == "open_page" and len(node.args) >= 3:
            page_id = node.args[0].value  # type: ignore[union-attr]
            tables += [*COMMON, *(_strings(node.args[2]) or ())]
        elif name == "require_page" and node.args and isinstance(node.args[0], ast.Constant):
            page_id = page_id or node.args[0].value
        elif name == "require_tables" and len(node.args) >= 2:
            tables += list(_strings(node.args[1]) or ())
        elif name in ("period_filter", "data_days"):
            tables += DATA_DAYS
    if page_id is None:
        return None
    return page_id, tuple(dict.fromkeys(tables))


def page_reads() -> dict[str, tuple[str, ...]]:
    found = (declared_reads(path) for path in sorted(PAGES_DIR.glob("*.py")))
    return dict(item for item in found if item is not None)


def _ref(table: str) -> str | None:
    schema, _, name = TABLES[table].partition(".")
    return f"ref('{name}')" if schema == "marts" else None


def exposures() -> dict:
    from ocse.access import PAGE_ACCESS

    pages = []
    for page_id, tables in page_reads().items():
        refs = [ref for ref in map(_ref, tables) if ref]
        others = sorted(TABLES[t] for t in tables if _ref(t) is None)
        roles = ", ".join(sorted(PAGE_ACCESS.get(page_id, ())))
        description = f"Dashboard page `{page_id}` (roles: {roles})."
        if others:
            description += f" Also reads {', '.join(others)} (not dbt models)."
        if not refs:
            continue  # reads nothing dbt builds (e.g. the access log)
        pages.append(
            {
                "name": f"{page_id}_page",
                "label": f"Dashboard: {page_id.replace('_', ' ')}",
                "type": "dashboard",
                "maturity": "high",
                "url": f"{DASHBOARD_URL}/{page_id}",
                "description": description,
                "depends_on": refs,
                "owner": {"name": "OCSE Warehouse data team", "email": "ocse-data@example.org"},
            }
        )
    return {"version": 2, "exposures": pages + OTHER_EXPOSURES}


def render() -> str:
    header = (
        "# Generated by `python -m dashboards.exposures` from the tables each page declares\n"
        "# (open_page / require_tables); tests/test_dashboard_truth.py checks it is current\n"
        "# and that every page reads exactly what it declares. Do not edit by hand.\n"
    )
    return header + yaml.safe_dump(exposures(), sort_keys=False, width=100, allow_unicode=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if EXPOSURES_FILE.read_text(encoding="utf-8") != text:
            print(f"{EXPOSURES_FILE} is out of date: run python -m dashboards.exposures")
            return 1
        return 0
    EXPOSURES_FILE.write_text(text, encoding="utf-8")
    print(f"wrote {EXPOSURES_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
