"""One settings object for the whole project.

Dagster, the `ocse` CLI, the dashboards and dbt's profiles.yml all read the same
environment variables (documented in `.env.example`), so a path or a key is configured
once. CLI flags override by setting the variable before the settings are read.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class MissingPseudonymKeyError(RuntimeError):
    """Raised when no pseudonymisation key is configured: without it nothing may be ingested."""


class OcseSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OCSE_", env_file=PROJECT_ROOT / ".env", extra="ignore"
    )

    landing_dir: Path = Field(
        PROJECT_ROOT / "landing", description="Folder the feeds drop files into."
    )
    warehouse: Path = Field(
        PROJECT_ROOT / "warehouse" / "ocse.duckdb",
        description="The DuckDB file the pipeline writes (one writer; dashboards never open it).",
    )
    serving: Path = Field(
        PROJECT_ROOT / "warehouse" / "serving.duckdb",
        description="Read-only snapshot of the published marts, swapped atomically after each run.",
    )
    log_dir: Path = Field(PROJECT_ROOT / "warehouse" / "logs")
    pseudonym_key: str | None = Field(
        None, description="Secret key for HMAC-SHA256 pseudonyms. Prefer pseudonym_key_file."
    )
    pseudonym_key_file: Path | None = Field(
        None, description="File holding the secret key (kept outside git)."
    )
    pseudonym_key_version: int = Field(
        1, ge=1, description="Version of the key, part of every ref."
    )
    pseudonym_previous_key_file: Path | None = Field(
        None,
        description="During a key rotation's transition window: the file of the key the "
        "current one replaces (`ocse keys rotate` prints it). Unset it when the window ends.",
    )
    pseudonym_previous_key_version: int | None = Field(
        None, ge=1, description="Version of the previous key (default: the current one - 1)."
    )
    reporting_tz: str = Field("Asia/Shanghai", description="Days, weeks and months are taken here.")
    as_of: datetime | None = Field(None, description="As-of time T of a run; default now.")
    plausible_from: datetime | None = Field(
        None,
        description="Earliest plausible timestamp in any feed: an earlier one is quarantined "
        "(timestamp_before_window). Default: each contract's plausibleTimestamps.notBefore "
        "(2000-01-01T00:00:00Z).",
    )
    clock_skew_minutes: int | None = Field(
        None,
        ge=0,
        le=1440,
        description="How far past the run's T (or the gate's clock, if later) a timestamp "
        "may lie before it is quarantined as timestamp_in_future. Default: each contract's "
        "plausibleTimestamps.clockSkewMinutes (15).",
    )
    ge_sample_rows: int = Field(
        200_000,
        ge=1000,
        description="Rows of a new batch the Great Expectations check validates (a random sample "
        "above this size; every row below it).",
    )

    dbt_tests: Literal["always", "full_builds"] = Field(
        "always",
        description="When dbt's data tests on models run: on every run (the default: the "
        "snapshot only ever publishes tested marts), or on full builds only (the first run, "
        "--full-refresh, a backfill), which makes small runs faster. Tests on the raw sources "
        "always run.",
    )
    duckdb_memory_limit: str = Field(
        "3GB",
        description="DuckDB memory_limit of each process writing the warehouse (the pipeline "
        "and the dbt process it starts); beyond it DuckDB spills to disk next to the file.",
    )

    alerting_config: Path = Field(
        PROJECT_ROOT / "alerting.yaml",
        description="Alert routing: channels (webhook, SMTP), routes per type and severity, "
        "retries, thresholds, digest. Checked at start-up.",
    )
    alerts_db: Path | None = Field(
        None,
        description="The alert store (SQLite): every alert raised and every delivery, kept apart "
        "from the warehouse so no rebuild or backfill forgets what was sent. Default: "
        "alerts.sqlite beside the warehouse file.",
    )
    run_lease_wait_seconds: float = Field(
        600,
        ge=0,
        description="How long a Dagster-launched pipeline run waits for the warehouse lease "
        "held by another run (e.g. an `ocse run` from a shell) before it fails. `ocse run` "
        "itself never waits: it refuses at once.",
    )
    pipeline_interval_minutes: int = Field(
        5,
        ge=1,
        description="The pipeline also runs on this schedule, so clocks that cross 75% or 100% "
        "of their target with no new file are still alerted on.",
    )

    access_db: Path = Field(
        PROJECT_ROOT / "warehouse" / "access.sqlite",
        description="Dashboard accounts (salted argon2 hashes) and the append-only access log "
        "(logins, page views, downloads, exports). Kept apart from the warehouse so the "
        "dashboards never write to a file the pipeline writes.",
    )
    session_idle_minutes: int = Field(
        30, ge=1, description="A dashboard session ends after this many minutes without use."
    )
    session_max_hours: int = Field(
        12, ge=1, description="A dashboard session ends this many hours after login, used or not."
    )
    display_session_max_days: int = Field(
        30,
        ge=1,
        description="A display account's session (the operations queue on a wall screen, which "
        "nobody touches) has no idle limit and ends this many days after sign-in.",
    )
    dashboard_address: str = Field(
        "127.0.0.1",
        description="Interface the dashboards listen on. Keep 127.0.0.1 and put a reverse proxy "
        "with TLS in front for other machines (README: Serving the dashboards).",
    )
    dashboard_port: int = Field(8501, ge=1, le=65535, description="Port of the dashboards.")
    dashboard_trust_proxy: bool = Field(
        False,
        description="Take the client address for sign-in throttling from X-Forwarded-For (set "
        "only when a reverse proxy you run sets it; otherwise anyone could choose theirs).",
    )
    dashboard_secure_cookie: bool = Field(
        False,
        description="Mark the session cookie Secure (sent over HTTPS only): set it when the "
        "dashboards are served through TLS.",
    )

    disclosure_k: int = Field(
        10,
        ge=5,
        description="Disclosure-control threshold of research exports and the assessment "
        "report: every count below it is withheld (never below 5).",
    )
    export_dir: Path = Field(
        PROJECT_ROOT / "exports",
        description="Where the Dagster research-export job writes its exports.",
    )

    retention_config: Path = Field(
        PROJECT_ROOT / "retention.yaml",
        description="Retention period per table (raw history, quarantine, alert store, access "
        "log), enforced by `ocse retention run` and the Dagster job ocse_retention.",
    )
    retention_cron: str = Field(
        "30 3 * * *",
        description="When the retention job runs (cron, in OCSE_REPORTING_TZ).",
    )
    append_only_verify: Literal["counts", "full"] = Field(
        "counts",
        description="What every pipeline run checks of the append-only tables before it "
        "starts: row counts (milliseconds), or full checksums (reads every row). Retention and "
        "erasure always check in full.",
    )

    @field_validator(
        "landing_dir",
        "warehouse",
        "serving",
        "log_dir",
        "pseudonym_key_file",
        "alerting_config",
        "alerts_db",
        "access_db",
        "export_dir",
        "retention_config",
    )
    @classmethod
    def _expand_home(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator("reporting_tz")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"OCSE_REPORTING_TZ={value!r} is not a known IANA time zone") from exc
        return value

    @field_validator("as_of")
    @classmethod
    def _as_of_has_offset(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("OCSE_AS_OF needs an explicit offset, e.g. 2025-03-31T16:00:00Z")
        return value

    @field_validator("plausible_from")
    @classmethod
    def _plausible_from_has_offset(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("OCSE_PLAUSIBLE_FROM needs an explicit offset, e.g. 2000-01-01T00:00Z")
        return value

    @property
    def alerts_store(self) -> Path:
        return self.alerts_db or self.warehouse.parent / "alerts.sqlite"

    def resolved_as_of(self) -> datetime:
        """The run's as-of time T in UTC, truncated to the second so reruns are reproducible."""
        as_of = self.as_of or datetime.now(UTC)
        return as_of.astimezone(UTC).replace(microsecond=0)

    @cached_property
    def key_bytes(self) -> bytes:
        """The pseudonymisation key. Never logged, never written to the warehouse."""
        if self.pseudonym_key:
            key = self.pseudonym_key.encode()
        elif self.pseudonym_key_file:
            key = read_key_file(self.pseudonym_key_file, "OCSE_PSEUDONYM_KEY_FILE")
        else:
            raise MissingPseudonymKeyError(
                "No pseudonymisation key: set OCSE_PSEUDONYM_KEY_FILE (or OCSE_PSEUDONYM_KEY). "
                "Nothing is ingested without it, because raw personal identifiers must never be "
                "stored. For a local demo, `ocse keygen` creates a key file outside git."
            )
        if len(key) < 16:
            raise MissingPseudonymKeyError("The pseudonymisation key must be at least 16 bytes.")
        return key

    def pseudonym_keys(self):
        """The current key, carrying the previous one during a rotation's transition window."""
        from ocse.pseudonymise import PseudonymKey

        key = PseudonymKey.from_secret(self.key_bytes, self.pseudonym_key_version)
        if self.pseudonym_previous_key_file is None:
            return key
        previous = PseudonymKey.from_secret(
            read_key_file(self.pseudonym_previous_key_file, "OCSE_PSEUDONYM_PREVIOUS_KEY_FILE"),
            self.pseudonym_previous_key_version or self.pseudonym_key_version - 1,
        )
        try:
            return key.with_previous(previous)
        except ValueError as exc:
            raise MissingPseudonymKeyError(f"OCSE_PSEUDONYM_PREVIOUS_KEY_VERSION: {exc}") from None


