"""The alert routing, loaded and checked when the definitions load: a malformed
alerting.yaml stops Dagster (and `ocse run`) at start-up with a message saying what is
wrong, instead of alerts going nowhere. Read again by every run, so a corrected file takes
effect without a restart."""

from ocse.alerts.config import AlertingConfig, load_alerting_config
from ocse.settings import get_settings


def alerting_config() -> AlertingConfig:
    return load_alerting_config(get_settings().alerting_config)
