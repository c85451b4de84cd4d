#!/usr/bin/env bash
# The demo: live sample data ending now, a local alert receiver, the pipeline run once, then
# the Dagster UI (with its daemon: the landing sensor runs the pipeline on every new batch,
# the schedule every few minutes, alerts go to the receiver), a generator writing a new
# batch every few minutes, and the dashboards. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
# uv runs everything from the lock file. Called from inside the project's environment (the tests
# do), `python3` is that environment's interpreter, which has no uv: use the environment itself.
if python3 -m uv --version >/dev/null 2>&1; then
  RUN="python3 -m uv run --frozen"
elif command -v uv >/dev/null 2>&1; then
  RUN="uv run --frozen"
elif [ -x "$ROOT/.venv/bin/ocse" ]; then
  RUN="env PATH=$ROOT/.venv/bin:$PATH"
else
  echo "error: uv is not installed; run \`make demo\` (it installs uv and the project)." >&2
  exit 1
fi

export OCSE_LANDING_DIR="${OCSE_LANDING_DIR:-$ROOT/landing}"
export OCSE_WAREHOUSE="${OCSE_WAREHOUSE:-$ROOT/warehouse/ocse.duckdb}"
export OCSE_SERVING="${OCSE_SERVING:-$ROOT/warehouse/serving.duckdb}"
export OCSE_PSEUDONYM_KEY_FILE="${OCSE_PSEUDONYM_KEY_FILE:-$HOME/.config/ocse/pseudonym.key}"
export DAGSTER_HOME="${DAGSTER_HOME:-$ROOT/.dagster_home}"
DAGSTER_PORT="${DAGSTER_PORT:-3000}"
DASHBOARD_PORT="${DASHBOARD_PORT:-8501}"
FOLLOW_INTERVAL="${OCSE_FOLLOW_INTERVAL:-300}"
# Six months ending now: every period-over-period comparison (a quarter against the one
# before) is covered and the weekly spike test has its 8-week baseline. About 670 hits a
# day, as many as the demo always had.
DEMO_DAYS="${OCSE_DEMO_DAYS:-183}"
DEMO_HITS="${OCSE_DEMO_HITS:-122000}"
RECEIVER_HTTP_PORT="${OCSE_DEMO_HTTP_PORT:-8765}"   # alerting.yaml routes here
RECEIVER_SMTP_PORT="${OCSE_DEMO_SMTP_PORT:-8025}"

mkdir -p "$DAGSTER_HOME" "$(dirname "$OCSE_WAREHOUSE")"
# The instance configuration is the repository's (run lanes, queue): refreshed every start.
cp "$ROOT/dagster_project/dagster.yaml" "$DAGSTER_HOME/dagster.yaml"
# alerting.yaml routes to the receiver on its default ports and links to the dashboards on
# 8501. On other ports (and no routing of one's own) the demo uses a copy that says so.
if [ -z "${OCSE_ALERTING_CONFIG:-}" ] &&
  [ "$RECEIVER_HTTP_PORT:$RECEIVER_SMTP_PORT:$DASHBOARD_PORT" != "8765:8025:8501" ]; then
  export OCSE_ALERTING_CONFIG="$DAGSTER_HOME/alerting.yaml"
  sed -e "s#127\.0\.0\.1:8765/#127.0.0.1:$RECEIVER_HTTP_PORT/#" \
    -e "s#^\(    port:\) 8025\$#\1 $RECEIVER_SMTP_PORT#" \
    -e "s#^dashboard_url: http://127\.0\.0\.1:8501\$#dashboard_url: http://127.0.0.1:$DASHBOARD_PORT#" \
    "$ROOT/alerting.yaml" >"$OCSE_ALERTING_CONFIG"
fi

echo "==> Pseudonymisation key (kept outside git)"
$RUN ocse keygen --out "$OCSE_PSEUDONYM_KEY_FILE"

if [ -z "$(ls -A "$OCSE_LANDING_DIR" 2>/dev/null)" ]; then
  echo "==> Generating $DEMO_DAYS days of sample feeds ending now into $OCSE_LANDING_DIR"
  $RUN ocse generate --seed 42 --days "$DEMO_DAYS" --scale "$DEMO_HITS" --out "$OCSE_LANDING_DIR"
