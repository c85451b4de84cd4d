"""The dashboards' settings: the project's one settings object plus what only dashboards use.

Reading them through `OcseSettings` keeps one source (environment, then `.env`) for every
`OCSE_*` variable.
"""

from __future__ import annotations

from pydantic import Field

from ocse.settings import OcseSettings


class DashboardSettings(OcseSettings):
    freshness_warn_minutes: float = Field(
        60,
        gt=0,
        description="Pipeline-health page: a feed is flagged stale after this many minutes "
        "without a file that loaded rows.",
    )


def get_dashboard_settings() -> DashboardSettings:
    """Read fresh on every call, so a changed environment applies on the next rerun."""
    return DashboardSettings()
