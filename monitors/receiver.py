"""A webhook receiver on 127.0.0.1 that records the alerts posted to it.

The tests and the alert benchmark use it as the monitor's webhook target,
and it can stand in for Alertmanager or Slack when trying the monitor out.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Delivery:
    """One POST the receiver accepted or failed on purpose."""

    received_at: float  # epoch seconds
    path: str
    body: Any
    status_code: int


class WebhookReceiver:
    """Record JSON POSTs, and respond to the first ``fail_first`` with HTTP 500."""

    def __init__(self, port: int = 0, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.deliveries: list[Delivery] = []
        self._lock = threading.Condition()
        self._server = ThreadingHTTPServer((HOST, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhook-receiver", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}/alerts"

    def start(self) -> WebhookReceiver:
        """Start serving on a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def accepted(self) -> list[Any]:
        """Return the bodies accepted with HTTP 200, in arrival order."""
        with self._lock:
            return [d.body for d in self.deliveries if d.status_code == 200]

    def wait_for(self, check: Callable[[list[Any]], bool], timeout: float) -> list[Any]:
        """Wait until ``check`` holds for the accepted bodies; return them.

        Raises ``TimeoutError`` when it does not hold within ``timeout`` s.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                bodies = [d.body for d in self.deliveries if d.status_code == 200]
                if check(bodies):
                    return bodies
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"The webhook receiver did not get the expected alerts "
                        f"within {timeout:g} s; it got {len(bodies)}."
                    )
                self._lock.wait(remaining)

    def _record(self, path: str, body: Any) -> int:
        with self._lock:
            failing = len(self.deliveries) < self.fail_first
            status = 500 if failing else 200
            self.deliveries.append(Delivery(time.time(), path, body, status))
            self._lock.notify_all()
            return status

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                status = receiver._record(self.path, body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the tests read the deliveries, not the access log

        return Handler
