"""Delivery of the alert store's deliveries to their channels: HTTP webhooks and SMTP e-mail.

Exactly once, per (alert, channel):
- A delivery is claimed before it is sent: `pending -> sending` in a committed transaction
  that also counts the attempt. Only one process can claim it (a pipeline run and the
  delivery job may both be delivering). After the send it is marked `delivered`, or back to
  `pending` with its next attempt time, or `failed`. A process that dies between the send
  and the mark leaves a claim; once the claim is older than `retry.claim_timeout_seconds` the
  delivery is sent again with the same idempotency key (Idempotency-Key header, e-mail
  Message-ID), which the receiver recognises as a repeat.
- A channel is probed, not hammered. Each round on a channel sends its most severe delivery
  alone first (the canary); the first failure marks the channel down; what was not yet
  started is left alone and spends no attempt. While down, each round tries one delivery
  (the one tried least, most severe first) once its probe time has come, with exponential
  backoff between probes; when a probe succeeds the channel is up and the queue drains, most
  severe first.
- Nothing severe is dropped. A delivery tried `max_attempts` times is marked failed and a copy
  goes to the dead-letter channels (alerting.yaml `dead_letter`); a severe one that has waited
  `dead_letter.after_minutes` gets that copy while it stays queued on its own channel.
  `ocse alerts retry` re-queues.
- Every round is recorded per channel (alerts `delivery_rounds`): what a run delivered, what
  failed, whether the channel was down. Run summaries and the pipeline-health page read it.
"""

from __future__ import annotations

import json
import os
import smtplib
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ocse.alerts.config import SEVERITIES, AlertingConfig, SmtpChannel, WebhookChannel
from ocse.alerts.render import email_message, webhook_body
from ocse.alerts.store import AlertStore, parse_ts, ts


class DeliveryError(Exception):
    """A channel refused or could not be reached; the message is ours, never the payload."""


def send_webhook(channel: WebhookChannel, payload: dict, idempotency_key: str) -> None:
    request = urllib.request.Request(
        channel.url,
        data=webhook_body(payload, channel.format),
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": idempotency_key,
            "User-Agent": "ocse-warehouse-alerts/1",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=channel.timeout_seconds) as response:
            if not 200 <= response.status < 300:
                raise DeliveryError(f"HTTP {response.status}")
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"unreachable: {type(reason).__name__}") from None


