"""dbt unit tests (rows in, rows out) for every rule of policy.md and every definition of
metrics.md, and the dbt project's own integrity: a metric that silently changed meaning
would fail here before it reached a dashboard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocse.warehouse import connect, ensure_schema
from tests.dbt_cli import run_dbt


@pytest.fixture(scope="module")
def empty_warehouse(tmp_path_factory) -> tuple[Path, Path]:
    """A warehouse with every relation dbt knows, but no rows (`dbt build --empty`): unit
    tests need their inputs' columns, not their data."""
    root = tmp_path_factory.mktemp("dbt_unit")
    warehouse, target = root / "ocse.duckdb", root / "target"
    conn = connect(warehouse)
    ensure_schema(conn)
    conn.close()
    built = run_dbt(
        [
            "build",
            "--empty",
            "--exclude-resource-type",
            "unit_test",
            "--exclude-resource-type",
            "test",
            "--vars",
            json.dumps({"as_of": "2025-06-30T16:00:00Z"}),
        ],
        warehouse,
        target,
    )
    assert built.returncode == 0, built.stdout[-4000:]
    return warehouse, target


def test_every_dbt_unit_test_passes(empty_warehouse):
    warehouse, target = empty_warehouse
    result = run_dbt(["test", "--select", "test_type:unit"], warehouse, target)
    failures = [line for line in result.stdout.splitlines() if "FAIL" in line or "ERROR" in line]
    assert result.returncode == 0, "\n".join(failures) or result.stdout[-4000:]
    manifest = json.loads((target / "manifest.json").read_text())
    tested = {test["model"] for test in manifest["unit_tests"].values()}
    marts = {
        node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        and node["schema"] == "marts"
        and not node["name"].startswith(("ops_", "dim_categories", "dim_policy_"))
    }
    # every mart with a rule in it has rows-in-rows-out tests; the policy and category marts
    # publish the reference models unchanged, and those are tested
    reference = {"int_policy_versions", "int_policy_sla_targets", "int_policy_tier_rules"}
    assert marts | reference <= tested, f"without unit tests: {sorted(marts | reference - tested)}"
