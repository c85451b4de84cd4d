"""One serving snapshot built by the real pipeline from generated data, shared by the
dashboard tests (building it costs one pipeline run), session helpers for AppTest, and the
browser driver (from `tests/browser.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dashboards.auth import COOKIE_KEY
from ocse.access.sessions import session_store
from ocse.pipeline import run_pipeline
from sample_data.generator import generate
from tests.browser import (
    Browser,
    chromium_path,
    free_port,
    start_chromium,
    start_dashboard,
    wait_for_http,
)
from tests.feeds import TEST_KEY

AS_OF = datetime(2025, 6, 30, 16, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent
PAGE_FILES = {
    "overview": "views/overview.py",
    "sla": "views/sla.py",
    "trends": "views/trends.py",
    "offenders": "views/offenders.py",
    "cases": "views/cases.py",
    "operations_queue": "views/operations_queue.py",
    "pipeline_health": "views/pipeline_health.py",
    "research": "views/research.py",
    "methodology": "views/methodology.py",
    "access_log": "views/access_log.py",
}


@dataclass(frozen=True)
class World:
    serving: Path
    warehouse: Path
    landing: Path


def build_world(root: Path, monkeypatch) -> World:
    """Generate six weeks of feeds ending at AS_OF and run the pipeline once."""
    landing = root / "landing"
    generate(landing, seed=5, days=42, scale=4000, end=AS_OF, bad_share=0.01, progress=None)
    world = World(root / "serving.duckdb", root / "ocse.duckdb", landing)
    world_env(world, monkeypatch)
    result = run_pipeline(AS_OF)
    assert result.success, result.failure
    return world


def world_env(world: World, monkeypatch) -> None:
    """The environment the dashboards and the pipeline read for this world."""
    monkeypatch.setenv("OCSE_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.delenv("OCSE_PSEUDONYM_KEY_FILE", raising=False)
    monkeypatch.delenv("OCSE_AS_OF", raising=False)
    monkeypatch.setenv("OCSE_LANDING_DIR", str(world.landing))
    monkeypatch.setenv("OCSE_WAREHOUSE", str(world.warehouse))
    monkeypatch.setenv("OCSE_SERVING", str(world.serving))
    dagster_home = world.landing.parent / "dagster_home"
    dagster_home.mkdir(exist_ok=True)
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))


def sign_in(at, role: str, username: str | None = None) -> str:
    """A real server-side session of `role` for an AppTest run. AppTest cannot send cookies,
    so its signed cookie goes where the app looks when the browser sent none (checked the
    same way). Returns the cookie."""
    cookie = session_store().create(username or f"test-{role}", role, "password", "test")
    at.session_state[COOKIE_KEY] = cookie
    return cookie


# --- a real browser: tests/browser.py (shared with the benchmark's first-render step) -------

__all__ = [
    "AS_OF",
    "PAGE_FILES",
    "ROOT",
    "Browser",
    "World",
    "build_world",
    "chromium_path",
    "free_port",
    "sign_in",
    "start_chromium",
    "start_dashboard",
    "wait_for_http",
]
