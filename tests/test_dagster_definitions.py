"""The Dagster definitions an operator relies on in the UI and the daemon."""

from __future__ import annotations

import dagster as dg

from dagster_project.definitions import defs
from dagster_project.defs.ingest.sensors import landing_sensor
from tests.feeds import row, write_csv


def test_runs_execute_in_one_process():
    """DuckDB allows one writing process: with a process per step, the parallel contract
    checks of a daemon-launched run failed on the warehouse lock."""
    assert defs.resolve_job_def("ocse_pipeline").executor_def is dg.in_process_executor
    assert defs.resolve_implicit_global_asset_job_def().executor_def is dg.in_process_executor


def test_lineage_runs_from_feeds_through_dbt_to_the_snapshot():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {
        "raw/reports",
        "ingest/ledger",
        "staging/stg_reports__reports",
        "marts/ops_ingest_ledger",
        "serving/snapshot",
    } <= keys

    def parents(*key: str) -> set[str]:
        return {p.to_user_string() for p in graph.get(dg.AssetKey(list(key))).parent_keys}

    # the gate's raw table, its one base view, the staged current versions
    assert parents("staging", "base_raw__reports") == {"raw/reports"}
    assert parents("staging", "stg_reports__reports") == {"staging/base_raw__reports"}
    assert parents("staging", "stg_ingest__ledger") == {"ingest/ledger"}
    snapshot_parents = {
        p.to_user_string() for p in graph.get(dg.AssetKey(["serving", "snapshot"])).parent_keys
    }
    assert {"marts/ops_ingest_ledger", "marts/ops_quarantine"} <= snapshot_parents


def test_contract_checks_block_downstream():
    checks = [c for c in defs.asset_checks if "contract_expectations" in str(c.check_keys)]
    assert len(checks) == 4
    assert all(spec.blocking for c in checks for spec in c.check_specs)


def test_every_dbt_build_waits_for_the_contract_checks():
    """Blocking is not enough: Dagster does not make an op wait for the blocking checks of an
    asset when the op holds checks of that asset itself (dbt's source tests as checks did
    that, and dbt built staging before Great Expectations had looked at the rows)."""
    from dagster._core.execution.api import create_execution_plan

    plan = create_execution_plan(defs.resolve_job_def("ocse_pipeline"))
    upstream = {
        step.key: {
            handle.step_key
            for step_input in step.step_inputs
            for handle in step_input.get_step_output_handle_dependencies()
        }
        for step in plan.get_steps_to_execute_in_topo_order()
    }

    def before(step: str) -> set[str]:
        seen, todo = set(), [step]
        while todo:
            for parent in upstream[todo.pop()] - seen:
                seen.add(parent)
                todo.append(parent)
        return seen

    contract_steps = {key for key in upstream if key.endswith("_contract_expectations")}
    assert len(contract_steps) == 4
    # the alert path reads the raw tables; the rest reads them through the alert path's views
    assert contract_steps <= upstream["ocse_dbt_alert_path"]
    assert contract_steps <= before("ocse_dbt_models")
    # The alerts follow the alert path, not the rest of the marts.
    assert "ocse_dbt_models" not in upstream["alerts__outbox"]


def test_landing_sensor_requests_a_run_only_when_files_change(ocse_env):
    # The sensor reads the run queue (it skips while a run waits: tests/test_run_lease.py).
    landing = ocse_env["landing"]
    instance = dg.DagsterInstance.ephemeral()
    with dg.build_sensor_context(instance=instance) as ctx:
        assert isinstance(landing_sensor(ctx), dg.SkipReason)  # empty landing
    write_csv(landing / "reports" / "a.csv", [row("reports")])
    write_csv(landing / "reports" / "b.csv.tmp", [row("reports")])
    with dg.build_sensor_context(instance=instance) as ctx:
        first = landing_sensor(ctx)
        assert isinstance(first, dg.RunRequest)
        cursor = ctx.cursor
    with dg.build_sensor_context(instance=instance, cursor=cursor) as ctx:
        assert isinstance(landing_sensor(ctx), dg.SkipReason)  # nothing new (tmp ignored)
    write_csv(landing / "reports" / "c.csv", [row("reports", report_id="rpt-9")])
    with dg.build_sensor_context(instance=instance, cursor=cursor) as ctx:
        second = landing_sensor(ctx)
        assert isinstance(second, dg.RunRequest) and second.run_key != first.run_key


def test_the_library_never_imports_the_orchestration_layer():
    """ocse is the library; dagster_project orchestrates it. An import of dagster_project
    from ocse would make the library call back into its caller (the run tags live in
    ocse.run_tags; `ocse run` finds the code location by pyproject's [tool.dagster])."""
    import ast
    from pathlib import Path

    from ocse.pipeline import code_location

    offenders = []
    for path in sorted((Path(__file__).resolve().parents[1] / "ocse").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [
                f"{path.name}: {n}" for n in names if n.split(".")[0] == "dagster_project"
            ]
    assert offenders == []
    assert code_location() is defs
