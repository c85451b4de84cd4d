"""Delivery of the outbox to its channels: HTTP webhooks and SMTP e-mail.

Each (alert, channel) is a row in alerts.deliveries. A run sends every delivery that is due,
most severe first, trying a few times with a short pause; what still fails waits with
exponential backoff for a later run (the pipeline's own, or the delivery schedule's every
minute). A receiver that was down gets everything once it is back, exactly once: a delivery
is marked delivered in the same step it succeeds, and carries an idempotency key
(Idempotency-Key header, Message-ID) should a crash between the two ever resend it. After
`max_attempts` it is marked failed: visible, never dropped silently."""

from __future__ import annotations

import json
import os
import smtplib
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

import duckdb

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


def send_email(channel: SmtpChannel, payload: dict, idempotency_key: str) -> None:
    message = email_message(payload, channel.sender, channel.recipients)
    try:
        with smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout_seconds) as smtp:
            if channel.starttls:
                smtp.starttls()
            if channel.username:
                smtp.login(channel.username, os.environ.get(channel.password_env or "", ""))
            smtp.send_message(message)
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(f"SMTP {exc.smtp_code}") from None
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP unreachable: {type(exc).__name__}") from None


def send(channel: WebhookChannel | SmtpChannel, payload: dict, idempotency_key: str) -> None:
    if isinstance(channel, WebhookChannel):
        send_webhook(channel, payload, idempotency_key)
    else:
        send_email(channel, payload, idempotency_key)


def deliver_due(
    conn: duckdb.DuckDBPyConnection,
    config: AlertingConfig,
    *,
    now: Callable[[], datetime],
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = lambda _: None,
) -> Counter:
    """Send every delivery due now; return how many were delivered, retried later, failed."""
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
    outcome: Counter = Counter()
    unreachable: set[str] = set()
    retry = config.retry
    for alert_key, channel_name, attempts, payload in due:
        channel = config.channels.get(channel_name)
        error = None
        if channel is None:
            error = f"channel {channel_name!r} is no longer configured"
            attempts = retry.max_attempts
        elif channel_name in unreachable:
            # the channel already failed this run: do not hammer it, keep the order
            error = "skipped: channel unreachable in this run"
        else:
            for quick in range(retry.attempts_per_run):
                attempts += 1
                try:
                    send(channel, json.loads(payload), f"{alert_key}/{channel_name}")
                    error = None
                    break
                except DeliveryError as exc:
                    error = str(exc)
                    if attempts >= retry.max_attempts or quick == retry.attempts_per_run - 1:
                        break
                    sleep(min(retry.backoff_seconds(attempts), 2.0))
            if error:
                unreachable.add(channel_name)
        at = now()
        if error is None:
            conn.execute(
                "update alerts.deliveries set state = 'delivered', attempts = ?, "
                "delivered_at = ?, last_error = null where alert_key = ? and channel = ?",
                [attempts, at, alert_key, channel_name],
            )
            outcome["delivered"] += 1
        elif attempts >= retry.max_attempts:
            conn.execute(
                "update alerts.deliveries set state = 'failed', attempts = ?, last_error = ? "
                "where alert_key = ? and channel = ?",
                [attempts, error, alert_key, channel_name],
            )
            outcome["failed"] += 1
            log(f"alert {alert_key} to {channel_name} failed for good: {error}")
        else:
            wait = timedelta(seconds=retry.backoff_seconds(max(attempts, 1)))
            conn.execute(
                "update alerts.deliveries set attempts = ?, last_error = ?, next_attempt_at = ? "
                "where alert_key = ? and channel = ?",
                [attempts, error, at + wait, alert_key, channel_name],
            )
            outcome["retry_later"] += 1
    return outcome
