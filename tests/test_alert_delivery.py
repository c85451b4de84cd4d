"""The alert store and its delivery, without the pipeline: alerts raised into a real alert
store (SQLite) and delivered to a real HTTP receiver and a real SMTP server on 127.0.0.1.
What operations would see go wrong: an alert repeated or lost, a channel outage that burns
the attempts of the most severe alerts, a backfill or a crash that resends, a first run
that floods the channels."""

from __future__ import annotations

import smtplib
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from ocse.alerts import deliver
from ocse.alerts.config import AlertingConfig, load_alerting_config
from ocse.alerts.deliver import deliver_due, requeue
from ocse.alerts.outbox import raise_alerts
from ocse.alerts.receiver import SmtpReceiver, WebhookReceiver
from ocse.alerts.rules import AlertCandidate
from ocse.alerts.store import AlertStore
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


def _states(store: AlertStore) -> dict[tuple[str, str], tuple]:
    rows = store.rows(
        "select channel, alert_key, state, attempts, last_error, delivered_at from deliveries"
    )
    return {(r[0], r[1]): r[2:] for r in rows}


@pytest.fixture
def store(tmp_path):
    with AlertStore(tmp_path / "alerts.sqlite") as s:
        yield s


def test_every_alert_arrives_once_per_channel_and_is_marked(
    receivers, monkeypatch, tmp_path, store
):
    web, mail, http_port, smtp_port = receivers
    opened = []
    real_smtp = smtplib.SMTP

    def counting_smtp(*args, **kwargs):
        opened.append(args)
        return real_smtp(*args, **kwargs)

    monkeypatch.setattr(deliver.smtplib, "SMTP", counting_smtp)
    config = _config(tmp_path, http_port, smtp_port)
    candidates = _candidates(ALERTS)
    raised = raise_alerts(store, candidates, config, NOW)
    # warning alerts go to the webhook only, high and critical to both
    expected_mail = [c.alert_key for c in candidates if c.severity != "warning"]
    assert raised.deliveries == ALERTS + len(expected_mail)

    outcome = deliver_due(store, config, now=lambda: NOW, workers=4)

    assert outcome.get("delivered") == ALERTS + len(expected_mail)
    assert outcome.get("failed") == outcome.get("retry_later") == 0
    hooks = sorted(r["idempotency_key"] for r in web.received)
    assert hooks == sorted(f"{c.alert_key}/hook" for c in candidates)
    assert sorted(r["subject"] for r in mail.received) == sorted(
        f"[OCSE {c.severity}] {c.title}" for c in candidates if c.severity != "warning"
    )
    assert len({r["message_id"] for r in mail.received}) == len(expected_mail)
    # one SMTP session per sending thread (the canary's and four), not one per message
    assert 1 <= len(opened) <= 5 < len(expected_mail)
    states = _states(store)
    assert {s[0] for s in states.values()} == {"delivered"}
    assert all(s[1] == 1 and s[2] is None for s in states.values())
    # a second delivery run has nothing due and sends nothing again
    assert deliver_due(store, config, now=lambda: NOW + timedelta(minutes=1)).get("delivered") == 0
    assert len(web.received) == ALERTS
    # raising the same alerts again (a rebuild, a rerun) records and sends nothing
    assert raise_alerts(store, candidates, config, NOW + timedelta(minutes=2)).raised == []


