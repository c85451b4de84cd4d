#!/bin/sh
# dbt, bound to the run process that starts it: when that process dies (kill -9, out of
# memory), the kernel kills dbt too (PR_SET_PDEATHSIG through util-linux's setpriv), instead of
# leaving an orphan writing to the warehouse while the next run starts. The run's dbt
# resource (dagster_project/defs/dbt/resource.py) points here and names the real dbt in
# OCSE_DBT_EXECUTABLE.
if command -v setpriv >/dev/null 2>&1; then
  exec setpriv --pdeathsig KILL -- "$OCSE_DBT_EXECUTABLE" "$@"
fi
exec "$OCSE_DBT_EXECUTABLE" "$@"
