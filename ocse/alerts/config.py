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
    "backlog_digest",
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
    """A channel that fails is marked down and probed, not hammered: while it is down one
    delivery at a time (the one tried least, most severe first) is tried at each probe,
    waiting base * 2**(n-1) seconds (capped) after the n-th failed probe; the rest of its
    queue waits untouched and spends no attempts. A delivery that has been tried
    max_attempts times is marked failed and escalated (dead_letter), never dropped silently;
    `ocse alerts retry --failed` re-queues it."""

    max_attempts: int = Field(10, ge=1, le=100)
    base_seconds: float = Field(30.0, ge=0)
    max_backoff_seconds: float = Field(3600.0, ge=0)
    # tries of a probe within one delivery round (a short pause between) before the channel
    # counts as down
    attempts_per_run: int = Field(3, ge=1, le=10)
    # a delivery claimed by a process that died (crash between send and mark) is sent again,
    # with the same idempotency key, once its claim is this old
    claim_timeout_seconds: float = Field(300.0, gt=0)

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


class DeadLetter(_Strict):
    """Where a delivery goes when its own channel cannot take it: a copy to these channels
    when it is failed for good (any severity), and, for severe alerts, as soon as it has
    waited `after_minutes` undelivered (it stays queued on its own channel too, and still
    arrives there once the channel is back)."""

    channels: list[str] = Field(min_length=1)
    min_severity: Literal["info", "warning", "high", "critical"] = "high"
    after_minutes: float = Field(15.0, ge=0)


class Backlog(_Strict):
    """Backlog, not a flood: a clock alert whose crossing (75 % of its target, or its
    deadline) happened more than `live_window_minutes` before the run's T is backlog. Each
    backlog alert is recorded like any other (the operations queue shows it), but the
    channels get one digest per channel and run (counts by clock and category, the worst
    `worst`, a link to the queue) instead of one message each. Live crossings go out one by
    one."""

    live_window_minutes: float = Field(60.0, gt=0)
    worst: int = Field(10, ge=1, le=100)


class AlertingConfig(_Strict):
    dashboard_url: str = "http://127.0.0.1:8501"
    channels: dict[str, Channel] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)
    digest: Digest | None = None
    retry: Retry = Retry()
    dead_letter: DeadLetter | None = None
    backlog: Backlog = Backlog()
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
        for section in ("digest", "dead_letter"):
            value = getattr(self, section)
            unknown = [c for c in value.channels if c not in self.channels] if value else []
            if unknown:
                raise ValueError(f"{section} names unknown channel(s) {unknown}")
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
            f"Alerting configuration {path} does not exist. Copy the repository's "
            "alerting.yaml (the demo's routing) to it and adapt the channels, or point "
            "OCSE_ALERTING_CONFIG at one."
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
