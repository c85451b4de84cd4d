"""dbt run by hand from the tests, as a subprocess on a warehouse of the test's own, with its
artifacts and log in a folder of the test's own (never dbt/target, which the pipeline uses)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

DBT_DIR = Path(__file__).resolve().parents[1] / "dbt"


def run_dbt(
    args: list[str],
    warehouse: Path,
    target: Path,
    *,
    project_dir: Path = DBT_DIR,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """`dbt <args>` in `project_dir` on `warehouse`; artifacts in `target`, the log in
    `target/logs`; `env` adds to the environment (e.g. OCSE_DBT_AS_OF)."""
    return subprocess.run(
        [
            shutil.which("dbt") or "dbt",
            *args,
            "--target-path",
            str(target),
            "--log-path",
            str(target / "logs"),
        ],
        cwd=project_dir,
        env={**os.environ, "OCSE_WAREHOUSE": str(warehouse), **(env or {})},
        capture_output=True,
        text=True,
    )
