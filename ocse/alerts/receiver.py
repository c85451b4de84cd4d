"""A local alert receiver for the demo and the tests: an HTTP endpoint that accepts webhook
posts and an SMTP server that accepts e-mail, both on 127.0.0.1, appending what they get
to a JSON Lines file (one object per alert) and printing a line per alert."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _Sink:
    def __init__(self, path: Path | None, echo: bool) -> None:
        self.path, self.echo, self.lock = path, echo, threading.Lock()
        self.received: list[dict] = []

    def add(self, record: dict) -> None:
        record = {"received_at": datetime.now(UTC).isoformat(), **record}
        with self.lock:
            self.received.append(record)
            if self.path:
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        if self.echo:
            title = record.get("title") or record.get("subject") or ""
            print(f"{record['received_at']} {record['channel']}: {title}", flush=True)


class WebhookReceiver:
    """HTTP server collecting JSON posts; `status` lets a test make it refuse (e.g. 503)."""

    def __init__(self, port: int = 0, *, path: Path | None = None, echo: bool = False) -> None:
        self.sink = _Sink(path, echo)
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.status >= 300:
                    self.send_response(receiver.status)
                    self.end_headers()
                    return
                payload = json.loads(body)
                receiver.sink.add(
                    {
                        "channel": "webhook",
                        "path": self.path,
                        "idempotency_key": self.headers.get("Idempotency-Key"),
                        "title": payload.get("title") or payload.get("text"),
                        "body": payload,
                    }
                )
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def received(self) -> list[dict]:
        return self.sink.received

    def start(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpReceiver:
    """SMTP server (aiosmtpd) collecting messages."""

    def __init__(self, port: int = 8025, *, path: Path | None = None, echo: bool = False) -> None:
        from aiosmtpd.controller import Controller

        self.sink = _Sink(path, echo)
        sink = self.sink

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
                message = message_from_bytes(envelope.content, policy=default_policy)
                sink.add(
                    {
                        "channel": "smtp",
                        "to": list(envelope.rcpt_tos),
                        "subject": str(message["Subject"]),
                        # a long header may arrive folded ("Message-ID:\r\n <...>")
                        "message_id": str(message["Message-ID"]).strip(),
                        "text": message.get_content(),
                    }
                )
                return "250 Message accepted"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=port)
        self.port = port

    @property
    def received(self) -> list[dict]:
        return self.sink.received

    def start(self) -> SmtpReceiver:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
