"""Local receivers for the outbox tests: an SMTP server (aiosmtpd) and an HTTP server
standing in for a 企业微信 group robot, both on free ports of 127.0.0.1, recording what
arrives. Kept free of pytest imports (the worker processes import this package)."""

from __future__ import annotations

import asyncio
import email
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RobotServer:
    """A group robot: records every POST (its ``Idempotency-Key`` header and JSON body)."""

    status: int = 200
    errcode: int = 0
    delay: float = 0.0
    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def start(self) -> RobotServer:
        robot = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                if robot.delay:
                    time.sleep(robot.delay)
                with robot.lock:
                    robot.received.append(
                        {
                            "path": self.path,
                            "header_key": self.headers.get("Idempotency-Key"),
                            "content_type": self.headers.get("Content-Type"),
                            "body": json.loads(raw.decode("utf-8")),
                        }
                    )
                answer = json.dumps({"errcode": robot.errcode, "errmsg": "ok"}).encode()
                self.send_response(robot.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/cgi-bin/webhook/send?key=SECRET-robot-key-1234"

    def keys(self) -> list[str]:
        with self.lock:
            return [r["body"]["idempotency_key"] for r in self.received]

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class MailServer:
    """An SMTP server (aiosmtpd) that keeps every message it accepts."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Message] = []
        self.lock = threading.Lock()
        self.delay = 0.0  # seconds each accepted message takes
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.delay:
            await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.content)
        with self.lock:
            self.messages.append(message)
        return "250 OK"

    def start(self) -> MailServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def message_ids(self) -> list[str]:
        with self.lock:
            return [str(m["Message-ID"]) for m in self.messages]
