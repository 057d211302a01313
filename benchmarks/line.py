"""Pump a sale's line: numbered, waiting fans and their work messages.

The pump replaces the join and forward steps, so the window processor can be
measured alone. Fans are numbered with one counter update per chunk, as the
forwarder numbers them, and written as waiting with BatchWriteItem. Their
work messages then go to the FIFO work queue with SendMessageBatch, in
queue-number order. Nothing but the processor's own work follows.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks.awsjson import AwsJsonClient
from system import schema

WRITE_BATCH_ITEMS = 25  # the maximum items of one BatchWriteItem
SEND_BATCH_MESSAGES = 10  # the maximum entries of one SendMessageBatch
CHUNK_FANS = 1000
WRITER_THREADS = 4
UNPROCESSED_RETRIES = 10
UNPROCESSED_BACKOFF_SECONDS = 0.05


class LinePump:
    """Adds numbered, waiting fans to the end of one sale's line."""

    def __init__(
        self, endpoint_url: str, *, queue_table: str, sales_table: str, queue_url: str
    ):
        self._endpoint_url = endpoint_url
        self._queue_table = queue_table
        self._sales_table = sales_table
        self._queue_url = queue_url
        self._local = threading.local()
        self._writer_clients: list[AwsJsonClient] = []
        self._sender = AwsJsonClient(endpoint_url, "sqs")
        self._counter = AwsJsonClient(endpoint_url, "dynamodb")
        self._writers = ThreadPoolExecutor(WRITER_THREADS, "line-writer")
        self.pumped = 0

    def add(self, sale_id: str, count: int) -> None:
        """Add ``count`` fans to the end of the sale's line."""
        while count > 0:
            chunk = min(count, CHUNK_FANS)
            self._add_chunk(sale_id, chunk)
            count -= chunk

    def close(self) -> None:
        """Stop the writer threads and close the connections."""
        self._writers.shutdown(wait=True)
        for client in self._writer_clients:
            client.close()
        self._sender.close()
        self._counter.close()

    def _add_chunk(self, sale_id: str, count: int) -> None:
        last = self._take_numbers(sale_id, count)
        now = time.time()
        fans = [
            (f"us-east-1:{uuid.uuid4()}", number)
            for number in range(last - count + 1, last + 1)
        ]
        # A fan's item must exist before its message: the processor retries a
        # message whose fan it finds without a queue number.
        batches = [
            fans[start : start + WRITE_BATCH_ITEMS]
            for start in range(0, len(fans), WRITE_BATCH_ITEMS)
        ]
        list(self._writers.map(lambda batch: self._write(sale_id, batch, now), batches))
        for start in range(0, len(fans), SEND_BATCH_MESSAGES):
            self._send(sale_id, fans[start : start + SEND_BATCH_MESSAGES], now)
        self.pumped += count

    def _take_numbers(self, sale_id: str, count: int) -> int:
        response = self._counter.call(
            "UpdateItem",
            {
                "TableName": self._sales_table,
                "Key": {schema.SALE_ID: {"S": sale_id}},
                "UpdateExpression": "ADD #next :count",
                "ExpressionAttributeNames": {"#next": schema.NEXT_NUMBER},
                "ExpressionAttributeValues": {":count": {"N": str(count)}},
                "ReturnValues": "UPDATED_NEW",
            },
        )
        return int(response["Attributes"][schema.NEXT_NUMBER]["N"])

    def _write(self, sale_id: str, fans: list[tuple[str, int]], now: float) -> None:
        client = self._client()
        requests = [
            {"PutRequest": {"Item": _fan_item(fan_id, sale_id, number, now)}}
            for fan_id, number in fans
        ]
        pending: dict[str, Any] = {self._queue_table: requests}
        for attempt in range(UNPROCESSED_RETRIES):
            response = client.call("BatchWriteItem", {"RequestItems": pending})
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                return
            time.sleep(UNPROCESSED_BACKOFF_SECONDS * (attempt + 1))
        raise RuntimeError(
            f"BatchWriteItem left {len(pending[self._queue_table])} fans of sale "
            f"{sale_id!r} unprocessed after {UNPROCESSED_RETRIES} attempts."
        )

    def _send(self, sale_id: str, fans: list[tuple[str, int]], now: float) -> None:
        entries = [
            {
                "Id": str(index),
                "MessageBody": json.dumps(
                    {
                        schema.FAN_ID: fan_id,
                        schema.SALE_ID: sale_id,
                        schema.QUEUE_NUMBER: number,
                        schema.SYNTHETIC: False,
                        schema.NUMBERED_AT: now,
                    }
                ),
                "MessageGroupId": sale_id,
                "MessageDeduplicationId": f"{sale_id}:{number}",
            }
            for index, (fan_id, number) in enumerate(fans)
        ]
        response = self._sender.call(
            "SendMessageBatch", {"QueueUrl": self._queue_url, "Entries": entries}
        )
        failed = response.get("Failed") or []
        if failed:
            raise RuntimeError(
                f"SendMessageBatch rejected {len(failed)} work messages of sale "
                f"{sale_id!r}: {failed[0]}"
            )

    def _client(self) -> AwsJsonClient:
        client: AwsJsonClient | None = getattr(self._local, "client", None)
        if client is None:
            client = AwsJsonClient(self._endpoint_url, "dynamodb")
            self._local.client = client
            self._writer_clients.append(client)
        return client


def _fan_item(fan_id: str, sale_id: str, number: int, now: float) -> dict[str, Any]:
    return {
        schema.FAN_ID: {"S": fan_id},
        schema.SALE_ID: {"S": sale_id},
        schema.CLIENT_TIME: {"N": str(int(now * 1000))},
        schema.SYNTHETIC: {"BOOL": False},
        schema.QUEUE_NUMBER: {"N": str(number)},
        schema.STATUS: {"S": schema.WAITING},
        schema.NUMBERED_AT: {"N": f"{now:.6f}"},
    }
