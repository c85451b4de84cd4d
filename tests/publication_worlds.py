"""Warehouses built once per test session for the research-export and assessment-report
tests: generated data of two sizes run through the real pipeline (one run each)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ocse.pipeline import run_pipeline
from sample_data.generator import generate
from tests.feeds import TEST_KEY

# Local (Asia/Shanghai) 2025-04-09 00:00: the generated data covers late February to 8 April,
# so 2025Q1 has ended and 2025Q2 is under way.
AS_OF = datetime(2025, 4, 8, 16, 0, tzinfo=UTC)
DAYS = 42
SIZES = {"sparse": {"seed": 3, "scale": 700}, "dense": {"seed": 4, "scale": 7000}}

_built: dict[str, Path] = {}


def world(name: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of a built world: serving.duckdb (and the warehouse, never read by the
    code under test)."""
    if name in _built:
        return _built[name]
    root = tmp_path_factory.mktemp(f"world_{name}")
    generate(root / "landing", days=DAYS, end=AS_OF, bad_share=0.01, progress=None, **SIZES[name])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OCSE_PSEUDONYM_KEY", TEST_KEY)
        mp.delenv("OCSE_PSEUDONYM_KEY_FILE", raising=False)
        mp.delenv("OCSE_AS_OF", raising=False)
        mp.setenv("OCSE_LANDING_DIR", str(root / "landing"))
        mp.setenv("OCSE_WAREHOUSE", str(root / "ocse.duckdb"))
        mp.setenv("OCSE_SERVING", str(root / "serving.duckdb"))
        mp.setenv("OCSE_ACCESS_DB", str(root / "access.sqlite"))
        (root / "dagster_home").mkdir()
        mp.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        summary = run_pipeline(AS_OF)
        assert summary.success, summary.failure
    _built[name] = root
    return root


def identifiers(serving: Path) -> set[str]:
    """Every user reference, content id, report id, case id, action id and file name the
    snapshot holds: none of them may appear in anything that leaves the platform."""
    from ocse.serving import open_snapshot

    queries = [
        "select user_ref from marts.dim_user_tiers",
        "select content_id from marts.fct_content_takedowns",
        "select first_action_id from marts.fct_content_takedowns",
        "select report_id from marts.fct_reports",
        "select content_id from marts.fct_reports where content_id is not null",
        "select reported_user_ref from marts.fct_reports where reported_user_ref is not null",
        "select case_id from marts.fct_cases",
        "select action_id from marts.fct_cases where action_id is not null",
        "select subject_user_ref from marts.fct_cases",
        "select subject_id from marts.fct_open_sla_breaches",
        "select subject_id from marts.fct_sla_clocks",
        "select file_name from marts.ops_ingest_ledger",
    ]
    conn = open_snapshot(serving)
    try:
        found = {v for q in queries for (v,) in conn.execute(q).fetchall() if v}
    finally:
        conn.close()
    assert len(found) > 100
    return found


def leaked(text: str, ids: set[str]) -> set[str]:
    return {i for i in ids if i in text}
