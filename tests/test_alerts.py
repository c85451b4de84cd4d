"""SLA breach alerts, end to end: the real pipeline (Dagster in-process, dbt, DuckDB) raising
into the outbox, delivering to a real HTTP receiver and a real SMTP server on 127.0.0.1.
What operations would see go wrong: an alert lost, repeated, or carrying a raw identifier;
a routing mistake discovered only when an alert goes nowhere."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import yaml

from ocse.alerts.config import AlertingConfigError, load_alerting_config
from ocse.alerts.receiver import SmtpReceiver, WebhookReceiver
from ocse.pipeline import run_pipeline
from ocse.settings import PROJECT_ROOT
from tests.feeds import TEST_KEY, VALID_ROWS, write_csv

POSTED = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
RAW_ID = re.compile(r"acct-[0-9a-f]{10}|mod-[0-9a-f]{8}")
RAW_IDS = ("acct-00000000a1", "mod-0000000b")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _routing(path: Path, http_port: int, smtp_port: int) -> Path:
    config = {
        "dashboard_url": "http://ops.example.org",
        "channels": {
            "hook": {
                "type": "webhook",
                "url": f"http://127.0.0.1:{http_port}/alerts",
                "timeout_seconds": 2,
            },
            "mail": {
                "type": "smtp",
                "host": "127.0.0.1",
                "port": smtp_port,
                "sender": "alerts@example.org",
                "recipients": ["ops@example.org"],
            },
        },
        "routes": [
            {"types": ["*"], "min_severity": "warning", "channels": ["hook"]},
            {"types": ["takedown"], "min_severity": "high", "channels": ["mail"]},
        ],
        # no waiting between runs in a test; one quick attempt per run
        "retry": {"max_attempts": 5, "base_seconds": 0, "attempts_per_run": 1},
        "thresholds": {"feed_silence_minutes": {"screening_hits": 10_000_000}},
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _landing(root: Path) -> Path:
    """One CSAM image, visible from POSTED, hit by hash matching, pending review, never
    taken down: its 60-minute takedown clock runs."""
    hit = {
        **VALID_ROWS["screening_hits"],
        "hit_id": "hit-alert",
        "content_id": "cnt-alert",
        "posted_at": POSTED.isoformat(),
        "detected_at": (POSTED + timedelta(minutes=5)).isoformat(),
        "review_status": "pending",
        "reviewed_at": None,
        "reviewer_id": None,
        "updated_at": (POSTED + timedelta(minutes=5)).isoformat(),
    }
    write_csv(root / "landing" / "screening_hits" / "hits.csv", [hit])
    return root / "landing"


@pytest.fixture
def alert_world(tmp_path, monkeypatch):
    http_port, smtp_port = _free_port(), _free_port()
    monkeypatch.setenv("OCSE_LANDING_DIR", str(_landing(tmp_path)))
    monkeypatch.setenv("OCSE_WAREHOUSE", str(tmp_path / "ocse.duckdb"))
    monkeypatch.setenv("OCSE_SERVING", str(tmp_path / "serving.duckdb"))
    monkeypatch.setenv("OCSE_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.delenv("OCSE_PSEUDONYM_KEY_FILE", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv(
        "OCSE_ALERTING_CONFIG", str(_routing(tmp_path / "alerting.yaml", http_port, smtp_port))
    )
    web = WebhookReceiver(http_port).start()
    mail = SmtpReceiver(smtp_port).start()
    yield {
        "web": web,
        "mail": mail,
        "warehouse": tmp_path / "ocse.duckdb",
        "store": tmp_path / "alerts.sqlite",
    }
    web.stop()
    mail.stop()


def _store_rows(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchall()


def _run_at(minutes_after_posting: int) -> None:
    result = run_pipeline(POSTED + timedelta(minutes=minutes_after_posting))
    assert result.success, result.failure


def _takedown_alerts(received: list[dict], key: str = "body") -> list[dict]:
    if key == "body":
        return [r["body"] for r in received if r["body"].get("alert_type") == "takedown"]
    return [r for r in received if "cnt-alert" in r["subject"]]


def _assert_no_raw_identifier(web: WebhookReceiver, mail: SmtpReceiver) -> None:
    everything = json.dumps(web.received) + json.dumps(mail.received)
    assert not RAW_ID.search(everything)
    assert not any(raw in everything for raw in RAW_IDS)


def test_near_breach_then_breach_across_three_runs_gives_exactly_two_alerts(alert_world):
    web, mail = alert_world["web"], alert_world["mail"]
    _run_at(50)  # 50 of 60 minutes: near breach
    _run_at(61)  # past the hour: breach
    _run_at(90)  # still a breach: nothing new
    alerts = _takedown_alerts(web.received)
    assert [(a["subject_id"], a["status"]) for a in alerts] == [
        ("cnt-alert", "near_breach"),
        ("cnt-alert", "breach"),
    ]
    near, breach = alerts
    # CSAM first and loudest; the words operations need
    assert (near["severity"], breach["severity"]) == ("high", "critical")
    assert breach["category_code"] == "csam_possession"
    assert breach["category_label_en"] == "CSAM possession"
    assert (breach["elapsed_minutes"], breach["target_minutes"]) == (61.0, 60)
    assert "61 of 60 min" in breach["title"] and "CSAM" in breach["title"]
    assert breach["link"].startswith("http://ops.example.org/operations_queue?")
    assert "cnt-alert" in breach["link"]
    # e-mail gets the same two (takedown, high and above), one message each
    emails = _takedown_alerts(mail.received, key="subject")
    assert len(emails) == 2 and "critical" in emails[1]["subject"]
    assert len({e["message_id"] for e in emails}) == 2
    _assert_no_raw_identifier(web, mail)


def test_receiver_down_then_up_gets_every_alert_exactly_once(alert_world):
    web, mail, store = alert_world["web"], alert_world["mail"], alert_world["store"]
    web.status = 503  # the webhook receiver is down
    _run_at(50)
    assert web.received == []
    pending = _store_rows(
        store, "select state, attempts, last_error from deliveries where channel = 'hook'"
    )
    assert pending == [("pending", 1, "HTTP 503")]
    web.status = 200  # back up
    _run_at(61)
    _run_at(62)
    alerts = _takedown_alerts(web.received)
    assert sorted((a["subject_id"], a["status"]) for a in alerts) == [
        ("cnt-alert", "breach"),
        ("cnt-alert", "near_breach"),
    ]
    keys = [r["idempotency_key"] for r in web.received]
    assert len(keys) == len(set(keys))
    assert _store_rows(store, "select distinct state from deliveries") == [("delivered",)]
    _assert_no_raw_identifier(web, mail)


def test_a_delivery_that_keeps_failing_is_marked_failed_not_dropped(alert_world, tmp_path):
    web, store = alert_world["web"], alert_world["store"]
    routing = yaml.safe_load((tmp_path / "alerting.yaml").read_text())
    routing["retry"]["max_attempts"] = 2
    (tmp_path / "alerting.yaml").write_text(yaml.safe_dump(routing))
    web.status = 500
    for minutes in (50, 51):  # the first and last attempt: one probe per run
        _run_at(minutes)
    rows = _store_rows(
        store, "select state, attempts, last_error from deliveries where channel = 'hook'"
    )
    with duckdb.connect(str(tmp_path / "serving.duckdb"), read_only=True) as snapshot:
        published = snapshot.execute(
            "select count(*) from alerts.deliveries where state = 'failed'"
        ).fetchone()[0]
    assert rows == [("failed", 2, "HTTP 500")]
    assert published == 1


def test_a_clock_that_stops_is_recorded_as_resolved(alert_world, tmp_path):
    _run_at(61)
    action = {
        **VALID_ROWS["enforcement_actions"],
        "action_id": "act-alert",
        "content_id": "cnt-alert",
        "hit_id": "hit-alert",
        "posted_at": POSTED.isoformat(),
        "detected_at": (POSTED + timedelta(minutes=5)).isoformat(),
        "actioned_at": (POSTED + timedelta(minutes=70)).isoformat(),
        "evidence_preserved_at": (POSTED + timedelta(minutes=69)).isoformat(),
        "updated_at": (POSTED + timedelta(minutes=70)).isoformat(),
    }
    write_csv(tmp_path / "landing" / "enforcement_actions" / "actions.csv", [action])
    _run_at(75)
    rows = _store_rows(
        alert_world["store"],
        "select alert_key, resolved_at from outbox where alert_type = 'takedown'",
    )
    assert rows and all(resolved is not None for _, resolved in rows)
    assert len(_takedown_alerts(alert_world["web"].received)) == 1  # the breach, once


BAD_ROUTINGS = {
    "unknown channel": (
        {"channels": {}, "routes": [{"types": ["takedown"], "channels": ["pager"]}]},
        "unknown channel(s) ['pager']",
    ),
    "unknown alert type": (
        {
            "channels": {"h": {"type": "webhook", "url": "http://x"}},
            "routes": [{"types": ["takedwon"], "channels": ["h"]}],
        },
        "unknown alert type(s) ['takedwon']",
    ),
    "bad url": (
        {"channels": {"h": {"type": "webhook", "url": "ftp://x"}}},
        "channels.h.webhook.url",
    ),
    "bad severity": (
        {
            "channels": {"h": {"type": "webhook", "url": "http://x"}},
            "routes": [{"types": ["*"], "min_severity": "urgent", "channels": ["h"]}],
        },
        "routes.0.min_severity",
    ),
    "typo in a key": ({"chanels": {}}, "chanels: Extra inputs are not permitted"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROUTINGS))
def test_malformed_routing_fails_with_a_clear_message(tmp_path, case):
    config, expected = BAD_ROUTINGS[case]
    path = tmp_path / "alerting.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(AlertingConfigError) as err:
        load_alerting_config(path)
    assert expected in str(err.value) and str(path) in str(err.value)


def test_malformed_routing_stops_dagster_and_ocse_run_at_start_up(tmp_path):
    path = tmp_path / "alerting.yaml"
    path.write_text("routes: [{types: [takedown], channels: [nowhere]}]\n", encoding="utf-8")
    env = {
        **os.environ,
        "OCSE_ALERTING_CONFIG": str(path),
        "OCSE_PSEUDONYM_KEY": TEST_KEY,
        "OCSE_LANDING_DIR": str(tmp_path),
    }
    loaded = subprocess.run(
        [sys.executable, "-c", "import dagster_project.definitions"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert loaded.returncode != 0
    assert "unknown channel(s) ['nowhere']" in loaded.stderr
    run = subprocess.run(
        [sys.executable, "-m", "ocse.cli", "run", "--warehouse", str(tmp_path / "w.duckdb")],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0
    assert "unknown channel(s) ['nowhere']" in run.stderr
    assert not (tmp_path / "w.duckdb").exists()


def test_the_demo_routing_is_valid():
    config = load_alerting_config(PROJECT_ROOT / "alerting.yaml")
    assert config.channels_for("takedown", "critical")
    assert config.digest is not None