else
  echo "==> Landing folder already has files; keeping them (delete it to start over)"
fi

# Every process the demo starts carries this mark in its environment, and every service runs
# in a process group of its own (setsid). Ctrl-C stops them all within seconds: SIGTERM to
# each group, then SIGKILL to whatever is left after 5 s (Dagster's processes can take
# minutes to wind down on their own), including run workers and dbt children that left
# their group.
SESSION="demo-$$-$(date +%s)"
pids=()
start() { OCSE_DEMO_SESSION="$SESSION" setsid "$@" & pids+=($!); }
marked() {
  grep -lsz "^OCSE_DEMO_SESSION=$SESSION$" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 || true
}
cleanup() {
  trap - EXIT INT TERM
  echo; echo "Stopping..."
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    [ -z "$(marked)" ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  for pid in $(marked); do kill -KILL "$pid" 2>/dev/null || true; done
  echo "Stopped."
  exit 0
}
trap cleanup EXIT INT TERM

echo "==> Local alert receiver (webhook :$RECEIVER_HTTP_PORT, SMTP :$RECEIVER_SMTP_PORT; ${OCSE_ALERTING_CONFIG:-alerting.yaml} routes to it)"
$RUN ocse alerts check
start $RUN ocse alerts receive --out "$DAGSTER_HOME/alerts_received.jsonl" \
  --http-port "$RECEIVER_HTTP_PORT" --smtp-port "$RECEIVER_SMTP_PORT" \
  >"$DAGSTER_HOME/alerts.log" 2>&1

echo "==> Dashboard accounts, one per role (passwords in $DAGSTER_HOME/demo_accounts.txt)"
ACCOUNTS="$DAGSTER_HOME/demo_accounts.txt"
if [ ! -s "$ACCOUNTS" ]; then
  (umask 077 && : >"$ACCOUNTS")
  for role in leadership assessor researcher operations admin; do
    echo "$role $(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')" >>"$ACCOUNTS"
  done
fi
while read -r role password; do
  OCSE_NEW_PASSWORD="$password" $RUN ocse users add "$role" --role "$role" --replace >/dev/null
done <"$ACCOUNTS"
# The demo's research partner (the release register decides grain and k, not the researcher).
$RUN ocse releases set demo-partner --grain week --grain month --k 10 >/dev/null
$RUN ocse releases unassign researcher >/dev/null 2>&1 || true
$RUN ocse releases assign researcher demo-partner >/dev/null

echo "==> Running the pipeline once (from empty: a few minutes on 2 cores)"
$RUN ocse run

start $RUN dagster dev -m dagster_project.definitions -h 127.0.0.1 -p "$DAGSTER_PORT" \
  >"$DAGSTER_HOME/dagster-dev.log" 2>&1
start $RUN ocse generate --follow --interval "$FOLLOW_INTERVAL" --out "$OCSE_LANDING_DIR" \
  >"$DAGSTER_HOME/generate-follow.log" 2>&1
start $RUN ocse dashboard --port "$DASHBOARD_PORT" >"$DAGSTER_HOME/dashboard.log" 2>&1

for _ in $(seq 1 90); do
  curl -fs "http://127.0.0.1:$DASHBOARD_PORT/_stcore/health" >/dev/null 2>&1 && break
  sleep 1
done

cat <<MSG

  OCSE Warehouse demo is running.
    Dashboards   http://127.0.0.1:$DASHBOARD_PORT   sign in as (user = role, password):
$(awk '{printf "                   %-11s %s\n", $1, $2}' "$ACCOUNTS")
    Dagster UI   http://127.0.0.1:$DAGSTER_PORT   (assets, lineage, runs; the landing sensor
                                                   runs the pipeline on every new batch)
    New batches  every ${FOLLOW_INTERVAL}s into $OCSE_LANDING_DIR; the pipeline also runs
                 every ${OCSE_PIPELINE_INTERVAL_MINUTES:-5} min (clocks move with time)
    Alerts       tail -f $DAGSTER_HOME/alerts.log   (one line per alert received;
                 full bodies in $DAGSTER_HOME/alerts_received.jsonl)
    Logs         $DAGSTER_HOME/*.log
  Press Ctrl-C to stop.

MSG
wait -n "${pids[@]}" || true