def test_a_channel_that_is_down_is_probed_not_hammered(receivers, tmp_path, store):
    web, mail, http_port, smtp_port = receivers
    web.status = 503
    config = _config(tmp_path, http_port, smtp_port)
    config = config.model_copy(
        update={"retry": config.retry.model_copy(update={"base_seconds": 60})}
    )
    raise_alerts(store, _candidates(ALERTS), config, NOW)

    outcome = deliver_due(store, config, now=lambda: NOW, workers=4)

    hook = {k: v for (channel, k), v in _states(store).items() if channel == "hook"}
    assert len(hook) == ALERTS and {v[0] for v in hook.values()} == {"pending"}
    tried = [v for v in hook.values() if v[1] == 1]
    # the canary, the most severe, goes alone first: its failure marks the channel down and
    # nothing else spends an attempt
    assert len(tried) == 1 and {v[2] for v in tried} == {"HTTP 503"}
    assert store.rows(
        "select severity from outbox where alert_key = ?", ([k for k, v in hook.items() if v[1]])
    ) == [("critical",)]
    assert outcome.channels["hook"]["channel_state"] == "down"
    # the other channel is unaffected
    assert outcome.get("delivered") == len(mail.received) == 2 * ALERTS // 3

    # while down, each round past its probe time tries exactly one delivery, the one tried
    # least: an outage spends one attempt per probe, spread over the queue
    at = NOW
    for _ in range(6):
        at += timedelta(hours=2)
        deliver_due(store, config, now=lambda at=at: at, workers=4)
    attempts = [v[1] for (c, _), v in _states(store).items() if c == "hook"]
    assert sum(attempts) == len(tried) + 6 and max(attempts) == 1
    # a round before the probe time tries nothing at all
    before = sum(attempts)
    deliver_due(store, config, now=lambda: at, workers=4)
    assert sum(v[1] for (c, _), v in _states(store).items() if c == "hook") == before

    web.status = 200
    later = at + timedelta(hours=2)
    assert deliver_due(store, config, now=lambda: later).get("delivered") == ALERTS
    assert sorted(r["idempotency_key"] for r in web.received) == sorted(f"{k}/hook" for k in hook)
    # the most severe went first once the channel was back
    ranks = [r["body"]["severity"] for r in web.received]
    assert ranks.index("warning") > ranks.index("critical")


def _routing_with_dead_letter(tmp_path, http_port, smtp_port, **retry) -> object:
    config = yaml.safe_load(_routing(tmp_path / "alerting.yaml", http_port, smtp_port).read_text())
    config["retry"].update(retry)
    config["dead_letter"] = {"channels": ["mail"], "min_severity": "high", "after_minutes": 10}
    (tmp_path / "alerting.yaml").write_text(yaml.safe_dump(config))
    return load_alerting_config(tmp_path / "alerting.yaml")


def test_an_exhausted_delivery_is_escalated_and_retry_requeues_it(receivers, tmp_path, store):
    web, mail, http_port, smtp_port = receivers
    config = _routing_with_dead_letter(tmp_path, http_port, smtp_port, max_attempts=2)
    warning = [c for c in _candidates(3) if c.severity == "warning"]  # webhook only
    raise_alerts(store, warning, config, NOW)
    web.status = 500
    deliver_due(store, config, now=lambda: NOW)
    deliver_due(store, config, now=lambda: NOW + timedelta(hours=1))
    (key,) = [c.alert_key for c in warning]
    assert _states(store)[("hook", key)][:2] == ("failed", 2)
    # the failed delivery went to the dead-letter channel at once, in the same round
    assert [r["subject"] for r in mail.received] == [f"[OCSE warning] {warning[0].title}"]
    assert _states(store)[("mail", key)][0] == "delivered"

    web.status = 200
    assert requeue(store, failed=True, requested_by="test", now=NOW + timedelta(hours=2)) == 1
    deliver_due(store, config, now=lambda: NOW + timedelta(hours=2))
    assert _states(store)[("hook", key)][0] == "delivered"
    assert [r["idempotency_key"] for r in web.received] == [f"{key}/hook"]
    assert store.rows("select requested_by, scope, deliveries from requeues") == [
        ("test", "pending+failed", 1)
    ]


def test_a_severe_alert_waiting_on_a_down_channel_is_copied_to_the_dead_letter_channel(
    receivers, tmp_path, store
):
    web, mail, http_port, smtp_port = receivers
    config = _routing_with_dead_letter(tmp_path, http_port, smtp_port)
    config = config.model_copy(
        update={"routes": [r for r in config.routes if r.channels == ["hook"]]}
    )  # webhook only, so the copy is the e-mail's only message
    critical = [c for c in _candidates(3) if c.severity == "critical"]
    raise_alerts(store, critical, config, NOW)
    web.status = 503
    deliver_due(store, config, now=lambda: NOW)
    assert mail.received == []  # not yet: it has waited less than after_minutes
    deliver_due(store, config, now=lambda: NOW + timedelta(minutes=11))
    assert len(mail.received) == 1
    # it stays queued on its own channel and arrives there once the channel is back
    web.status = 200
    deliver_due(store, config, now=lambda: NOW + timedelta(hours=3))
    assert [r["idempotency_key"] for r in web.received] == [f"{critical[0].alert_key}/hook"]
    deliver_due(store, config, now=lambda: NOW + timedelta(hours=4))
    assert len(mail.received) == 1 and len(web.received) == 1


