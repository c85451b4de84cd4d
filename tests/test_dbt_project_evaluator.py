"""The dbt project's structure against dbt Labs' dbt_project_evaluator (vendored in
dbt/vendor/): names and folders of the layers, what each layer may depend on, primary-key
tests, documentation and test coverage, exposures. Each rule is a model of the package whose
rows are the violations; a legitimate exception goes into
dbt/seeds/dbt_project_evaluator_exceptions.csv with its reason.

The package reads only dbt's graph: it runs on an empty warehouse of its own, in seconds, and
builds nothing of the project."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import duckdb
import pytest

from tests.dbt_cli import run_dbt

SELECT = ["package:dbt_project_evaluator", "dbt_project_evaluator_exceptions"]
# Columns of a finding that say nothing about it.
NOISE = {"measured_at"}


# The package is off unless asked for (dbt_project.yml); a finding is an error.
EVALUATOR_ON = {"DBT_PROJECT_EVALUATOR_ENABLED": "true", "DBT_PROJECT_EVALUATOR_SEVERITY": "error"}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("dbt_project_evaluator")
    warehouse, target = root / "evaluator.duckdb", root / "target"
    result = run_dbt(["build", "--select", *SELECT], warehouse, target, env=EVALUATOR_ON)
    return warehouse, target, result


def _findings(warehouse: Path, relation: str) -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        cursor = conn.execute(f"select * from {relation} order by all")
        columns = [c[0] for c in cursor.description]
        return [
            ", ".join(
                f"{column}={value}"
                for column, value in zip(columns, row, strict=True)
                if value is not None and column not in NOISE
            )
            for row in cursor.fetchall()
        ]


def test_the_project_follows_the_dbt_project_evaluator_rules(evaluated):
    warehouse, target, result = evaluated
    results_file = target / "run_results.json"
    assert results_file.exists(), result.stdout[-4000:] + result.stderr[-2000:]
    results = json.loads(results_file.read_text())["results"]
    manifest = json.loads((target / "manifest.json").read_text())
    nodes = manifest["nodes"]

    # The evaluator itself must have run: a model that failed (or a test that could not
    # compile) is a broken check, not a finding.
    ok = {"model": {"success"}, "seed": {"success"}, "test": {"pass", "fail", "warn"}}
    broken = [
        f"{r['unique_id']}: {r['status']} {r['message']}"
        for r in results
        if r["status"] not in ok[nodes[r["unique_id"]]["resource_type"]]
    ]
    assert not broken, "dbt_project_evaluator did not run:\n" + "\n".join(broken)
    assert len(results) > 40, f"only {len(results)} nodes ran:\n{result.stdout[-4000:]}"

    report = []
    for r in sorted(results, key=lambda r: r["unique_id"]):
        test = nodes[r["unique_id"]]
        if test["resource_type"] != "test" or r["status"] == "pass":
            continue
        rule = nodes[test["attached_node"]]
        rows = _findings(warehouse, rule["relation_name"])
        report.append(f"{rule['name']} ({test['name']}, {r['failures']}):")
        report += [f"    {row}" for row in rows]
    assert not report, (
        "dbt_project_evaluator findings (fix them, or add a reasoned row to "
        "dbt/seeds/dbt_project_evaluator_exceptions.csv):\n" + "\n".join(report)
    )
    assert result.returncode == 0, result.stdout[-4000:]
