"""Alert routing: which alert goes to which channel. Configuration, not code: a YAML file
(`OCSE_ALERTING_CONFIG`, default alerting.yaml), validated when the Dagster definitions or
the CLI start, so a typo fails loudly at start-up instead of silently dropping alerts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SEVERITIES = ("info", "warning", "high", "critical")
# Every alert type the rules raise (ocse/alerts/rules.py); routes may only name these.
ALERT_TYPES = (
    "takedown",
    "report_acknowledgement",
    "report_resolution",
    "referral",
    "feed_silent",
    "file_rejected",
    "quarantine_spike",
    "pipeline_failed",
    "digest",
)


class AlertingConfigError(ValueError):
    """The alerting configuration is missing or wrong; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebhookChannel(_Strict):
    type: Literal["webhook"]
    url: Annotated[str, Field(pattern=r"^https?://")]
    # json: the alert as a JSON object; slack: a Slack-compatible {"text": ..., "blocks": ...}
    format: Literal["json", "slack"] = "json"
    timeout_seconds: float = Field(5.0, gt=0, le=60)


class SmtpChannel(_Strict):
    type: Literal["smtp"]
    host: str
    port: int = Field(25, ge=1, le=65535)
    sender: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]
    recipients: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(min_length=1)
    starttls: bool = False
    username: str | None = None
    # the password is never in the file: name the environment variable that holds it
    password_env: str | None = None
    timeout_seconds: float = Field(10.0, gt=0, le=120)


Channel = Annotated[WebhookChannel | SmtpChannel, Field(discriminator="type")]


class Route(_Strict):
    """Alerts of these types (or "*"), at or above this severity, go to these channels."""

    types: list[str] = Field(min_length=1)
    min_severity: Literal["info", "warning", "high", "critical"] = "info"
    channels: list[str] = Field(min_length=1)

    def matches(self, alert_type: str, severity: str) -> bool:
        return ("*" in self.types or alert_type in self.types) and SEVERITIES.index(
            severity
        ) >= SEVERITIES.index(self.min_severity)


class Retry(_Strict):
    """Exponential backoff: attempt n waits base * 2**(n-1) seconds (capped); after
    max_attempts the delivery is marked failed, visible in alerts.deliveries, never dropped
    silently."""

    max_attempts: int = Field(10, ge=1, le=100)
    base_seconds: float = Field(30.0, ge=0)
    max_backoff_seconds: float = Field(3600.0, ge=0)
    # quick retries within one run before leaving it to the next run
    attempts_per_run: int = Field(3, ge=1, le=10)

    def backoff_seconds(self, attempts: int) -> float:
        return min(self.base_seconds * 2 ** max(attempts - 1, 0), self.max_backoff_seconds)


class Thresholds(_Strict):
    # a feed that has delivered no file for this long raises feed_silent (dead man's switch)
    feed_silence_minutes: dict[str, int] = Field(
        default_factory=lambda: {
            "screening_hits": 60,
            "reports": 240,
            "enforcement_actions": 240,
            "cases": 1440,
        }
    )
    # a file with at least this share of its rows quarantined (and at least min rows)
    quarantine_spike_share: float = Field(0.05, gt=0, le=1)
    quarantine_spike_min_rows: int = Field(20, ge=1)


class Digest(_Strict):
    """A daily summary for the leadership body: breaches closed and still open."""

    channels: list[str] = Field(min_length=1)
    # local hour (reporting time zone) at which the digest of the previous day is sent
    hour: int = Field(8, ge=0, le=23)


class AlertingConfig(_Strict):
    dashboard_url: str = "http://127.0.0.1:8501"
    channels: dict[str, Channel] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)
    digest: Digest | None = None
    retry: Retry = Retry()
    thresholds: Thresholds = Thresholds()

    @model_validator(mode="after")
    def _references_resolve(self) -> AlertingConfig:
        for i, route in enumerate(self.routes, 1):
            unknown = [c for c in route.channels if c not in self.channels]
            if unknown:
                raise ValueError(f"route {i} names unknown channel(s) {unknown}")
            bad = [t for t in route.types if t != "*" and t not in ALERT_TYPES]
            if bad:
                raise ValueError(
                    f"route {i} names unknown alert type(s) {bad}; known: {list(ALERT_TYPES)}"
                )
        if self.digest:
            unknown = [c for c in self.digest.channels if c not in self.channels]
            if unknown:
                raise ValueError(f"digest names unknown channel(s) {unknown}")
        from ocse.contracts import FEEDS

        bad_feeds = set(self.thresholds.feed_silence_minutes) - set(FEEDS)
        if bad_feeds:
            raise ValueError(f"feed_silence_minutes names unknown feed(s) {sorted(bad_feeds)}")
        return self

    def channels_for(self, alert_type: str, severity: str) -> list[str]:
        if alert_type == "digest":
            return list(self.digest.channels) if self.digest else []
        names: list[str] = []
        for route in self.routes:
            if route.matches(alert_type, severity):
                names.extend(c for c in route.channels if c not in names)
        return names


def load_alerting_config(path: Path) -> AlertingConfig:
    """Read and validate the routing file; raise AlertingConfigError with a message that
    names the file, the place and the problem."""
    if not path.exists():
        raise AlertingConfigError(
            f"Alerting configuration {path} does not exist. Copy alerting.example.yaml to it "
            "or point OCSE_ALERTING_CONFIG at one."
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise AlertingConfigError(
            f"Alerting configuration {path} is not valid YAML: {exc}"
        ) from None
    try:
        return AlertingConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise AlertingConfigError(f"Alerting configuration {path} is wrong: {problems}") from None