def test_a_crash_between_send_and_mark_resends_with_the_same_idempotency_key(
    receivers, tmp_path, store, monkeypatch
):
    web, _, http_port, smtp_port = receivers
    config = _config(tmp_path, http_port, smtp_port)
    (alert,) = [c for c in _candidates(1)]
    raise_alerts(store, [alert], config, NOW)

    class Crash(BaseException):
        """The process dies right after the receiver took the message."""

    def crash_after_send(*args, **kwargs):
        raise Crash

    monkeypatch.setattr(deliver, "_mark", crash_after_send)
    with pytest.raises(Crash):
        deliver_due(store, config, now=lambda: NOW)
    monkeypatch.undo()
    assert len(web.received) == 1
    assert _states(store)[("hook", alert.alert_key)][0] == "sending"
    # a round soon after leaves the claim alone (its process might still be sending) ...
    deliver_due(store, config, now=lambda: NOW + timedelta(seconds=30))
    assert len(web.received) == 1
    # ... once the claim is stale the delivery is resent, with the same idempotency key
    deliver_due(store, config, now=lambda: NOW + timedelta(minutes=10))
    assert [r["idempotency_key"] for r in web.received] == [f"{alert.alert_key}/hook"] * 2
    assert _states(store)[("hook", alert.alert_key)][:2] == ("delivered", 2)


def _clock(subject: str, minutes_late: float, status: str = "breach", severity="critical"):
    from ocse.alerts.rules import AlertCandidate

    started = NOW - timedelta(minutes=60 + minutes_late)
    episode = f"takedown:{subject}:{started:%Y%m%dT%H%M%SZ}"
    return AlertCandidate(
        alert_key=f"{episode}:{status}",
        episode_key=episode,
        alert_type="takedown",
        status=status,
        severity=severity,
        subject_id=subject,
        category_code="csam_possession",
        title=f"CSAM still visible: {subject}",
        facts={"elapsed_minutes": 60 + minutes_late, "target_minutes": 60},
        transition_at=NOW - timedelta(minutes=minutes_late),
    )


def test_a_backfill_raises_nothing_and_the_current_t_sends_nothing_twice(tmp_path, store):
    config = _config(tmp_path, 1, 1)
    live = [_clock("cnt-a", 5)]
    first = raise_alerts(store, live, config, NOW, as_of=NOW, resolve_missing_types=["takedown"])
    assert first.mode == "live" and first.raised == [live[0].alert_key]
    # a backfill at an earlier T sees other clocks (or none): nothing raised, nothing resolved
    earlier = NOW - timedelta(days=3)
    back = raise_alerts(
        store,
        [_clock("cnt-old", 1)],
        config,
        NOW,
        as_of=earlier,
        resolve_missing_types=["takedown"],
    )
    assert back.mode == "backfill" and back.raised == back.resolved == []
    # then the current T again: the same alert, known, not raised nor re-sent
    again = raise_alerts(
        store,
        live,
        config,
        NOW,
        as_of=NOW + timedelta(minutes=5),
        resolve_missing_types=["takedown"],
    )
    assert again.raised == [] and again.deliveries == 0
    assert store.rows("select count(*) from deliveries")[0][0] == 2  # hook + mail, once each
    assert store.rows("select resolved_at from outbox")[0][0] is None


