"""The log of one run's `dbt build`: dagster-dbt writes each call's artifacts and log into a
folder of its own, dbt/target/<asset definition>-<first 7 characters of the run id>-<random>
(pruned to the newest few by the dbt asset)."""

from __future__ import annotations

from ocse.settings import PROJECT_ROOT


def dbt_build_log(run_id: str) -> str:
    logs = list((PROJECT_ROOT / "dbt" / "target").glob(f"ocse_dbt_models-{run_id[:7]}-*/dbt.log"))
    assert len(logs) == 1, f"expected one dbt log for run {run_id}, found {logs}"
    return logs[0].read_text()
