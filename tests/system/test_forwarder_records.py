"""Validation of stream records and the bodies the forwarder sends."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest

from system import schema
from system.forwarder.messages import (
    DEAD_LETTER_SOURCE,
    MAX_DEAD_LETTER_RECORD_CHARS,
    MAX_SEND_BATCH_BYTES,
    MAX_SEND_BATCH_ENTRIES,
    dead_letter_body,
    deduplication_id,
    work_message_body,
)
from system.forwarder.numbering import FanState, NumberedFan
from system.forwarder.records import (
    MAX_FAN_ITEM_BYTES,
    BadRecord,
    BadRecordReason,
    FanJoin,
    SkippedRecord,
    item_size_bytes,
    parse_record,
)
from tests.system.stream_records import (
    browser_item,
    fan_id,
    sequence_number,
    serialize,
    stream_record,
)

# SQS allows these characters in a MessageDeduplicationId, at most 128 of them.
DEDUPLICATION_ID_PATTERN = re.compile(r"[A-Za-z0-9!-/:-@\[-`{-~]{1,128}")


def test_insert_parses_to_fan_join() -> None:
    item = browser_item("tour-2027", synthetic=True)
    record = stream_record(item)

    parsed = parse_record(record)

    assert isinstance(parsed, FanJoin)
    assert parsed.fan_id == item[schema.FAN_ID]
    assert parsed.sale_id == "tour-2027"
    assert parsed.client_time == item[schema.CLIENT_TIME]
    assert parsed.synthetic is True
    assert parsed.sequence_number == record["dynamodb"]["SequenceNumber"]
    assert parsed.event_id == record["eventID"]
    assert parsed.record is record


def test_insert_without_synthetic_is_real_fan() -> None:
    parsed = parse_record(stream_record(browser_item(synthetic=None)))

    assert isinstance(parsed, FanJoin)
    assert parsed.synthetic is False


@pytest.mark.parametrize("event_name", ["MODIFY", "REMOVE"])
def test_modify_and_remove_skipped(event_name: str) -> None:
    record = stream_record(browser_item(), event_name=event_name)

    parsed = parse_record(record)

    assert parsed == SkippedRecord(event_name, record["dynamodb"]["SequenceNumber"])


def test_client_written_server_attributes_ignored() -> None:
    item = browser_item(
        queue_number=Decimal(1),
        status=schema.ADMITTED,
        purchase_url="https://tickets.example/buy?token=forged",
        window_id="w-1",
        stream_sequence="1",
    )

    parsed = parse_record(stream_record(item))

    assert isinstance(parsed, FanJoin)
    assert parsed.sale_id == item[schema.SALE_ID]


def test_synthetic_fan_injected_numbered_skipped() -> None:
    item = browser_item(synthetic=True, queue_number=Decimal(7))
    record = stream_record(item)

    parsed = parse_record(record)

    assert parsed == SkippedRecord("INSERT", record["dynamodb"]["SequenceNumber"])


def _record_with(**attributes: Any) -> dict[str, Any]:
    return stream_record(browser_item(**attributes))


def _record_with_image(**image_changes: Any) -> dict[str, Any]:
    item = browser_item()
    image = serialize(item)
    image.update(image_changes)
    return stream_record(item, image=image)


def _record_with_key(key: Any) -> dict[str, Any]:
    record = stream_record(browser_item())
    record["dynamodb"]["Keys"] = key
    return record


def _record_without(*path: str) -> dict[str, Any]:
    record = stream_record(browser_item())
    target = record
    for name in path[:-1]:
        target = target[name]
    del target[path[-1]]
    return record


def _forged_sequence_record() -> dict[str, Any]:
    sequence = sequence_number()
    return stream_record(browser_item(stream_sequence=sequence), sequence=sequence)


BAD_RECORDS = {
    "not an object": ("INSERT", BadRecordReason.MALFORMED),
    "no dynamodb": (_record_without("dynamodb"), BadRecordReason.MALFORMED),
    "no sequence number": (
        _record_without("dynamodb", "SequenceNumber"),
        BadRecordReason.MALFORMED,
    ),
    "unknown event name": (
        {**stream_record(browser_item()), "eventName": "UPSERT"},
        BadRecordReason.MALFORMED,
    ),
    "insert without image": (
        _record_without("dynamodb", "NewImage"),
        BadRecordReason.MALFORMED,
    ),
    "unknown type tag": (
        _record_with_image(sale_id={"X": "tour-2027"}),
        BadRecordReason.MALFORMED,
    ),
    "client time not a number": (
        _record_with_image(client_time={"N": "soon"}),
        BadRecordReason.INVALID_CLIENT_TIME,
    ),
    "key a number": (
        _record_with_key({"fan_id": {"N": "7"}}),
        BadRecordReason.INVALID_KEY,
    ),
    "key empty": (_record_with_key({"fan_id": {"S": ""}}), BadRecordReason.INVALID_KEY),
    "key missing": (_record_with_key({}), BadRecordReason.INVALID_KEY),
    "key too long": (
        _record_with_key({"fan_id": {"S": "x" * 129}}),
        BadRecordReason.INVALID_KEY,
    ),
    "sale id missing": (_record_with(sale_id=None), BadRecordReason.INVALID_SALE_ID),
    "sale id a number": (
        _record_with(sale_id=Decimal(42)),
        BadRecordReason.INVALID_SALE_ID,
    ),
    "sale id of the counters": (
        _record_with(sale_id=schema.FORWARDER_STATS_KEY),
        BadRecordReason.INVALID_SALE_ID,
    ),
    "sale id with a space": (
        _record_with(sale_id="tour 2027"),
        BadRecordReason.INVALID_SALE_ID,
    ),
    "sale id too long": (
        _record_with(sale_id="s" * 65),
        BadRecordReason.INVALID_SALE_ID,
    ),
    "client time missing": (
        _record_with(client_time=None),
        BadRecordReason.INVALID_CLIENT_TIME,
    ),
    "client time a string": (
        _record_with(client_time="2027-01-01T10:00:00Z"),
        BadRecordReason.INVALID_CLIENT_TIME,
    ),
    "client time a boolean": (
        _record_with(client_time=True),
        BadRecordReason.INVALID_CLIENT_TIME,
    ),
    "synthetic a string": (
        _record_with(synthetic="true"),
        BadRecordReason.INVALID_SYNTHETIC,
    ),
    "oversized item": (
        _record_with(padding="x" * MAX_FAN_ITEM_BYTES),
        BadRecordReason.OVERSIZED_ITEM,
    ),
    "forged stream sequence": (
        _forged_sequence_record(),
        BadRecordReason.FORGED_SEQUENCE,
    ),
}


@pytest.mark.parametrize(
    ("record", "reason"), list(BAD_RECORDS.values()), ids=list(BAD_RECORDS)
)
def test_bad_record_reason(record: object, reason: BadRecordReason) -> None:
    parsed = parse_record(record)

    assert isinstance(parsed, BadRecord)
    assert parsed.reason == reason
    assert parsed.detail.endswith(".")
    assert parsed.record is record


def test_bad_record_keeps_ids() -> None:
    fan = fan_id()
    record = stream_record(browser_item(sale_id="tour-2027", fan=fan, client_time="x"))

    parsed = parse_record(record)

    assert isinstance(parsed, BadRecord)
    assert parsed.event_id == record["eventID"]
    assert parsed.sequence_number == record["dynamodb"]["SequenceNumber"]
    assert parsed.keys == {schema.FAN_ID: {"S": fan}}
    assert parsed.fan_id == fan
    assert parsed.sale_id == "tour-2027"


def test_oversized_item_keeps_fan_id() -> None:
    fan = fan_id()
    record = stream_record(browser_item(fan=fan, padding="x" * 10_000))

    parsed = parse_record(record)

    assert isinstance(parsed, BadRecord)
    assert parsed.fan_id == fan
    assert str(MAX_FAN_ITEM_BYTES) in parsed.detail


def test_browser_item_well_under_size_limit() -> None:
    image = serialize(browser_item(sale_id="s" * 64, synthetic=True))

    assert item_size_bytes(image) < MAX_FAN_ITEM_BYTES / 10


def test_dead_letter_body_carries_ids() -> None:
    record = _record_with(sale_id=Decimal(42))
    parsed = parse_record(record)
    assert isinstance(parsed, BadRecord)

    body = json.loads(dead_letter_body(parsed, now=1_800_000_000.0))

    assert body["source"] == DEAD_LETTER_SOURCE
    assert body["reason"] == "invalid_sale_id"
    assert body["event_id"] == record["eventID"]
    assert body["sequence_number"] == record["dynamodb"]["SequenceNumber"]
    assert body["fan_id"] == parsed.fan_id
    assert body["sale_id"] is None
    assert json.loads(body["record"]) == record
    assert body["record_truncated"] is False
    assert body["dead_lettered_at"] == 1_800_000_000.0


def test_dead_letter_body_truncates_record() -> None:
    record = _record_with(padding="x" * 200_000)
    parsed = parse_record(record)
    assert isinstance(parsed, BadRecord)

    body = json.loads(dead_letter_body(parsed))

    assert body["reason"] == "oversized_item"
    assert body["record_truncated"] is True
    assert len(body["record"]) == MAX_DEAD_LETTER_RECORD_CHARS
    assert body["fan_id"] == parsed.fan_id


def test_dead_letters_fit_one_send_batch() -> None:
    # Quotes and backslashes double in length when the record's JSON is
    # escaped inside the body, the worst case for the size limit.
    record = _record_with(padding='"\\' * 100_000, sale_id=Decimal(42))
    record["dynamodb"]["Keys"] = {"fan_id": {"S": '"' * 5_000}}
    parsed = parse_record(record)
    assert isinstance(parsed, BadRecord)

    body = dead_letter_body(parsed)

    batch_bytes = MAX_SEND_BATCH_ENTRIES * len(body.encode())
    assert batch_bytes < MAX_SEND_BATCH_BYTES


def test_deduplication_id_valid_and_stable() -> None:
    sale = "s" * 64
    fan = fan_id()
    sequence = sequence_number()

    first = deduplication_id(sale, fan, sequence)

    assert DEDUPLICATION_ID_PATTERN.fullmatch(first)
    assert deduplication_id(sale, fan, sequence) == first
    assert deduplication_id(sale, fan, sequence_number()) != first
    assert deduplication_id(sale, fan_id(), sequence) != first


def test_work_message_body_fields() -> None:
    parsed = parse_record(stream_record(browser_item("tour-2027", synthetic=True)))
    assert isinstance(parsed, FanJoin)
    fan = NumberedFan(parsed, 17, Decimal("1800000000.125"))

    body = json.loads(work_message_body(fan))

    assert list(body) == list(schema.MESSAGE_FIELDS)
    assert body[schema.FAN_ID] == parsed.fan_id
    assert body[schema.SALE_ID] == "tour-2027"
    assert body[schema.QUEUE_NUMBER] == 17
    assert body[schema.SYNTHETIC] is True
    assert body[schema.NUMBERED_AT] == 1_800_000_000.125


def _numbered_state(join: FanJoin, **changes: Any) -> FanState:
    values: dict[str, Any] = {
        "stream_sequence": join.sequence_number,
        "status": schema.WAITING,
        "queue_number": 5,
        "numbered_at": Decimal("1800000000"),
    }
    values.update(changes)
    return FanState(**values)


def test_pending_message_recent_waiting_fan() -> None:
    join = parse_record(stream_record(browser_item()))
    assert isinstance(join, FanJoin)

    pending = _numbered_state(join).pending_message(join, now=1_800_000_010.0)

    assert pending == NumberedFan(join, 5, Decimal("1800000000"), resent=True)


@pytest.mark.parametrize(
    ("changes", "now"),
    [
        ({}, 1_800_000_240.0),
        ({"status": schema.ADMITTED}, 1_800_000_010.0),
        ({"stream_sequence": "1"}, 1_800_000_010.0),
        ({"queue_number": None}, 1_800_000_010.0),
    ],
    ids=["too old", "admitted", "other record", "no number"],
)
def test_pending_message_none(changes: dict[str, Any], now: float) -> None:
    join = parse_record(stream_record(browser_item()))
    assert isinstance(join, FanJoin)

    assert _numbered_state(join, **changes).pending_message(join, now) is None