def read_key_file(path: Path, setting: str) -> bytes:
    """A key file's bytes; refused when other users may read it (a key readable by anyone on
    the machine is not a secret), or when it is too short."""
    try:
        mode = path.stat().st_mode
        key = path.read_bytes().strip()
    except OSError as exc:
        raise MissingPseudonymKeyError(
            f"Cannot read the pseudonymisation key file {path}: {exc.strerror}. Create it (for "
            f"the demo: `ocse keygen`) or set {setting} to the right path."
        ) from None
    if mode & 0o077:
        raise MissingPseudonymKeyError(
            f"The pseudonymisation key file {path} is readable by other users (mode "
            f"{mode & 0o777:o}): make it private with `chmod 600 {path}`."
        )
    if len(key) < 16:
        raise MissingPseudonymKeyError(f"The pseudonymisation key in {path} is under 16 bytes.")
    return key


def get_settings() -> OcseSettings:
    """Settings read fresh from the environment (CLI flags set variables before calling this)."""
    return OcseSettings()


def dbt_env(settings: OcseSettings) -> dict[str, str]:
    """The variables dbt's profiles.yml reads, from these settings (which may come from .env,
    which dbt itself does not read)."""
    return {
        "OCSE_WAREHOUSE": str(settings.warehouse.resolve()),
        "OCSE_REPORTING_TZ": settings.reporting_tz,
        "OCSE_DUCKDB_MEMORY_LIMIT": settings.duckdb_memory_limit,
    }
