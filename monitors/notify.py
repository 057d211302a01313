"""Send canary alerts to webhooks: Alertmanager's payload or Slack's.

Delivery runs on its own thread with a timeout and bounded retries. A
receiver that is down is logged and counted, and never blocks or stops the
monitor: the probes go on while a notification waits for its retries.
"""

from __future__ import annotations

import hashlib
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from monitors.alerting import FIRING
from monitors.errors import NotificationError
from monitors.metrics import CanaryMetrics

logger = logging.getLogger(__name__)

ALERTMANAGER = "alertmanager"
SLACK = "slack"
FORMATS = (ALERTMANAGER, SLACK)
ALERT_NAME = "BoxOfficeCanaryFailing"
RECEIVER_NAME = "boxoffice-monitor"

DEFAULT_TIMEOUT_SECONDS = 5.0
DEFAULT_ATTEMPTS = 3
# Waits between attempts grow as 0.5 s, 1 s, 2 s...
RETRY_BACKOFF_SECONDS = 0.5
# Alertmanager writes this for the end of an alert that still fires.
OPEN_END = "0001-01-01T00:00:00Z"


@dataclass(frozen=True)
class Alert:
    """One notification: the canary alert fired or resolved."""

    status: str  # "firing" or "resolved"
    stack: str
    sale_id: str
    started_at: float  # epoch seconds
    ended_at: float | None
    failures: int
    window: int
    summary: str  # one line on the latest probe
    failed_stage: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def title(self) -> str:
        if self.status == FIRING:
            return (
                f"Box Office canary failing on {self.stack} (sale {self.sale_id}): "
                f"{self.failures} of the last {self.window} probes failed"
            )
        return f"Box Office canary recovered on {self.stack} (sale {self.sale_id})"

    def alert_labels(self) -> dict[str, str]:
        """Return the labels that identify the alert, stable across its life."""
        return {
            "alertname": ALERT_NAME,
            "severity": "critical",
            "stack": self.stack,
            "sale": self.sale_id,
            **self.labels,
        }


def alertmanager_payload(alert: Alert, external_url: str = "") -> dict[str, Any]:
    """Build the body Alertmanager's webhook receiver sends (version 4)."""
    labels = alert.alert_labels()
    annotations = {"summary": alert.title, "description": alert.summary}
    if alert.failed_stage:
        annotations["stage"] = alert.failed_stage
    ends_at = _rfc3339(alert.ended_at) if alert.ended_at is not None else OPEN_END
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{ALERT_NAME}"}}',
        "truncatedAlerts": 0,
        "status": alert.status,
        "receiver": RECEIVER_NAME,
        "groupLabels": {"alertname": ALERT_NAME},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": external_url,
        "alerts": [
            {
                "status": alert.status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": _rfc3339(alert.started_at),
                "endsAt": ends_at,
                "generatorURL": external_url,
                "fingerprint": _fingerprint(labels),
            }
        ],
    }


def slack_payload(alert: Alert) -> dict[str, Any]:
    """Build the body of a Slack incoming webhook: text plus one block."""
    mark = ":red_circle:" if alert.status == FIRING else ":large_green_circle:"
    text = f"{mark} {alert.title}"
    detail = alert.summary
    if alert.failed_stage:
        detail = f"Stage *{alert.failed_stage}*: {detail}"
    return {
        "text": text,
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"{text}\n{detail}"},
            }
        ],
    }


class WebhookNotifier:
    """POST alerts to one webhook URL in one payload format, with retries."""

    def __init__(
        self,
        url: str,
        payload_format: str = ALERTMANAGER,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff_seconds: float = RETRY_BACKOFF_SECONDS,
        external_url: str = "",
    ) -> None:
        if payload_format not in FORMATS:
            raise NotificationError(
                f"Webhook format {payload_format!r} is unknown; choose one of "
                f"{', '.join(FORMATS)}."
            )
        if attempts < 1:
            raise NotificationError(f"Attempts is {attempts!r}; use at least 1.")
        self.url = url
        self.kind = payload_format
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.external_url = external_url
        self._client = httpx.Client(timeout=timeout_seconds)

    def payload(self, alert: Alert) -> dict[str, Any]:
        """Return the JSON body this notifier sends for ``alert``."""
        if self.kind == SLACK:
            return slack_payload(alert)
        return alertmanager_payload(alert, self.external_url)

    def send(self, alert: Alert) -> None:
        """POST the alert; retry on network errors, HTTP 429 and 5xx.

        Raises ``NotificationError`` when every attempt failed or the
        receiver rejected the payload with another 4xx.
        """
        body = self.payload(alert)
        last = ""
        for attempt in range(1, self.attempts + 1):
            try:
                response = self._client.post(self.url, json=body)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    return
                last = f"HTTP {response.status_code}"
                retryable = response.status_code == 429 or response.status_code >= 500
                if not retryable:
                    break
            if attempt < self.attempts:
                logger.info(
                    "Webhook %s attempt %d of %d failed (%s); retrying",
                    self.kind,
                    attempt,
                    self.attempts,
                    last,
                )
                time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        raise NotificationError(
            f"The {self.kind} webhook did not accept the {alert.status} alert "
            f"after {attempt} attempts: {last}."
        )

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


class Dispatcher:
    """Deliver alerts to every notifier in order, on one background thread."""

    def __init__(
        self, notifiers: list[WebhookNotifier], metrics: CanaryMetrics
    ) -> None:
        self.notifiers = notifiers
        self._metrics = metrics
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="boxoffice-notify"
        )

    def dispatch(self, alert: Alert) -> Future[None]:
        """Queue ``alert`` for every notifier and return at once."""
        return self._executor.submit(self._deliver, alert)

    def close(self, wait: bool = True) -> None:
        """Stop taking alerts; with ``wait``, deliver the queued ones first."""
        self._executor.shutdown(wait=wait, cancel_futures=not wait)
        for notifier in self.notifiers:
            notifier.close()

    def _deliver(self, alert: Alert) -> None:
        for notifier in self.notifiers:
            counter = self._metrics.notifications
            try:
                notifier.send(alert)
            except NotificationError as exc:
                logger.error("Alert notification failed: %s", exc)
                counter.labels(notifier.kind, alert.status, "failed").inc()
            else:
                logger.info(
                    "Sent %s alert to the %s webhook", alert.status, notifier.kind
                )
                counter.labels(notifier.kind, alert.status, "sent").inc()


def _rfc3339(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fingerprint(labels: dict[str, str]) -> str:
    text = "\x00".join(f"{name}\x00{labels[name]}" for name in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
