"""The one dbt project, located from this file so it works from any working directory."""

from pathlib import Path

from dagster_dbt import DbtProject

from ocse.pipeline import prepare_dbt

DBT_PROJECT_DIR = Path(__file__).resolve().parents[3] / "dbt"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# Every process that loads the definitions (the UI, the daemon, a run) needs the manifest; a
# fresh clone has none until something parses. prepare_dbt parses only when a dbt file or a
# setting the profile reads changed (a few milliseconds of stat() otherwise), with the same
# profile and vars as the builds, so they reuse its parse. Processes that race parse into
# folders of their own and move the result into place.
prepare_dbt()
