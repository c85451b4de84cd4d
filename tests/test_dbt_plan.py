"""The planner of a run's two `dbt build` calls (dagster_project/defs/dbt/assets.py,
plan_dbt_build): which flags, which indirect selection, when staging is rebuilt from raw
history, decided from the run's tags and state alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dagster_project.defs.dbt.assets import FULL_BUILD_TAG, plan_dbt_build
from ocse.run_tags import FULL_REFRESH_TAG

T = datetime(2025, 6, 30, 16, 0, tzinfo=UTC)


def _plan(alert_path=True, tags=None, staged=T - timedelta(hours=1), tests="always"):
    return plan_dbt_build(
        alert_path=alert_path,
        as_of=T,
        run_tags=tags or {},
        staged_as_of=staged,
        dbt_tests=tests,
        env={"OCSE_WAREHOUSE": "/w.duckdb"},
    )


def test_an_incremental_alert_path_build_tests_only_what_is_all_on_it():
    plan = _plan()
    assert plan.args == ["build", "--exclude-resource-type", "unit_test"]
    assert not plan.full_build and plan.notes == []
    assert plan.env["DBT_INDIRECT_SELECTION"] == "cautious"
    assert plan.env["OCSE_DBT_AS_OF"] == T.isoformat()
    assert plan.env["OCSE_WAREHOUSE"] == "/w.duckdb"


def test_a_backfill_or_a_first_build_rebuilds_staging_and_the_rest_follows():
    back = _plan(staged=T + timedelta(days=1))
    assert "--full-refresh" in back.args and back.full_build
    assert "is not after the last staged T" in back.notes[0]
    first = _plan(staged=None)
    assert first.full_build and "--full-refresh" not in first.args  # nothing to refresh
    # the second build reads the alert path's decision from the run's tags
    rest = _plan(alert_path=False, tags={FULL_BUILD_TAG: "true"}, tests="full_builds")
    assert rest.full_build and rest.env["DBT_INDIRECT_SELECTION"] == "eager"


def test_a_requested_full_refresh_applies_to_both_builds():
    for alert_path in (True, False):
        plan = _plan(alert_path=alert_path, tags={FULL_REFRESH_TAG: "true"}, tests="full_builds")
        assert "--full-refresh" in plan.args and plan.full_build
        assert plan.env["DBT_INDIRECT_SELECTION"] != "empty"


def test_tests_of_models_wait_for_a_full_build_when_asked():
    for alert_path in (True, False):
        plan = _plan(alert_path=alert_path, tests="full_builds")
        assert plan.env["DBT_INDIRECT_SELECTION"] == "empty"
        assert "OCSE_DBT_TESTS=full_builds" in plan.notes[-1]
