"""Delivery at volume, without the pipeline: hundreds of alerts raised into an outbox and
delivered to a real HTTP receiver and a real SMTP server on 127.0.0.1 by the threaded sender
(ocse/alerts/deliver.py). Every alert arrives once per channel, the outbox records it, SMTP
reuses its sessions, and a channel that is down leaves everything pending, nothing lost."""

from __future__ import annotations

import smtplib
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from ocse.alerts import deliver
from ocse.alerts.config import AlertingConfig, load_alerting_config
from ocse.alerts.deliver import deliver_due
from ocse.alerts.outbox import raise_alerts
from ocse.alerts.receiver import SmtpReceiver, WebhookReceiver
from ocse.alerts.rules import AlertCandidate
from tests.test_alerts import _free_port, _routing

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
ALERTS = 300


def _config(tmp_path, http_port: int, smtp_port: int) -> AlertingConfig:
    """test_alerts' routing: every alert to the webhook, takedown alerts of high severity and
    above also by e-mail; one quick attempt per run, no backoff."""
    return load_alerting_config(_routing(tmp_path / "alerting.yaml", http_port, smtp_port))


def _candidates(n: int) -> list[AlertCandidate]:
    severities = ("warning", "high", "critical")
    return [
        AlertCandidate(
            alert_key=f"takedown:cnt-{i:04d}:breach",
            episode_key=f"takedown:cnt-{i:04d}",
            alert_type="takedown",
            status="breach",
            severity=severities[i % 3],
            subject_id=f"cnt-{i:04d}",
            category_code="csam_possession",
            title=f"alert {i:04d}",
            facts={"n": i},
        )
        for i in range(n)
    ]


@pytest.fixture
def receivers():
    http_port, smtp_port = _free_port(), _free_port()
    web, mail = WebhookReceiver(http_port).start(), SmtpReceiver(smtp_port).start()
    yield web, mail, http_port, smtp_port
    web.stop()
    mail.stop()


def _states(conn) -> dict[tuple[str, str], tuple]:
    rows = conn.execute(
        "select channel, alert_key, state, attempts, last_error, delivered_at "
        "from alerts.deliveries"
    ).fetchall()
    return {(r[0], r[1]): r[2:] for r in rows}


def test_every_alert_arrives_once_per_channel_and_is_marked(receivers, monkeypatch, tmp_path):
    web, mail, http_port, smtp_port = receivers
    opened = []
    real_smtp = smtplib.SMTP

    def counting_smtp(*args, **kwargs):
        opened.append(args)
        return real_smtp(*args, **kwargs)

    monkeypatch.setattr(deliver.smtplib, "SMTP", counting_smtp)
    config = _config(tmp_path, http_port, smtp_port)
    conn = duckdb.connect()
    candidates = _candidates(ALERTS)
    raised = raise_alerts(conn, candidates, config, NOW)
    # warning alerts go to the webhook only, high and critical to both
    expected_mail = [c.alert_key for c in candidates if c.severity != "warning"]
    assert raised.deliveries == ALERTS + len(expected_mail)

    outcome = deliver_due(conn, config, now=lambda: NOW, workers=4)

    assert outcome == {"delivered": ALERTS + len(expected_mail)}
    hooks = sorted(r["idempotency_key"] for r in web.received)
    assert hooks == sorted(f"{c.alert_key}/hook" for c in candidates)
    assert sorted(r["subject"] for r in mail.received) == sorted(
        f"[OCSE {c.severity}] {c.title}" for c in candidates if c.severity != "warning"
    )
    assert len({r["message_id"] for r in mail.received}) == len(expected_mail)
    # one SMTP session per sending thread, not one per message
    assert 1 <= len(opened) <= 4 < len(expected_mail)
    states = _states(conn)
    assert {s[0] for s in states.values()} == {"delivered"}
    assert all(s[1] == 1 and s[2] is None and s[3] == NOW for s in states.values())
    # a second delivery run has nothing due and sends nothing again
    assert deliver_due(conn, config, now=lambda: NOW + timedelta(minutes=1)) == {}
    assert len(web.received) == ALERTS


def test_a_channel_that_is_down_keeps_everything_pending(receivers, tmp_path):
    web, mail, http_port, smtp_port = receivers
    web.status = 503
    config = _config(tmp_path, http_port, smtp_port)
    conn = duckdb.connect()
    raise_alerts(conn, _candidates(ALERTS), config, NOW)

    outcome = deliver_due(conn, config, now=lambda: NOW, workers=4)

    hook = {k: v for (channel, k), v in _states(conn).items() if channel == "hook"}
    assert len(hook) == ALERTS and outcome["retry_later"] == ALERTS
    assert {v[0] for v in hook.values()} == {"pending"}
    tried = [v for v in hook.values() if v[1] == 1]
    # the first failure stops the channel for this run: only what was in flight was tried
    assert 1 <= len(tried) <= 4 and {v[2] for v in tried} == {"HTTP 503"}
    assert {v[2] for v in hook.values() if v[1] == 0} == {
        "skipped: channel unreachable in this run"
    }
    # the other channel is unaffected
    assert outcome["delivered"] == len(mail.received) == 2 * ALERTS // 3

    web.status = 200
    later = NOW + timedelta(hours=1)
    assert deliver_due(conn, config, now=lambda: later)["delivered"] == ALERTS
    assert sorted(r["idempotency_key"] for r in web.received) == sorted(f"{k}/hook" for k in hook)
