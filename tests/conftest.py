from __future__ import annotations

import os
from pathlib import Path

import pytest

from ocse.pipeline import prepare_dbt
from ocse.pseudonymise import PseudonymKey
from ocse.warehouse import connect
from tests.feeds import TEST_KEY


def pytest_sessionstart(session):
    # The Dagster definitions load dbt's manifest, which a fresh clone does not have yet.
    prepare_dbt()
    # Alerts are raised but routed nowhere unless a test routes them (tests/test_alerts.py).
    os.environ["OCSE_ALERTING_CONFIG"] = str(Path(__file__).parent / "alerting.quiet.yaml")
    # Every AppTest run scans all installed distributions for Streamlit v2 component
    # manifests (~4 s each on this environment); the dashboards use no such component, and
    # `streamlit run` (the browser tests, the app itself) still scans as usual.
    from streamlit.components.v2 import manifest_scanner

    manifest_scanner.scan_component_manifests = lambda *args, **kwargs: []


@pytest.fixture(autouse=True)
def _access_store_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Accounts and the access log of every test go to its own file, never the repo's."""
    path = tmp_path / "access.sqlite"
    monkeypatch.setenv("OCSE_ACCESS_DB", str(path))
    return path


@pytest.fixture
def key() -> PseudonymKey:
    return PseudonymKey.from_secret(TEST_KEY.encode(), 1)


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    return path


@pytest.fixture
def conn(tmp_path: Path):
    connection = connect(tmp_path / "warehouse.duckdb")
    yield connection
    connection.close()


@pytest.fixture
def ocse_env(tmp_path: Path, monkeypatch) -> dict[str, Path]:
    """Every OCSE_* setting pointed into tmp_path, with a test key."""
    paths = {
        "landing": tmp_path / "landing",
        "warehouse": tmp_path / "wh" / "ocse.duckdb",
        "serving": tmp_path / "wh" / "serving.duckdb",
    }
    paths["landing"].mkdir(exist_ok=True)
    monkeypatch.setenv("OCSE_LANDING_DIR", str(paths["landing"]))
    monkeypatch.setenv("OCSE_WAREHOUSE", str(paths["warehouse"]))
    monkeypatch.setenv("OCSE_SERVING", str(paths["serving"]))
    monkeypatch.setenv("OCSE_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.delenv("OCSE_PSEUDONYM_KEY_FILE", raising=False)
    monkeypatch.delenv("OCSE_AS_OF", raising=False)
    return paths


@pytest.fixture(scope="session")
def dashboard_world_built(tmp_path_factory):
    """One pipeline run on generated data, shared by every dashboard test module (each
    module sets the environment pointing at it with `world_env`)."""
    from tests.dashboard_world import build_world

    # OCSE_TEST_DASHBOARD_WORLD=DIR keeps the world in DIR and reuses it when it is there
    # (iterating on the pages without a pipeline run each time; CI always builds afresh).
    kept = os.environ.get("OCSE_TEST_DASHBOARD_WORLD")
    root = Path(kept) if kept else tmp_path_factory.mktemp("dashboards")
    with pytest.MonkeyPatch.context() as mp:
        if kept and (root / "serving.duckdb").exists():
            from tests.dashboard_world import World

            return World(root / "serving.duckdb", root / "ocse.duckdb", root / "landing")
        root.mkdir(parents=True, exist_ok=True)
        return build_world(root, mp)
