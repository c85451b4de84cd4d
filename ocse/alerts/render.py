"""The words of an alert, fixed when it is raised and stored in the outbox, so every
channel and every retry sends the same thing. Built only from marts and ledger values:
subject ids (content, report, case ids), categories, minutes; never a raw identifier."""

from __future__ import annotations

import json
from email.message import EmailMessage

from ocse.alerts.rules import AlertCandidate


def alert_text(c: AlertCandidate) -> str:
    f = c.facts
    lines = [f"[{c.severity.upper()}] {c.title}"]
    if "clock" in f:
        lines += [
            f"Category: {f['category_label_en']} / {f['category_label_zh']} ({c.category_code})",
            f"Subject: {c.subject_id} ({f['clock']} clock)",
            f"Elapsed: {f['elapsed_minutes']:,.0f} min of a {f['target_minutes']:,} min target"
            f" (deadline {f['deadline_at']})",
            f"As of: {f['as_of']}",
        ]
    elif c.alert_type == "feed_silent":
        lines.append(f"Last file received: {f['last_file_received_at'] or 'never'}")
    elif c.alert_type in ("file_rejected", "quarantine_spike"):
        read, quarantined = f["rows_read"], f["rows_quarantined"]
        lines.append(f"Feed: {f['feed']}; rows read {read:,}, quarantined {quarantined:,}")
    elif c.alert_type == "digest":
        lines += f["lines"]
    if f.get("link"):
        lines.append(f"Open: {f['link']}")
    return "\n".join(lines)


def alert_json(c: AlertCandidate, raised_at: str) -> dict:
    return {
        "alert_key": c.alert_key,
        "alert_type": c.alert_type,
        "status": c.status,
        "severity": c.severity,
        "subject_id": c.subject_id,
        "category_code": c.category_code,
        "title": c.title,
        "text": alert_text(c),
        "raised_at": raised_at,
        **{k: v for k, v in c.facts.items() if k != "lines"},
    }


def webhook_body(payload: dict, fmt: str) -> bytes:
    if fmt == "slack":
        body = {
            "text": payload["title"],
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": payload["text"]}}],
        }
    else:
        body = payload
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def email_message(payload: dict, sender: str, recipients: list[str]) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = f"[OCSE {payload['severity']}] {payload['title']}"
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    # the same alert retried has the same Message-ID, so mail systems can drop a duplicate
    msg["Message-ID"] = f"<{payload['alert_key'].replace(':', '.')}@ocse-warehouse>"
    msg.set_content(payload["text"])
    return msg
