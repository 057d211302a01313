"""Pump fans into the work queue the way the forwarder does, for one-stage tests.

The tests of the window processor skip the join and forward steps: they
write each fan's item already numbered and waiting, and send its work
message themselves, as the forwarder would after numbering it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from system import embedded, schema
from system.clients import make_client
from system.stack import StackResources

PROCESSOR_START_TIMEOUT_SECONDS = 30
PROCESSOR_STOP_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class PumpedFan:
    fan_id: str
    sale_id: str
    queue_number: int
    numbered_at: float
    synthetic: bool = False

    def body(self) -> str:
        return json.dumps(
            {
                schema.FAN_ID: self.fan_id,
                schema.SALE_ID: self.sale_id,
                schema.QUEUE_NUMBER: self.queue_number,
                schema.SYNTHETIC: self.synthetic,
                schema.NUMBERED_AT: self.numbered_at,
            }
        )


class Pump:
    """Numbers fans, writes their items and sends their work messages."""

    def __init__(self, state: embedded.EmbeddedState, resources: StackResources):
        self._dynamodb = make_client(state.settings, "dynamodb")
        self.sqs = make_client(state.settings, "sqs")
        self._resources = resources

    def fans(
        self, sale_id: str, count: int, *, synthetic: bool = False
    ) -> list[PumpedFan]:
        """Number ``count`` new fans of the sale and send their work messages."""
        # One atomic counter update per batch, as the forwarder takes numbers.
        response = self._dynamodb.update_item(
            TableName=self._resources.sales_table,
            Key={schema.SALE_ID: {"S": sale_id}},
            UpdateExpression="ADD next_number :count",
            ExpressionAttributeValues={":count": {"N": str(count)}},
            ReturnValues="UPDATED_NEW",
        )
        last = int(response["Attributes"][schema.NEXT_NUMBER]["N"])
        fans = []
        for number in range(last - count + 1, last + 1):
            fan = PumpedFan(
                fan_id=f"us-east-1:{uuid.uuid4()}",
                sale_id=sale_id,
                queue_number=number,
                numbered_at=time.time(),
                synthetic=synthetic,
            )
            self._write_fan(fan)
            self.send(fan, deduplication_id=f"{sale_id}:{number}")
            fans.append(fan)
        return fans

    def send(self, fan: PumpedFan, *, deduplication_id: str | None = None) -> None:
        """Send the fan's work message; a new deduplication id makes a duplicate."""
        self.sqs.send_message(
            QueueUrl=self._resources.work_queue_url,
            MessageBody=fan.body(),
            MessageGroupId=fan.sale_id,
            MessageDeduplicationId=deduplication_id or uuid.uuid4().hex,
        )

    def _write_fan(self, fan: PumpedFan) -> None:
        self._dynamodb.put_item(
            TableName=self._resources.queue_table,
            Item={
                schema.FAN_ID: {"S": fan.fan_id},
                schema.SALE_ID: {"S": fan.sale_id},
                schema.CLIENT_TIME: {"N": str(int(fan.numbered_at * 1000))},
                schema.SYNTHETIC: {"BOOL": fan.synthetic},
                schema.QUEUE_NUMBER: {"N": str(fan.queue_number)},
                schema.STATUS: {"S": schema.WAITING},
                schema.NUMBERED_AT: {"N": f"{fan.numbered_at:.6f}"},
            },
        )


class ProcessorProcess:
    """One ``python -m system.windows`` process of the tests, stopped by PID."""

    def __init__(self, state: embedded.EmbeddedState, log_path: Path, *extra: str):
        self._state = state
        self._log_path = log_path
        self._extra = extra
        self.metrics_port = embedded.free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the processor and wait until its metrics endpoint responds."""
        command = [
            embedded.PYTHON,
            "-m",
            "system.windows",
            "--metrics-port",
            str(self.metrics_port),
            *self._extra,
        ]
        with open(self._log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                env=embedded.service_environment(self._state),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + PROCESSOR_START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"processor exited with {self.process.returncode}: {self.log()}"
                )
            try:
                self.metrics()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"processor did not start: {self.log()}")

    def kill(self) -> None:
        """Kill the processor with SIGKILL, as a crash would."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=PROCESSOR_STOP_TIMEOUT_SECONDS)

    def terminate(self) -> int:
        """Stop the processor with SIGTERM and return its exit code."""
        assert self.process is not None
        if self.process.poll() is not None:
            return self.process.returncode
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=PROCESSOR_STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=PROCESSOR_STOP_TIMEOUT_SECONDS)
            raise AssertionError("processor ignored SIGTERM") from None

    def metrics(self) -> str:
        """Return the text of the processor's /metrics page."""
        url = f"http://{embedded.HOST}:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text: str = response.read().decode()
        return text

    def metric(self, name: str, **labels: str) -> float:
        """Return one sample's value from /metrics, or 0 when it is absent."""
        expected = {f'{key}="{value}"' for key, value in labels.items()}
        for line in self.metrics().splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            sample, _, value = line.rpartition(" ")
            metric_name, _, label_text = sample.partition("{")
            found = set(label_text.rstrip("}").split(",")) if label_text else set()
            if metric_name == name and expected <= found:
                return float(value)
        return 0.0

    def log(self) -> str:
        return self._log_path.read_text(errors="replace")[-4000:]


def get_items(table: Any, fans: list[PumpedFan]) -> list[dict[str, Any]]:
    """Return the fans' items, strongly consistent, in the fans' order."""
    return [
        table.get_item(Key={schema.FAN_ID: fan.fan_id}, ConsistentRead=True).get(
            "Item", {}
        )
        for fan in fans
    ]


def get_windows(table: Any, sale_id: str) -> list[dict[str, Any]]:
    """Return the sale's window items, strongly consistent."""
    items: list[dict[str, Any]] = table.query(
        KeyConditionExpression="sale_id = :sale",
        ExpressionAttributeValues={":sale": sale_id},
        ConsistentRead=True,
    )["Items"]
    return items