def test_a_clock_that_stops_and_runs_again_is_reopened_not_raised_again(tmp_path, store):
    config = _config(tmp_path, 1, 1)
    clock = _clock("cnt-a", 5)
    raise_alerts(store, [clock], config, NOW, as_of=NOW, resolve_missing_types=["takedown"])
    stopped = raise_alerts(
        store, [], config, NOW, as_of=NOW + timedelta(minutes=5), resolve_missing_types=["takedown"]
    )
    assert stopped.resolved == [clock.alert_key]
    again = raise_alerts(
        store,
        [clock],
        config,
        NOW,
        as_of=NOW + timedelta(minutes=10),
        resolve_missing_types=["takedown"],
    )
    assert again.raised == [] and again.reopened == [clock.alert_key]
    # a clock of the same content with another start is a new clock: a new alert
    new_clock = _clock("cnt-a", 2)
    assert new_clock.episode_key != clock.episode_key
    assert raise_alerts(
        store, [new_clock], config, NOW, as_of=NOW + timedelta(minutes=15)
    ).raised == [new_clock.alert_key]


def test_a_first_run_sends_old_breaches_as_one_digest_per_channel(receivers, tmp_path, store):
    web, mail, http_port, smtp_port = receivers
    config = _config(tmp_path, http_port, smtp_port)
    # 200 clocks that breached days ago, and 2 that breached in the last minutes
    old = [_clock(f"cnt-old-{i:03d}", 60 * 24 * (1 + i % 30)) for i in range(200)]
    live = [_clock("cnt-live-1", 3), _clock("cnt-live-2", 10)]
    result = raise_alerts(store, old + live, config, NOW, as_of=NOW)
    assert len(result.backlog) == 200 and sorted(result.raised) == sorted(c.alert_key for c in live)
    deliver_due(store, config, now=lambda: NOW)

    digests = [r["body"] for r in web.received if r["body"]["alert_type"] == "backlog_digest"]
    assert len(digests) == 1 and len(web.received) == 3  # one digest + the two live alerts
    digest = digests[0]
    assert sum(c["alerts"] for c in digest["counts"]) == 200
    assert len(digest["worst"]) == 10
    # the worst: most overdue first
    assert digest["worst"][0] == max(old, key=lambda c: c.facts["elapsed_minutes"]).alert_key
    assert digest["link"].endswith("/operations_queue")
    assert len([m for m in mail.received if "Backlog" in m["subject"]]) == 1
    # every backlog alert is recorded, carried by its channel's digest, never sent alone
    states = store.rows(
        "select state, count(*) from deliveries d join outbox o using (alert_key) "
        "where o.delivery_mode = 'backlog' group by 1"
    )
    assert states == [("digested", 400)]


def test_the_store_outlives_the_warehouse(tmp_path, store):
    """Alert identity is not in the warehouse file: deleting and rebuilding the warehouse
    (or a full refresh) cannot make an alert new again."""
    config = _config(tmp_path, 1, 1)
    clock = _clock("cnt-a", 5)
    raise_alerts(store, [clock], config, NOW, as_of=NOW)
    store.close()
    with sqlite3.connect(tmp_path / "alerts.sqlite") as conn:
        assert conn.execute("select count(*) from outbox").fetchone()[0] == 1
    with AlertStore(tmp_path / "alerts.sqlite") as reopened:
        assert raise_alerts(reopened, [clock], config, NOW, as_of=NOW).raised == []


def test_a_long_message_id_is_sent_unfolded_and_read_whole():
    """A Message-ID has no space to fold at: folded before its value, a receiver read it
    with a leading space, and the same delivery looked like another (the soak test saw it)."""
    from email import message_from_bytes
    from email.policy import default

    from ocse.alerts.config import SmtpChannel

    sent = []

    class FakeSmtp:
        def send_message(self, message):
            sent.append(message.as_bytes())

    session = deliver.SmtpSession(
        SmtpChannel(type="smtp", host="127.0.0.1", sender="a@b.org", recipients=["c@d.org"])
    )
    session.smtp = FakeSmtp()
    key = "referral:case-d070a0ffbac3:20261201T215619Z:near_breach/mail"
    session.send({"alert_key": key, "title": "t", "severity": "high", "text": "b"}, key)
    (raw,) = sent
    assert (
        b"Message-ID: <referral.case-d070a0ffbac3.20261201T215619Z.near_breach.mail@ocse>\n" in raw
    )
    parsed = message_from_bytes(raw, policy=default)
    assert str(parsed["Message-ID"]) == (
        "<referral.case-d070a0ffbac3.20261201T215619Z.near_breach.mail@ocse>"
    )
