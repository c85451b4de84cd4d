#!/usr/bin/env bash
# sqlfluff over the dbt models (.sqlfluff: dbt templater, DuckDB dialect). The templater
# compiles the project: against an empty warehouse of its own, with its own target folder,
# so it never touches the warehouse or the manifest a pipeline run uses.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
export OCSE_WAREHOUSE="$scratch/lint.duckdb" DBT_TARGET_PATH="$scratch/target" DBT_LOG_PATH="$scratch/logs"
# From `make lint`, through uv; from the test suite, already inside the project's venv.
RUN=(python3 -m uv run --frozen)
python3 -m uv --version >/dev/null 2>&1 || RUN=()
"${RUN[@]}" python -c "from ocse.pipeline import install_dbt_packages; install_dbt_packages()"
"${RUN[@]}" sqlfluff lint dbt/models "$@"
