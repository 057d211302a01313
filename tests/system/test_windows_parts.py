"""The window processor's pure parts: message parsing, due frees, admission rate."""

from __future__ import annotations

import json

import pytest

from system import schema
from system.windows.counters import AdmissionRate
from system.windows.errors import MalformedMessageError
from system.windows.messages import parse_message
from system.windows.reclaim import FreeReason, due_reason
from system.windows.store import Window

VALID_BODY = {
    schema.FAN_ID: "us-east-1:fan",
    schema.SALE_ID: "tour",
    schema.QUEUE_NUMBER: 7,
    schema.SYNTHETIC: True,
    schema.NUMBERED_AT: 1700000000.5,
}


def _raw(body: object) -> dict[str, str]:
    text = body if isinstance(body, str) else json.dumps(body)
    return {"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": text}


def test_parse_message_reads_fields() -> None:
    message = parse_message(_raw(VALID_BODY))

    assert message.fan_id == "us-east-1:fan"
    assert message.sale_id == "tour"
    assert message.queue_number == 7
    assert message.synthetic is True
    assert message.numbered_at == 1700000000.5
    assert message.receipt_handle == "r-1"


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        [1, 2],
        {**VALID_BODY, schema.FAN_ID: ""},
        {**VALID_BODY, schema.SALE_ID: 5},
        {**VALID_BODY, schema.QUEUE_NUMBER: "7"},
        {**VALID_BODY, schema.QUEUE_NUMBER: True},
        {**VALID_BODY, schema.NUMBERED_AT: "soon"},
        {key: value for key, value in VALID_BODY.items() if key != schema.FAN_ID},
    ],
)
def test_parse_message_rejects_malformed(body: object) -> None:
    with pytest.raises(MalformedMessageError, match="m-1"):
        parse_message(_raw(body))


@pytest.mark.parametrize(
    ("window", "now", "expected"),
    [
        (Window("w001"), 100.0, None),
        (Window("w001", schema.WINDOW_BUSY, claim_by=110, expires_at=200), 100, None),
        (
            Window("w001", schema.WINDOW_BUSY, claim_by=110, expires_at=200),
            110,
            FreeReason.CLAIM_TIMEOUT,
        ),
        (
            Window(
                "w001", schema.WINDOW_BUSY, claim_by=110, expires_at=200, claimed=True
            ),
            150,
            None,
        ),
        (
            Window(
                "w001", schema.WINDOW_BUSY, claim_by=110, expires_at=200, claimed=True
            ),
            200,
            FreeReason.EXPIRED,
        ),
        (Window("w001", schema.WINDOW_BUSY), 0, FreeReason.EXPIRED),
    ],
)
def test_due_reason(window: Window, now: float, expected: FreeReason | None) -> None:
    assert due_reason(window, now) is expected


def test_admission_rate_counts_last_minute() -> None:
    rate = AdmissionRate()
    assert rate.per_second(0.0) == 0.0

    for second in range(30):
        rate.record(1000.0 + second)

    # 30 admissions in the 30 s since the first one.
    assert rate.per_second(1030.0) == pytest.approx(1.0)
    # Only the 9 admissions after 1020 s are still in the 60 s window.
    assert rate.per_second(1080.0) == pytest.approx(9 / 60)
    assert rate.per_second(1200.0) == 0.0


def test_admission_rate_first_admissions_not_a_burst() -> None:
    rate = AdmissionRate()
    rate.record(500.0)
    rate.record(500.0)

    assert rate.per_second(500.0) == pytest.approx(2 / 5)
