"""The one dbt project, located from this file so it works from any working directory."""

from pathlib import Path

from dagster_dbt import DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parents[3] / "dbt"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# `dagster dev` re-parses on load; `ocse run` and the tests call ocse.pipeline.prepare_dbt().
dbt_project.prepare_if_dev()