class SmtpSession:
    """One SMTP connection, opened on first use and reused for every message after it (a
    session per message cost a TCP and SMTP handshake each); a failure drops the connection
    and the next message opens a new one."""

    def __init__(self, channel: SmtpChannel) -> None:
        self.channel = channel
        self.smtp: smtplib.SMTP | None = None

    def _open(self) -> smtplib.SMTP:
        channel = self.channel
        smtp = smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout_seconds)
        if channel.starttls:
            smtp.starttls()
        if channel.username:
            smtp.login(channel.username, os.environ.get(channel.password_env or "", ""))
        return smtp

    def send(self, payload: dict, idempotency_key: str) -> None:
        message = email_message(payload, self.channel.sender, self.channel.recipients)
        del message["Message-ID"]
        # the same delivery resent has the same Message-ID, so mail systems drop the repeat
        message["Message-ID"] = f"<{idempotency_key.replace(':', '.').replace('/', '.')}@ocse>"
        # A Message-ID has no space to fold at: a long one was folded before its value, which
        # some receivers keep as a leading space. RFC 5322 allows lines of 998 characters.
        message.policy = message.policy.clone(max_line_length=998)
        try:
            if self.smtp is None:
                self.smtp = self._open()
            self.smtp.send_message(message)
        except smtplib.SMTPResponseException as exc:
            self.close()
            raise DeliveryError(f"SMTP {exc.smtp_code}") from None
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            self.close()
            raise DeliveryError(f"SMTP unreachable: {type(exc).__name__}") from None

    def close(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


class _Sender:
    """Sends to one channel from several threads, each keeping its own SMTP session."""

    def __init__(self, channel) -> None:
        self.channel = channel
        self.local = threading.local()
        self.sessions: list[SmtpSession] = []
        self.lock = threading.Lock()

    def send(self, payload: dict, key: str) -> None:
        if isinstance(self.channel, WebhookChannel):
            send_webhook(self.channel, payload, key)
            return
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = SmtpSession(self.channel)
            with self.lock:
                self.sessions.append(session)
        session.send(payload, key)

    def close(self) -> None:
        for session in self.sessions:
            session.close()


@dataclass
class RoundOutcome:
    """What one delivery round did, per channel and in all."""

    totals: Counter = field(default_factory=Counter)
    channels: dict[str, dict] = field(default_factory=dict)

    @property
    def down(self) -> list[str]:
        """Channels that are down with alerts waiting for them (a channel last seen down with
        nothing to send is not news)."""
        return sorted(
            c
            for c, v in self.channels.items()
            if v["channel_state"] == "down" and v["waiting"] + v["retry_later"] + v["failed"]
        )

    def get(self, key: str, default: int = 0) -> int:
        return self.totals.get(key, default)


def claimant() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _claim(store: AlertStore, alert_key: str, channel: str, now: datetime) -> int | None:
    """pending -> sending, attempt counted; the attempt number, or None when another
    process claimed it first."""
    with store.transaction() as conn:
        row = conn.execute(
            "update deliveries set state = 'sending', attempts = attempts + 1, "
            "claimed_at = ?, claimed_by = ? "
            "where alert_key = ? and channel = ? and state = 'pending' returning attempts",
            (ts(now), claimant(), alert_key, channel),
        ).fetchone()
    return row[0] if row else None


def _mark(
    store: AlertStore,
    alert_key: str,
    channel: str,
    attempts: int,
    error: str | None,
    now: datetime,
    config: AlertingConfig,
) -> str:
    retry = config.retry
    if error is None:
        state, next_at = "delivered", None
    elif attempts >= retry.max_attempts:
        state, next_at = "failed", None
    else:
        state, next_at = "pending", now + timedelta(seconds=retry.backoff_seconds(attempts))
    with store.transaction() as conn:
        conn.execute(
            "update deliveries set state = ?, last_error = ?, claimed_at = null, "
            "claimed_by = null, delivered_at = case when ? = 'delivered' then ? "
            "else delivered_at end, next_attempt_at = coalesce(?, next_attempt_at) "
            "where alert_key = ? and channel = ? and state = 'sending'",
            (
                state,
                error,
                state,
                ts(now),
                ts(next_at) if next_at else None,
                alert_key,
                channel,
            ),
        )
    return state


def _channel_row(store: AlertStore, channel: str) -> dict:
    row = store.rows(
        "select state, failures, next_probe_at, down_since from channels where channel = ?",
        (channel,),
    )
    if not row:
        return {"state": "up", "failures": 0, "next_probe_at": None, "down_since": None}
    state, failures, probe, since = row[0]
    return {"state": state, "failures": failures, "next_probe_at": probe, "down_since": since}


def _set_channel(
    store: AlertStore, channel: str, *, up: bool, now: datetime, error: str | None, config
) -> None:
    with store.transaction() as conn:
        row = conn.execute(
            "select failures, down_since from channels where channel = ?", (channel,)
        ).fetchone()
        failures, since = row if row else (0, None)
        if up:
            conn.execute(
                "insert into channels (channel, state, failures, last_success_at) "
                "values (?, 'up', 0, ?) on conflict (channel) do update set state = 'up', "
                "failures = 0, down_since = null, next_probe_at = null, last_success_at = ?",
                (channel, ts(now), ts(now)),
            )
            return
        failures += 1
        probe = now + timedelta(seconds=config.retry.backoff_seconds(failures))
        conn.execute(
            "insert into channels (channel, state, failures, down_since, next_probe_at, "
            "last_error) values (?, 'down', ?, ?, ?, ?) on conflict (channel) do update set "
            "state = 'down', failures = excluded.failures, down_since = "
            "coalesce(channels.down_since, excluded.down_since), "
            "next_probe_at = excluded.next_probe_at, last_error = excluded.last_error",
            (channel, failures, since or ts(now), ts(probe), error),
        )


def reclaim_stale(store: AlertStore, config: AlertingConfig, now: datetime) -> int:
    """Claims of a process that died mid-send go back to pending (due now). Their attempt
    was counted; the resend carries the same idempotency key."""
    cutoff = now - timedelta(seconds=config.retry.claim_timeout_seconds)
    with store.transaction() as conn:
        return conn.execute(
            "update deliveries set state = 'pending', next_attempt_at = ?, claimed_at = null, "
            "last_error = 'resent: the process sending it stopped before recording the outcome' "
            "where state = 'sending' and claimed_at < ?",
            (ts(now), ts(cutoff)),
        ).rowcount


def escalate(store: AlertStore, config: AlertingConfig, now: datetime) -> Counter:
    """Dead-letter copies: of every failed delivery, and of every severe delivery waiting
    longer than `dead_letter.after_minutes`. Each (alert, channel) at most once. Returns the
    copies made per dead-letter channel."""
    dead = config.dead_letter
    made: Counter = Counter()
    if dead is None:
        return made
    waited = ts(now - timedelta(minutes=dead.after_minutes))
    min_rank = SEVERITIES.index(dead.min_severity)
    with store.transaction() as conn:
        rows = conn.execute(
            "select d.alert_key, d.channel from deliveries d join outbox o using (alert_key) "
            "where d.escalated_at is null and d.escalated_from is null and ("
            "  d.state = 'failed' or (d.state in ('pending', 'sending') "
            "  and o.severity_rank >= ? and o.raised_at <= ?))",
            (min_rank, waited),
        ).fetchall()
        for alert_key, channel in rows:
            for target in dead.channels:
                if target == channel:
                    continue
                made[target] += conn.execute(
                    "insert or ignore into deliveries (alert_key, channel, state, "
                    "next_attempt_at, idempotency_key, escalated_from) "
                    "values (?, ?, 'pending', ?, ?, ?)",
                    (alert_key, target, ts(now), f"{alert_key}/{target}", channel),
                ).rowcount
            conn.execute(
                "update deliveries set escalated_at = ? where alert_key = ? and channel = ?",
                (ts(now), alert_key, channel),
            )
    return made


def _due(store: AlertStore, now: datetime) -> dict[str, list[tuple[str, int, str, int]]]:
    rows = store.rows(
        """
        select d.channel, d.alert_key, d.attempts, o.payload, o.severity_rank
        from deliveries d join outbox o using (alert_key)
        where d.state = 'pending' and d.next_attempt_at <= ?
        order by o.severity_rank desc, o.raised_at, d.alert_key
        """,
        (ts(now),),
    )
    due: dict[str, list[tuple[str, int, str, int]]] = {}
    for channel, key, attempts, payload, rank in rows:
        due.setdefault(channel, []).append((key, attempts, payload, rank))
    return due


def deliver_due(
    store: AlertStore,
    config: AlertingConfig,
    *,
    now: Callable[[], datetime],
    run_id: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = lambda _: None,
    workers: int = 8,
) -> RoundOutcome:
    """One delivery round: reclaim dead claims, escalate, then send what is due on every
    channel (each channel from its own pool of threads, at once). Returns the outcome."""
    started = now()
    outcome = RoundOutcome()
    outcome.totals["reclaimed"] = reclaim_stale(store, config, started)
    escalated = escalate(store, config, started)
    # A second pass sends, in the same round, the dead-letter copies the first one made.
    for _ in range(2):
        _send_pass(store, config, now, sleep, log, workers, outcome)
        more = escalate(store, config, now())
        escalated.update(more)
        if not more:
            break
    outcome.totals["escalated"] = sum(escalated.values())
    with store.transaction() as conn:
        conn.executemany(
            "insert into delivery_rounds (run_id, started_at, channel, channel_state, delivered, "
            "retry_later, failed, escalated, waiting, last_error) values (?, ?, ?, ?, ?, ?, ?, "
            "?, ?, ?)",
            [
                (
                    run_id,
                    ts(started),
                    name,
                    v["channel_state"],
                    v["delivered"],
                    v["retry_later"],
                    v["failed"],
                    escalated.get(name, 0),
                    v["waiting"],
                    v["error"],
                )
                for name, v in sorted(outcome.channels.items())
            ],
        )
    return outcome


def _send_pass(store, config, now, sleep, log, workers, outcome: RoundOutcome) -> None:
    """Send what is due on every channel, each channel from its own pool of threads, at
    once; add the results to `outcome`."""
    due = _due(store, now())
    channels = sorted(set(due) | {c for (c,) in store.rows("select channel from channels")})

    def run_channel(name: str) -> dict:
        items = due.get(name, [])
        stats = Counter()
        error: str | None = None
        channel = config.channels.get(name)
        if channel is None:
            for key, *_ in items:
                if _claim(store, key, name, now()) is not None:
                    _mark(
                        store,
                        key,
                        name,
                        config.retry.max_attempts,
                        "channel no longer configured",
                        now(),
                        config,
                    )
                    stats["failed"] += 1
            return {"stats": stats, "channel_state": "unknown", "error": "not configured"}
        state = _channel_row(store, name)
        if state["state"] == "down":
            probe_at = parse_ts(state["next_probe_at"])
            if not items or (probe_at is not None and now() < probe_at):
                stats["waiting"] = len(items)
                return {"stats": stats, "channel_state": "down", "error": None}
            # The probe: the delivery tried least (most severe first among those), so no
            # single alert spends its attempts on an outage.
            probe = min(items, key=lambda i: (i[1], -i[3]))
            ok, error, state_after = _attempt(
                store,
                sender_for(name),
                name,
                probe,
                config,
                now,
                sleep,
                probe_tries=config.retry.attempts_per_run,
            )
            stats[state_after] += 1
            if state_after == "skipped":  # another process is sending it: no news
                stats["waiting"] = len(items) - 1
                return {"stats": stats, "channel_state": "down", "error": None}
            if not ok:
                _set_channel(store, name, up=False, now=now(), error=error, config=config)
                stats["waiting"] = len(items) - 1
                return {"stats": stats, "channel_state": "down", "error": error}
            _set_channel(store, name, up=True, now=now(), error=None, config=config)
            items = [i for i in items if i[0] != probe[0]]
        if not items:
            return {"stats": stats, "channel_state": "up", "error": None}
        sender = sender_for(name)
        if state["state"] != "down" and len(items) > 1:
            # The canary: on a channel believed up, the most severe goes alone first, so an
            # outage that began since the last round costs one attempt, not one per thread.
            ok, error, state_after = _attempt(store, sender, name, items[0], config, now, sleep)
            stats[state_after] += 1
            if not ok and state_after != "skipped":
                _set_channel(store, name, up=False, now=now(), error=error, config=config)
                stats["waiting"] = len(items) - 1
                return {"stats": stats, "channel_state": "down", "error": error}
            items = items[1:]
        down = threading.Event()
        errors: list[str] = []

        def one(item):
            if down.is_set():
                return "waiting"
            ok, err, state_after = _attempt(store, sender, name, item, config, now, sleep)
            if not ok and state_after != "skipped":
                errors.append(err)
                down.set()
            return state_after

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for state_after in pool.map(one, items):
                stats[state_after] += 1
        if errors:
            error = errors[0]
            _set_channel(store, name, up=False, now=now(), error=error, config=config)
            return {"stats": stats, "channel_state": "down", "error": error}
        _set_channel(store, name, up=True, now=now(), error=None, config=config)
        return {"stats": stats, "channel_state": "up", "error": None}

    senders: dict[str, _Sender] = {}
    senders_lock = threading.Lock()

    def sender_for(name: str) -> _Sender:
        with senders_lock:
            if name not in senders:
                senders[name] = _Sender(config.channels[name])
            return senders[name]

    try:
        with ThreadPoolExecutor(max_workers=max(1, len(channels))) as pool:
            results = dict(zip(channels, pool.map(run_channel, channels), strict=True))
    finally:
        for sender in senders.values():
            sender.close()
    for name, result in results.items():
        stats = result["stats"]
        stats.pop("skipped", None)
        outcome.totals.update(stats)
        earlier = outcome.channels.get(name, {})
        outcome.channels[name] = {
            "channel_state": result["channel_state"],
            "error": result["error"] or earlier.get("error"),
            **{
                k: stats.get(k, 0) + (earlier.get(k, 0) if k != "waiting" else 0)
                for k in ("delivered", "retry_later", "failed", "waiting")
            },
        }
        if result["channel_state"] == "down":
            log(
                f"alert channel {name} is down ({result['error'] or 'earlier failures'}): "
                f"{stats.get('delivered', 0)} delivered, {stats.get('waiting', 0)} waiting "
                "for it to come back"
            )


def _attempt(
    store: AlertStore,
    sender: _Sender,
    channel: str,
    item: tuple[str, int, str, int],
    config: AlertingConfig,
    now: Callable[[], datetime],
    sleep: Callable[[float], None],
    *,
    probe_tries: int = 1,
) -> tuple[bool, str | None, str]:
    """Claim, send, mark one delivery; (delivered?, error, outcome: delivered | retry_later |
    failed | skipped)."""
    alert_key, _, payload, _ = item
    error = None
    for quick in range(probe_tries):
        attempts = _claim(store, alert_key, channel, now())
        if attempts is None:
            return False, None, "skipped"  # another process has it
        try:
            sender.send(json.loads(payload), f"{alert_key}/{channel}")
            _mark(store, alert_key, channel, attempts, None, now(), config)
            return True, None, "delivered"
        except DeliveryError as exc:
            error = str(exc)
            state = _mark(store, alert_key, channel, attempts, error, now(), config)
            if state == "failed":
                return False, error, "failed"
            if quick < probe_tries - 1:
                # a quick retry: due at once again
                store.execute(
                    "update deliveries set next_attempt_at = ? where alert_key = ? and "
                    "channel = ? and state = 'pending'",
                    (ts(now()), alert_key, channel),
                )
                sleep(min(config.retry.backoff_seconds(attempts), 2.0))
    return False, error, "retry_later"


def requeue(store: AlertStore, *, failed: bool, requested_by: str, now: datetime) -> int:
    """`ocse alerts retry`: every pending delivery due now and every channel probed at once;
    with `failed`, failed deliveries too, their attempts reset. Recorded in `requeues`."""
    with store.transaction() as conn:
        n = conn.execute(
            "update deliveries set next_attempt_at = ? where state = 'pending'", (ts(now),)
        ).rowcount
        if failed:
            n += conn.execute(
                "update deliveries set state = 'pending', attempts = 0, next_attempt_at = ?, "
                "last_error = 'requeued: ' || coalesce(last_error, '') where state = 'failed'",
                (ts(now),),
            ).rowcount
        conn.execute("update channels set next_probe_at = ? where state = 'down'", (ts(now),))
        conn.execute(
            "insert into requeues values (?, ?, ?, ?)",
            (ts(now), requested_by, "pending+failed" if failed else "pending", n),
        )
    return n


def deliveries_due(store: AlertStore, now: datetime) -> int:
    """Deliveries a round would try now (pending and due on a channel that is up or due for
    a probe, or claimed by a process that died): what the delivery sensor asks."""
    (n,) = store.rows(
        """
        select count(*) from deliveries d left join channels c using (channel)
        where (d.state = 'pending' and d.next_attempt_at <= ?
               and (c.state is null or c.state = 'up' or c.next_probe_at <= ?))
        """,
        (ts(now), ts(now)),
    )[0]
    return n
