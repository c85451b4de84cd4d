"""The dbt models' SQL keeps one style (style.md): sqlfluff, with the project's .sqlfluff (dbt
templater, DuckDB dialect), finds nothing. The same check as `make lint`."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_sqlfluff_finds_nothing_in_the_models():
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "lint_sql.sh")], cwd=ROOT, capture_output=True, text=True
    )
    findings = [line for line in result.stdout.splitlines() if line.startswith(("==", "L:"))]
    assert result.returncode == 0, (
        "\n".join(findings) or result.stdout[-3000:] + result.stderr[-2000:]
    )
    assert "All Finished" in result.stdout
