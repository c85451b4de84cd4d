"""Retention periods per table (`retention.yaml`, OCSE_RETENTION_CONFIG), checked when read."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import yaml

from ocse.settings import PROJECT_ROOT

POLICY_TIER_RULES = PROJECT_ROOT / "dbt" / "seeds" / "policy_tier_rules.csv"
# What the marts read beyond the longest policy window: the trend's spike test compares a
# week with up to 8 before it, plus the week in progress (63 days); the assessment report
# and the research exports cover a whole quarter (92 days).
TREND_BASELINE_DAYS = 63
QUARTER_DAYS = 92


class RetentionConfigError(ValueError):
    """retention.yaml is wrong; the message says where and what to do."""


@dataclass(frozen=True)
class Retained:
    table: str  # e.g. raw.reports, alerts.outbox, access.access_log
    store: str  # warehouse | alerts | access
    floor_days: int  # a shorter period is refused (why: the `why` text)
    why: str


def longest_policy_window_days() -> int:
    """The longest window of any list rule of any policy version (180 days in version 1)."""
    with POLICY_TIER_RULES.open(encoding="utf-8") as fh:
        windows = [int(r["window_days"]) for r in csv.DictReader(fh) if r["window_days"]]
    return max(windows, default=180)


def raw_floor_days() -> int:
    return longest_policy_window_days() + TREND_BASELINE_DAYS + QUARTER_DAYS


def known_tables() -> dict[str, Retained]:
    raw_floor = raw_floor_days()
    raw_why = (
        f"raw history must outlive every mart window: the {longest_policy_window_days()}-day "
        f"list window + {TREND_BASELINE_DAYS} days of trend baseline + a {QUARTER_DAYS}-day "
        "quarter"
    )
    tables = [
        Retained(f"raw.{feed}", "warehouse", raw_floor, raw_why)
        for feed in ("screening_hits", "reports", "enforcement_actions", "cases")
    ]
    tables += [
        Retained("ingest.quarantine", "warehouse", 30, "operators replay a month of quarantine"),
        Retained(
            "alerts.outbox",
            "alerts",
            raw_floor,
            "an alert forgotten while its clock's records are kept could be raised again",
        ),
        Retained("alerts.delivery_rounds", "alerts", 7, "the pipeline-health page's week"),
        Retained("alerts.evaluations", "alerts", 7, "the pipeline-health page's week"),
        Retained("alerts.requeues", "alerts", 30, "who re-queued deliveries, for a month"),
        Retained("access.access_log", "access", 365, "a year of access audit at least"),
    ]
    return {t.table: t for t in tables}


@dataclass(frozen=True)
class RetentionConfig:
    path: Path
    days: dict[str, int | None]  # table -> days kept (None: forever)

    def period(self, table: str) -> int | None:
        return self.days.get(table)


def load_retention_config(path: Path) -> RetentionConfig:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise RetentionConfigError(
            f"Cannot read the retention config {path}: {exc.strerror}"
        ) from None
    except yaml.YAMLError as exc:
        raise RetentionConfigError(f"{path} is not valid YAML: {exc}") from None
    tables = data.get("tables")
    if not isinstance(tables, dict):
        raise RetentionConfigError(f"{path}: expected a mapping `tables:` of table -> {{days}}")
    known = known_tables()
    days: dict[str, int | None] = {}
    for name, spec in tables.items():
        if name not in known:
            raise RetentionConfigError(
                f"{path}: unknown table {name!r}; retention applies to: {', '.join(known)}"
            )
        if not isinstance(spec, dict) or "days" not in spec or set(spec) - {"days"}:
            raise RetentionConfigError(f"{path}: {name}: expected {{days: N}} (or days: null)")
        value = spec["days"]
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise RetentionConfigError(f"{path}: {name}: days must be a whole number or null")
        if value is not None and value < known[name].floor_days:
            raise RetentionConfigError(
                f"{path}: {name}: {value} days is below its floor of "
                f"{known[name].floor_days} days ({known[name].why})"
            )
        days[name] = value
    missing = [t for t in known if t not in days]
    if missing:
        raise RetentionConfigError(
            f"{path}: no period for {', '.join(missing)} (write `days: null` to keep forever)"
        )
    return RetentionConfig(Path(path), days)
