"""Work messages and dead letters, sent to SQS in batches of ten.

``sqs`` is a boto3 SQS client. The send functions return the entries that
failed, by index, with the error code, so the caller can retry just those.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from system import schema
from system.forwarder.numbering import NumberedFan, error_name
from system.forwarder.records import BadRecord

MAX_SEND_BATCH_ENTRIES = 10  # the SendMessageBatch limit
# A SendMessageBatch request may carry 256 KiB in all, the default maximum
# message size that the template keeps. Escaping the record's JSON inside the
# body at most doubles it, so ten dead letters stay under 200 KB.
MAX_SEND_BATCH_BYTES = 256 * 1024
MAX_DEAD_LETTER_RECORD_CHARS = 8_000
MAX_DEAD_LETTER_KEYS_CHARS = 1_000
# Marks the forwarder's own dead letters: the event source mapping sends its
# on-failure records, which carry no such field, to the same queue.
DEAD_LETTER_SOURCE = "boxoffice-forwarder"


def deduplication_id(sale_id: str, fan_id: str, sequence_number: str) -> str:
    """Return the work message's deduplication id for one numbering.

    A SHA-256 hex digest is 64 characters from the allowed set, whatever the
    ids contain, and stays the same when the record is delivered again.
    """
    text = "\n".join((sale_id, fan_id, sequence_number))
    return hashlib.sha256(text.encode()).hexdigest()


def work_message_body(fan: NumberedFan) -> str:
    """Return the work message's JSON body, with the fields the windows read."""
    body = {
        schema.FAN_ID: fan.join.fan_id,
        schema.SALE_ID: fan.join.sale_id,
        schema.QUEUE_NUMBER: fan.queue_number,
        schema.SYNTHETIC: fan.join.synthetic,
        schema.NUMBERED_AT: float(fan.numbered_at),
    }
    return json.dumps({name: body[name] for name in schema.MESSAGE_FIELDS})


def dead_letter_body(bad: BadRecord, now: float | None = None) -> str:
    """Return the dead letter's JSON body: reason, ids and the truncated record."""
    record, truncated = _truncated_json(bad.record, MAX_DEAD_LETTER_RECORD_CHARS)
    keys, _ = _truncated_json(bad.keys, MAX_DEAD_LETTER_KEYS_CHARS)
    return json.dumps(
        {
            "source": DEAD_LETTER_SOURCE,
            "reason": str(bad.reason),
            "detail": bad.detail,
            "event_id": bad.event_id,
            "sequence_number": bad.sequence_number,
            schema.FAN_ID: bad.fan_id,
            schema.SALE_ID: bad.sale_id,
            "keys": keys,
            "record": record,
            "record_truncated": truncated,
            "dead_lettered_at": time.time() if now is None else now,
        }
    )


def send_work_messages(
    sqs: Any, queue_url: str, fans: Sequence[NumberedFan]
) -> dict[int, str]:
    """Send one work message per fan, in the order given.

    The message group is the sale, so the FIFO queue keeps each sale's fans
    in this order.
    """
    entries = [
        {
            "MessageBody": work_message_body(fan),
            "MessageGroupId": fan.join.sale_id,
            "MessageDeduplicationId": deduplication_id(
                fan.join.sale_id, fan.join.fan_id, fan.join.sequence_number
            ),
        }
        for fan in fans
    ]
    return _send_in_batches(sqs, queue_url, entries)


def send_dead_letters(
    sqs: Any, queue_url: str, bad_records: Sequence[BadRecord]
) -> dict[int, str]:
    """Send one dead letter per bad record to the standard dead-letter queue."""
    now = time.time()
    entries = [{"MessageBody": dead_letter_body(bad, now)} for bad in bad_records]
    return _send_in_batches(sqs, queue_url, entries)


def _send_in_batches(
    sqs: Any, queue_url: str, entries: list[dict[str, str]]
) -> dict[int, str]:
    failed: dict[int, str] = {}
    for start in range(0, len(entries), MAX_SEND_BATCH_ENTRIES):
        chunk = entries[start : start + MAX_SEND_BATCH_ENTRIES]
        batch = [{"Id": str(offset), **entry} for offset, entry in enumerate(chunk)]
        try:
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=batch)
        except (ClientError, BotoCoreError) as exc:
            failed.update(
                {start + offset: error_name(exc) for offset in range(len(chunk))}
            )
            continue
        for failure in response.get("Failed", []):
            failed[start + int(failure["Id"])] = str(failure.get("Code", "Failed"))
    return failed


def _truncated_json(value: object, limit: int) -> tuple[str, bool]:
    text = json.dumps(value, default=str)
    if len(text) <= limit:
        return text, False
    return text[:limit], True
