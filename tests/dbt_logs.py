"""The logs of one run's `dbt build`s: dagster-dbt writes each call's artifacts and log into a
folder of its own, dbt/target/<asset definition>-<first 7 characters of the run id>-<random>
(pruned to the newest few by the dbt assets). A run makes two calls: the alert path first,
then the rest of the project (dagster_project/defs/dbt/assets.py)."""

from __future__ import annotations

from dagster_project.defs.dbt.assets import DBT_ASSETS
from ocse.settings import PROJECT_ROOT


def dbt_build_log(run_id: str) -> str:
    """Both logs of the run, the alert path's first; exactly one of each must exist."""
    texts = []
    for name in (assets.op.name for assets in DBT_ASSETS):
        logs = list((PROJECT_ROOT / "dbt" / "target").glob(f"{name}-{run_id[:7]}-*/dbt.log"))
        assert len(logs) == 1, f"expected one {name} dbt log for run {run_id}, found {logs}"
        texts.append(logs[0].read_text())
    return "\n".join(texts)
