#!/usr/bin/env bash
# The whole test suite. Installs what the browser tests need (Debian's Chromium) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "Installing Chromium for the browser tests (Debian packages)..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
    || echo "warning: could not install chromium; browser tests will be skipped"
fi

export DAGSTER_HOME="${DAGSTER_HOME:-$(mktemp -d)}"
exec python3 -m uv run --frozen pytest "$@"
