#!/usr/bin/env bash
# The whole test suite. Installs what the browser tests need (Debian's Chromium) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Chromium, and a font with Chinese glyphs (the browser tests read and screenshot both
# languages; without it every Chinese character renders as a box).
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null \
  && { ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi "wqy\|noto.*cjk"; }; then
  echo "Installing Chromium and a CJK font for the browser tests (Debian packages)..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-wqy-microhei >/dev/null) \
    || echo "warning: could not install chromium; browser tests will be skipped"
fi

export DAGSTER_HOME="${DAGSTER_HOME:-$(mktemp -d)}"
exec python3 -m uv run --frozen pytest "$@"
