"""Webhook payloads, retries, and a receiver that is down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from monitors.alerting import FIRING, RESOLVED
from monitors.errors import NotificationError
from monitors.metrics import canary_metrics
from monitors.notify import (
    ALERT_NAME,
    OPEN_END,
    SLACK,
    Alert,
    Dispatcher,
    WebhookNotifier,
    alertmanager_payload,
    slack_payload,
)
from monitors.receiver import WebhookReceiver
from system.embedded import free_port


def make_alert(status: str = FIRING) -> Alert:
    return Alert(
        status=status,
        stack="boxoffice-local",
        sale_id="canary",
        started_at=1_800_000_000.0,
        ended_at=None if status == FIRING else 1_800_000_300.0,
        failures=2,
        window=3,
        summary="stage admission timed out after 30.0 s: no window admitted the fan",
        failed_stage="admission",
    )


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


def test_alertmanager_payload_has_version_4_fields() -> None:
    payload = alertmanager_payload(make_alert(), "http://127.0.0.1:9478/metrics")
    assert payload["version"] == "4"
    assert payload["status"] == "firing"
    assert payload["groupLabels"] == {"alertname": ALERT_NAME}
    alert = payload["alerts"][0]
    assert alert["labels"]["sale"] == "canary"
    assert alert["labels"]["stack"] == "boxoffice-local"
    assert alert["startsAt"] == "2027-01-15T08:00:00.000Z"
    assert alert["endsAt"] == OPEN_END
    assert alert["annotations"]["stage"] == "admission"
    assert len(alert["fingerprint"]) == 16


def test_resolved_payload_keeps_labels_and_fingerprint() -> None:
    fired = alertmanager_payload(make_alert(FIRING))["alerts"][0]
    resolved = alertmanager_payload(make_alert(RESOLVED))["alerts"][0]
    assert resolved["status"] == "resolved"
    assert resolved["labels"] == fired["labels"]
    assert resolved["fingerprint"] == fired["fingerprint"]
    assert resolved["endsAt"] == "2027-01-15T08:05:00.000Z"


def test_slack_payload_has_text_and_block() -> None:
    payload = slack_payload(make_alert())
    assert "canary failing" in payload["text"]
    assert "2 of the last 3" in payload["text"]
    assert "*admission*" in payload["blocks"][0]["text"]["text"]


def test_notifier_retries_until_accepted(receiver: WebhookReceiver) -> None:
    receiver.fail_first = 2
    notifier = WebhookNotifier(receiver.url, attempts=3, backoff_seconds=0.01)
    notifier.send(make_alert())
    notifier.close()
    assert [d.status_code for d in receiver.deliveries] == [500, 500, 200]
    assert receiver.accepted()[0]["status"] == "firing"


def test_notifier_gives_up_after_its_attempts(receiver: WebhookReceiver) -> None:
    receiver.fail_first = 10
    notifier = WebhookNotifier(receiver.url, SLACK, attempts=2, backoff_seconds=0.01)
    with pytest.raises(NotificationError, match="after 2 attempts: HTTP 500"):
        notifier.send(make_alert())
    notifier.close()
    assert len(receiver.deliveries) == 2


def test_dispatcher_counts_a_receiver_that_is_down(
    receiver: WebhookReceiver,
) -> None:
    registry = CollectorRegistry()
    metrics = canary_metrics(registry)
    down = WebhookNotifier(
        f"http://127.0.0.1:{free_port()}/", attempts=2, backoff_seconds=0.01
    )
    up = WebhookNotifier(receiver.url, SLACK)
    dispatcher = Dispatcher([down, up], metrics)
    dispatcher.dispatch(make_alert()).result(timeout=10)
    dispatcher.close()

    def count(receiver_kind: str, result: str) -> float | None:
        return registry.get_sample_value(
            "boxoffice_canary_notifications_total",
            {"receiver": receiver_kind, "status": "firing", "result": result},
        )

    assert count("alertmanager", "failed") == 1
    assert count("slack", "sent") == 1
    assert len(receiver.accepted()) == 1


def test_unknown_format_is_rejected() -> None:
    with pytest.raises(NotificationError, match="format 'teams' is unknown"):
        WebhookNotifier("http://127.0.0.1:1/", "teams")
