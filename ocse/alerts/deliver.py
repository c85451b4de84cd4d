"""Delivery of the outbox to its channels: HTTP webhooks and SMTP e-mail.

Each (alert, channel) is a row in alerts.deliveries. A run sends every delivery that is due,
most severe first, trying a few times with a short pause; what still fails waits with
exponential backoff for a later run (the pipeline's own, or the delivery schedule's every
minute). A receiver that was down gets everything once it is back, exactly once: a delivery
is marked delivered in the run it succeeds (in batches, see MARK_BATCH), and carries an
idempotency key (Idempotency-Key header, Message-ID) should a crash between the two ever
resend it. After `max_attempts` it is marked failed: visible, never dropped silently.

Speed: a year's first run raises tens of thousands of alerts. Each channel's deliveries are
sent from a small pool of threads (webhook posts in parallel; SMTP over one reused session
per thread), and the outcomes are written back in batches, not a statement each."""

from __future__ import annotations

import json
import os
import smtplib
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import duckdb
import polars as pl

from ocse.alerts.config import AlertingConfig, SmtpChannel, WebhookChannel
from ocse.alerts.render import email_message, webhook_body


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

    def send(self, payload: dict) -> None:
        message = email_message(payload, self.channel.sender, self.channel.recipients)
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


class _ChannelSender:
    """Sends one channel's due deliveries from a pool of threads, each keeping its own SMTP
    session. Once a delivery has failed every quick attempt, the channel counts as
    unreachable for the rest of the run: what was not yet started is skipped, not tried."""

    def __init__(self, channel, retry, sleep) -> None:
        self.channel, self.retry, self.sleep = channel, retry, sleep
        self.unreachable = threading.Event()
        self.local = threading.local()
        self.sessions: list[SmtpSession] = []
        self.lock = threading.Lock()

    def _send(self, payload: dict, key: str) -> None:
        if isinstance(self.channel, WebhookChannel):
            send_webhook(self.channel, payload, key)
            return
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = SmtpSession(self.channel)
            with self.lock:
                self.sessions.append(session)
        session.send(payload)

    def attempt(self, key: str, attempts: int, payload: str) -> tuple[int, str | None]:
        """(attempts after this run, error or None when delivered)."""
        if self.unreachable.is_set():
            return attempts, "skipped: channel unreachable in this run"
        retry, error = self.retry, None
        for quick in range(retry.attempts_per_run):
            attempts += 1
            try:
                self._send(json.loads(payload), key)
                return attempts, None
            except DeliveryError as exc:
                error = str(exc)
                if attempts >= retry.max_attempts or quick == retry.attempts_per_run - 1:
                    break
                self.sleep(min(retry.backoff_seconds(attempts), 2.0))
        self.unreachable.set()
        return attempts, error

    def close(self) -> None:
        for session in self.sessions:
            session.close()


# Outcomes are written back in batches of this many: a statement per delivery cost more than
# the delivery. A crash loses at most one batch's marks; those are resent with the same
# idempotency key (Idempotency-Key header, Message-ID), which receivers use to drop repeats.
MARK_BATCH = 500
MARK_SCHEMA = {
    "alert_key": pl.String,
    "channel": pl.String,
    "state": pl.String,
    "attempts": pl.Int32,
    "last_error": pl.String,
    "at": pl.Datetime("us", "UTC"),
    "next_attempt_at": pl.Datetime("us", "UTC"),
}


def _mark(conn: duckdb.DuckDBPyConnection, marks: list[dict]) -> None:
    if not marks:
        return
    conn.register("delivery_marks", pl.DataFrame(marks, schema=MARK_SCHEMA).to_arrow())
    try:
        conn.execute(
            """
            update alerts.deliveries as d set
                state = m.state,
                attempts = m.attempts,
                last_error = m.last_error,
                delivered_at = case when m.state = 'delivered' then m.at else d.delivered_at end,
                next_attempt_at = coalesce(m.next_attempt_at, d.next_attempt_at)
            from delivery_marks as m
            where d.alert_key = m.alert_key and d.channel = m.channel
            """
        )
    finally:
        conn.unregister("delivery_marks")
    marks.clear()


def deliver_due(
    conn: duckdb.DuckDBPyConnection,
    config: AlertingConfig,
    *,
    now: Callable[[], datetime],
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = lambda _: None,
    workers: int = 8,
) -> Counter:
    """Send every delivery due now; return how many were delivered, retried later, failed.
    Each channel's deliveries go out most severe first from `workers` threads."""
    due = conn.execute(
        """
        select d.alert_key, d.channel, d.attempts, o.payload
        from alerts.deliveries d
        join alerts.outbox o using (alert_key)
        where d.state = 'pending' and d.next_attempt_at <= ?
        order by o.severity_rank desc, o.raised_at, d.alert_key, d.channel
        """,
        [now()],
    ).fetchall()
    by_channel: dict[str, list[tuple[str, int, str]]] = {}
    for alert_key, channel_name, attempts, payload in due:
        by_channel.setdefault(channel_name, []).append((alert_key, attempts, payload))
    outcome: Counter = Counter()
    retry = config.retry
    marks: list[dict] = []

    def record(alert_key: str, channel_name: str, attempts: int, error: str | None) -> None:
        at = now()
        mark = {
            "alert_key": alert_key,
            "channel": channel_name,
            "attempts": attempts,
            "last_error": error,
            "at": at,
            "next_attempt_at": None,
        }
        if error is None:
            mark["state"] = "delivered"
            outcome["delivered"] += 1
        elif attempts >= retry.max_attempts:
            mark["state"] = "failed"
            outcome["failed"] += 1
            log(f"alert {alert_key} to {channel_name} failed for good: {error}")
        else:
            mark["state"] = "pending"
            mark["next_attempt_at"] = at + timedelta(
                seconds=retry.backoff_seconds(max(attempts, 1))
            )
            outcome["retry_later"] += 1
        marks.append(mark)
        if len(marks) >= MARK_BATCH:
            _mark(conn, marks)

    # Every channel's pool starts at once (a critical e-mail does not wait for every webhook
    # post); outcomes are recorded here, in this thread, channel by channel.
    senders: list[_ChannelSender] = []
    pools: list[ThreadPoolExecutor] = []
    try:
        running = []
        for channel_name, items in by_channel.items():
            channel = config.channels.get(channel_name)
            if channel is None:
                error = f"channel {channel_name!r} is no longer configured"
                results = [(retry.max_attempts, error)] * len(items)
            else:
                sender = _ChannelSender(channel, retry, sleep)
                pool = ThreadPoolExecutor(max_workers=max(1, workers))
                senders.append(sender)
                pools.append(pool)
                results = pool.map(
                    lambda item, s=sender, c=channel_name: s.attempt(f"{item[0]}/{c}", *item[1:]),
                    items,
                )
            running.append((channel_name, items, results))
        for channel_name, items, results in running:
            for (alert_key, _, _), (attempts, error) in zip(items, results, strict=True):
                record(alert_key, channel_name, attempts, error)
    finally:
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)
        for sender in senders:
            sender.close()
        _mark(conn, marks)
    return outcome
