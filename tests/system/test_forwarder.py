"""The forwarder Lambda on the embedded stack, fed by the real stream mapping.

The stack runs without the window processor, so the tests read the work
queue themselves. Every drain deletes what it receives, including leftovers
of earlier tests, and keeps the messages of the test's own sale.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError

from system import embedded, schema
from system.clients import make_client, make_session
from system.forwarder.batch import AwsClients, forward_batch
from system.forwarder.config import ForwarderConfig
from system.forwarder.messages import DEAD_LETTER_SOURCE
from system.forwarder.records import MAX_FAN_ITEM_BYTES, BadRecordReason
from system.sale import SaleConfig
from system.stack import StackResources
from tests.system.stream_records import browser_item, stream_record

# Bounds on waiting for the stream mapping; none of them is a measurement.
DEADLINE_SECONDS = 60
POLL_SECONDS = 0.2


@dataclass
class Aws:
    """Clients of the bare stack and the names of its resources."""

    resources: StackResources
    dynamodb: Any  # boto3 DynamoDB resource
    client: Any  # boto3 DynamoDB client
    streams: Any
    sqs: Any
    lambda_: Any

    @property
    def queue_table(self) -> Any:
        return self.dynamodb.Table(self.resources.queue_table)

    @property
    def sales_table(self) -> Any:
        return self.dynamodb.Table(self.resources.sales_table)

    @property
    def config(self) -> ForwarderConfig:
        return ForwarderConfig(
            queue_table=self.resources.queue_table,
            sales_table=self.resources.sales_table,
            work_queue_url=self.resources.work_queue_url,
            dead_letter_queue_url=self.resources.dead_letter_queue_url,
        )


@pytest.fixture(scope="module")
def aws(bare_stack: embedded.EmbeddedState, bare_resources: StackResources) -> Aws:
    settings = bare_stack.settings
    return Aws(
        resources=bare_resources,
        dynamodb=make_session(settings).resource(
            "dynamodb", endpoint_url=settings.endpoint_url
        ),
        client=make_client(settings, "dynamodb"),
        streams=make_client(settings, "dynamodbstreams"),
        sqs=make_client(settings, "sqs"),
        lambda_=make_client(settings, "lambda"),
    )


@pytest.fixture
def sale(make_bare_sale: Callable[..., SaleConfig]) -> SaleConfig:
    return make_bare_sale()


@pytest.fixture
def paused_stream(aws: Aws) -> Iterator[Callable[[], None]]:
    """Disable the stream mapping; yield a function that enables it again.

    Records written meanwhile wait in the stream, so a test can hand them to
    the forwarder in-process first. The mapping is enabled after the test in
    any case.
    """
    mappings = aws.lambda_.list_event_source_mappings(
        FunctionName=aws.resources.forwarder_function
    )["EventSourceMappings"]
    assert len(mappings) == 1
    uuid = mappings[0]["UUID"]

    def resume() -> None:
        aws.lambda_.update_event_source_mapping(UUID=uuid, Enabled=True)

    aws.lambda_.update_event_source_mapping(UUID=uuid, Enabled=False)
    try:
        yield resume
    finally:
        resume()


def join(aws: Aws, items: list[dict[str, Any]]) -> None:
    """Write the fans' items as browsers do, in as few requests as possible.

    BatchWriteItem puts up to 25 items at once, so they reach the stream
    together and the mapping hands them to one invocation.
    """
    with aws.queue_table.batch_writer() as batch:
        for item in items:
            batch.put_item(Item=item)


def wait_for_numbers(
    aws: Aws, fan_ids: list[str], deadline_seconds: float = DEADLINE_SECONDS
) -> dict[str, dict[str, Any]]:
    """Wait until the forwarder numbered every fan; return the fans' items.

    The stream sequence marks the forwarder's write: a client may write a
    queue number of its own.
    """
    deadline = time.monotonic() + deadline_seconds
    items: dict[str, dict[str, Any]] = {}
    while True:
        for fan in fan_ids:
            if fan not in items:
                item = aws.queue_table.get_item(
                    Key={schema.FAN_ID: fan}, ConsistentRead=True
                ).get("Item")
                if item is not None and schema.STREAM_SEQUENCE in item:
                    items[fan] = item
        missing = [fan for fan in fan_ids if fan not in items]
        if not missing:
            return items
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{len(missing)} of {len(fan_ids)} fans had no queue number "
                f"after {deadline_seconds} s, for example {missing[0]!r}."
            )
        time.sleep(POLL_SECONDS)


def drain(
    aws: Aws,
    queue_url: str,
    keep: Callable[[dict[str, Any]], bool],
    expected: int = 0,
    deadline_seconds: float = DEADLINE_SECONDS,
) -> list[dict[str, Any]]:
    """Receive and delete messages until ``expected`` ones match ``keep`` and the
    queue is empty. Return the matching messages with their parsed bodies.
    """
    deadline = time.monotonic() + deadline_seconds
    matching: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        messages = aws.sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
        ).get("Messages", [])
        if not messages and len(matching) >= expected:
            return matching
        for message in messages:
            aws.sqs.delete_message(
                QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
            try:
                message["Parsed"] = json.loads(message["Body"])
            except ValueError:
                continue
            if isinstance(message["Parsed"], dict) and keep(message["Parsed"]):
                matching.append(message)
    raise AssertionError(
        f"Only {len(matching)} of {expected} expected messages arrived on {queue_url} "
        f"within {deadline_seconds} s."
    )


def work_messages(aws: Aws, sale_id: str, expected: int = 0) -> list[dict[str, Any]]:
    """Drain the work queue and return the bodies of ``sale_id``'s messages."""
    messages = drain(
        aws,
        aws.resources.work_queue_url,
        lambda body: body.get(schema.SALE_ID) == sale_id,
        expected,
    )
    for message in messages:
        assert message["Attributes"]["MessageGroupId"] == sale_id
    return [message["Parsed"] for message in messages]


def dead_letters(
    aws: Aws, event_ids: set[str], expected: int
) -> dict[str, dict[str, Any]]:
    """Drain the dead-letter queue; return the forwarder's letters by event id."""
    messages = drain(
        aws,
        aws.resources.dead_letter_queue_url,
        lambda body: (
            body.get("source") == DEAD_LETTER_SOURCE
            and body.get("event_id") in event_ids
        ),
        expected,
    )
    return {message["Parsed"]["event_id"]: message["Parsed"] for message in messages}


def sale_counter(aws: Aws, sale_id: str) -> int:
    item = aws.sales_table.get_item(Key={schema.SALE_ID: sale_id}, ConsistentRead=True)[
        "Item"
    ]
    return int(item[schema.NEXT_NUMBER])


def forwarder_stats(aws: Aws) -> tuple[int, int]:
    """Return the forwarder's (bad_records, forwarded) counters."""
    item = aws.sales_table.get_item(
        Key={schema.SALE_ID: schema.FORWARDER_STATS_KEY}, ConsistentRead=True
    ).get("Item", {})
    return int(item.get(schema.BAD_RECORDS, 0)), int(item.get(schema.FORWARDED, 0))


def wait_until(
    condition: Callable[[], bool], what: str, deadline_seconds: float = DEADLINE_SECONDS
) -> None:
    deadline = time.monotonic() + deadline_seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {deadline_seconds} s.")
        time.sleep(POLL_SECONDS)


def stream_records_of(aws: Aws, fan_ids: set[str]) -> list[dict[str, Any]]:
    """Read the fans' records from the queue table's stream, shaped as Lambda
    receives them."""
    arn = aws.resources.queue_table_stream_arn
    records = []
    shards = aws.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    for shard in shards:
        iterator = aws.streams.get_shard_iterator(
            StreamArn=arn,
            ShardId=shard["ShardId"],
            ShardIteratorType="TRIM_HORIZON",
        )["ShardIterator"]
        while iterator:
            page = aws.streams.get_records(ShardIterator=iterator, Limit=1000)
            if not page["Records"]:
                break
            records.extend(page["Records"])
            iterator = page.get("NextShardIterator")
    return [
        _lambda_shape(record, arn)
        for record in records
        if record["dynamodb"]["Keys"][schema.FAN_ID]["S"] in fan_ids
    ]


def _lambda_shape(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    # GetRecords returns the creation time as a datetime and no ARN; a
    # Lambda event carries epoch seconds and the stream's ARN.
    stream = dict(record["dynamodb"])
    created = stream.get("ApproximateCreationDateTime")
    if isinstance(created, datetime.datetime):
        stream["ApproximateCreationDateTime"] = int(created.timestamp())
    return {**record, "dynamodb": stream, "eventSourceARN": stream_arn}


def invoke(aws: Aws, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Invoke the deployed forwarder directly with a stream event."""
    response = aws.lambda_.invoke(
        FunctionName=aws.resources.forwarder_function,
        Payload=json.dumps({"Records": records}).encode(),
    )
    payload = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, payload
    return dict(payload)


class FlakyClient:
    """A real boto3 client whose chosen calls fail as AWS fails under load.

    MiniStack does not throttle on demand, so only a stub can make this fault.
    """

    def __init__(
        self, real: Any, fails: Callable[[str, dict[str, Any]], bool], code: str
    ) -> None:
        self.real = real
        self.fails = fails
        self.code = code

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.real, name)

        def call(**kwargs: Any) -> Any:
            if self.fails(name, kwargs):
                status = 500 if self.code == "InternalServerError" else 400
                raise ClientError(
                    {
                        "Error": {"Code": self.code, "Message": "Injected fault"},
                        "ResponseMetadata": {"HTTPStatusCode": status},
                    },
                    name,
                )
            return method(**kwargs)

        return call


class PartlyUnprocessedDynamoDB:
    """A real DynamoDB client whose BatchWriteItem hands chosen fans' puts back
    as UnprocessedItems, as a throttled table does; only a stub can make this
    partial failure on demand."""

    def __init__(self, real: Any, unprocessed_fans: set[str]) -> None:
        self.real = real
        self.unprocessed_fans = unprocessed_fans

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def batch_write_item(self, RequestItems: dict[str, Any]) -> Any:
        written: dict[str, Any] = {}
        unprocessed: dict[str, Any] = {}
        for table, requests in RequestItems.items():
            for request in requests:
                fan = request["PutRequest"]["Item"][schema.FAN_ID]["S"]
                target = unprocessed if fan in self.unprocessed_fans else written
                target.setdefault(table, []).append(request)
        if written:
            self.real.batch_write_item(RequestItems=written)
        return {"UnprocessedItems": unprocessed}


class PartlyFailingSqs:
    """A real SQS client whose SendMessageBatch reports chosen fans as failed,
    a partial failure that only a stub can make on demand."""

    def __init__(self, real: Any, failing_fans: set[str]) -> None:
        self.real = real
        self.failing_fans = failing_fans

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:
        failing = [
            entry
            for entry in Entries
            if json.loads(entry["MessageBody"]).get(schema.FAN_ID) in self.failing_fans
        ]
        passing = [entry for entry in Entries if entry not in failing]
        response: dict[str, Any] = {"Successful": []}
        if passing:
            response = self.real.send_message_batch(QueueUrl=QueueUrl, Entries=passing)
        response["Failed"] = [
            {"Id": entry["Id"], "SenderFault": False, "Code": "InternalError"}
            for entry in failing
        ]
        return response


def test_batch_numbered_once_each(aws: Aws, sale: SaleConfig) -> None:
    items = [
        browser_item(sale.sale_id, synthetic=index % 5 == 0) for index in range(30)
    ]
    fans = [item[schema.FAN_ID] for item in items]
    _, forwarded_before = forwarder_stats(aws)

    join(aws, items)
    numbered = wait_for_numbers(aws, fans)
    messages = work_messages(aws, sale.sale_id, expected=len(fans))

    numbers = sorted(int(item[schema.QUEUE_NUMBER]) for item in numbered.values())
    assert numbers == list(range(1, len(fans) + 1))
    assert sale_counter(aws, sale.sale_id) == len(fans)
    for item in numbered.values():
        assert item[schema.STATUS] == schema.WAITING
        assert item[schema.STREAM_SEQUENCE]
        assert abs(float(item[schema.NUMBERED_AT]) - time.time()) < DEADLINE_SECONDS
    assert len(messages) == len(fans)
    assert sorted(message[schema.FAN_ID] for message in messages) == sorted(fans)
    assert [m[schema.QUEUE_NUMBER] for m in messages] == numbers
    synthetic = {item[schema.FAN_ID]: item[schema.SYNTHETIC] for item in items}
    for message in messages:
        assert list(message) == list(schema.MESSAGE_FIELDS)
        item = numbered[message[schema.FAN_ID]]
        assert message[schema.QUEUE_NUMBER] == int(item[schema.QUEUE_NUMBER])
        assert message[schema.NUMBERED_AT] == float(item[schema.NUMBERED_AT])
        assert message[schema.SYNTHETIC] is synthetic[message[schema.FAN_ID]]
    assert forwarder_stats(aws)[1] == forwarded_before + len(fans)


POISONS = {
    "sale id a number": (
        {schema.SALE_ID: Decimal(42)},
        BadRecordReason.INVALID_SALE_ID,
    ),
    "sale id missing": ({schema.SALE_ID: None}, BadRecordReason.INVALID_SALE_ID),
    "sale id of the counters": (
        {schema.SALE_ID: schema.FORWARDER_STATS_KEY},
        BadRecordReason.INVALID_SALE_ID,
    ),
    "unknown sale": ({schema.SALE_ID: "no-such-sale"}, BadRecordReason.UNKNOWN_SALE),
    "oversized item": (
        {"padding": "x" * (MAX_FAN_ITEM_BYTES + 1)},
        BadRecordReason.OVERSIZED_ITEM,
    ),
    "client time a string": (
        {schema.CLIENT_TIME: "2027-01-01T10:00:00Z"},
        BadRecordReason.INVALID_CLIENT_TIME,
    ),
    "client time missing": (
        {schema.CLIENT_TIME: None},
        BadRecordReason.INVALID_CLIENT_TIME,
    ),
    "synthetic a string": (
        {schema.SYNTHETIC: "yes"},
        BadRecordReason.INVALID_SYNTHETIC,
    ),
}


def test_poison_records_dead_lettered(aws: Aws, sale: SaleConfig) -> None:
    good = [browser_item(sale.sale_id) for _ in range(len(POISONS) + 1)]
    poisons = {
        name: browser_item(**{schema.SALE_ID: sale.sale_id, **changes})
        for name, (changes, _) in POISONS.items()
    }
    # Each poison sits between two good fans, all in one BatchWriteItem.
    batch = [good[0]]
    for fan, poison in zip(good[1:], poisons.values(), strict=True):
        batch.extend([poison, fan])
    later = [browser_item(sale.sale_id) for _ in range(5)]
    bad_before, _ = forwarder_stats(aws)

    join(aws, batch)
    join(aws, later)
    numbered = wait_for_numbers(aws, [item[schema.FAN_ID] for item in good + later])

    assert [
        int(numbered[item[schema.FAN_ID]][schema.QUEUE_NUMBER]) for item in good
    ] == [*range(1, len(good) + 1)]
    assert [
        int(numbered[item[schema.FAN_ID]][schema.QUEUE_NUMBER]) for item in later
    ] == [*range(len(good) + 1, len(good) + len(later) + 1)]
    records = {
        record["dynamodb"]["Keys"][schema.FAN_ID]["S"]: record
        for record in stream_records_of(
            aws, {item[schema.FAN_ID] for item in poisons.values()}
        )
        if record["eventName"] == "INSERT"
    }
    letters = dead_letters(
        aws, {record["eventID"] for record in records.values()}, len(poisons)
    )
    for name, poison in poisons.items():
        fan = poison[schema.FAN_ID]
        record = records[fan]
        letter = letters[record["eventID"]]
        assert letter["reason"] == POISONS[name][1], name
        assert letter["sequence_number"] == record["dynamodb"]["SequenceNumber"], name
        assert letter[schema.FAN_ID] == fan, name
        assert fan in letter["keys"], name
        assert letter["detail"], name
        item = aws.queue_table.get_item(Key={schema.FAN_ID: fan}, ConsistentRead=True)
        assert schema.QUEUE_NUMBER not in item["Item"], name
    wait_until(
        lambda: forwarder_stats(aws)[0] == bad_before + len(poisons),
        f"bad_records reaching {bad_before + len(poisons)}",
    )
    messages = work_messages(aws, sale.sale_id, expected=len(good) + len(later))
    assert len(messages) == len(good) + len(later)


def test_malformed_records_never_fail_invocation(aws: Aws, sale: SaleConfig) -> None:
    numeric_key = stream_record(browser_item(sale.sale_id))
    numeric_key["dynamodb"]["Keys"] = {schema.FAN_ID: {"N": "7"}}
    no_image = stream_record(browser_item(sale.sale_id))
    del no_image["dynamodb"]["NewImage"]
    unknown_event = {**stream_record(browser_item(sale.sale_id)), "eventName": "UPSERT"}
    no_stream = {
        key: value
        for key, value in stream_record(browser_item(sale.sale_id)).items()
        if key != "dynamodb"
    }
    gone_fan = stream_record(browser_item(sale.sale_id))
    malformed = [numeric_key, no_image, unknown_event, no_stream]

    response = invoke(aws, ["INSERT", *malformed[:2], gone_fan, *malformed[2:]])

    assert response == {"batchItemFailures": []}
    letters = dead_letters(
        aws, {record["eventID"] for record in malformed}, len(malformed)
    )
    assert letters[numeric_key["eventID"]]["reason"] == BadRecordReason.INVALID_KEY
    for record in (no_image, unknown_event, no_stream):
        assert letters[record["eventID"]]["reason"] == BadRecordReason.MALFORMED
        assert json.loads(letters[record["eventID"]]["record"]) == record
    assert sale_counter(aws, sale.sale_id) == 0


def test_redelivered_records_take_no_number(aws: Aws, sale: SaleConfig) -> None:
    items = [browser_item(sale.sale_id) for _ in range(5)]
    fans = [item[schema.FAN_ID] for item in items]
    join(aws, items)
    numbered = wait_for_numbers(aws, fans)
    assert len(work_messages(aws, sale.sale_id, expected=len(fans))) == len(fans)
    records = stream_records_of(aws, set(fans))
    _, forwarded_before = forwarder_stats(aws)

    response = invoke(aws, records)

    assert response == {"batchItemFailures": []}
    assert {record["eventName"] for record in records} == {"INSERT", "MODIFY"}
    assert sale_counter(aws, sale.sale_id) == len(fans)
    assert wait_for_numbers(aws, fans) == numbered
    assert work_messages(aws, sale.sale_id) == []
    assert forwarder_stats(aws)[1] == forwarded_before


def test_modify_and_remove_skipped(aws: Aws, sale: SaleConfig) -> None:
    items = [browser_item(sale.sale_id) for _ in range(3)]
    fans = [item[schema.FAN_ID] for item in items]
    join(aws, items)
    before = wait_for_numbers(aws, fans)
    assert len(work_messages(aws, sale.sale_id, expected=len(fans))) == len(fans)

    aws.queue_table.update_item(
        Key={schema.FAN_ID: fans[0]},
        UpdateExpression="SET client_time = :now",
        ExpressionAttributeValues={":now": Decimal(int(time.time() * 1000))},
    )
    aws.queue_table.delete_item(Key={schema.FAN_ID: fans[1]})
    # The stream is read in order, so once a fan who joined after the change
    # is numbered, the MODIFY and REMOVE records were handled.
    sentinel = browser_item(sale.sale_id)
    join(aws, [sentinel])
    after = wait_for_numbers(aws, [fans[0], sentinel[schema.FAN_ID]])

    assert after[sentinel[schema.FAN_ID]][schema.QUEUE_NUMBER] == len(fans) + 1
    assert after[fans[0]][schema.QUEUE_NUMBER] == before[fans[0]][schema.QUEUE_NUMBER]
    assert (
        after[fans[0]][schema.STREAM_SEQUENCE]
        == before[fans[0]][schema.STREAM_SEQUENCE]
    )
    assert sale_counter(aws, sale.sale_id) == len(fans) + 1
    messages = work_messages(aws, sale.sale_id, expected=1)
    assert [message[schema.FAN_ID] for message in messages] == [sentinel[schema.FAN_ID]]


def test_client_written_server_attributes_replaced(aws: Aws, sale: SaleConfig) -> None:
    honest = [browser_item(sale.sale_id) for _ in range(3)]
    join(aws, honest)
    wait_for_numbers(aws, [item[schema.FAN_ID] for item in honest])
    cheater = browser_item(
        sale.sale_id,
        queue_number=1,
        status=schema.ADMITTED,
        purchase_url="https://tickets.example/buy?token=forged",
        window_id="w-1",
        admitted_at=Decimal(int(time.time())),
        expires_at=Decimal(int(time.time()) + 3600),
        order_id="forged-order",
    )

    join(aws, [cheater])
    item = wait_for_numbers(aws, [cheater[schema.FAN_ID]])[cheater[schema.FAN_ID]]

    assert item[schema.QUEUE_NUMBER] == len(honest) + 1
    assert item[schema.STATUS] == schema.WAITING
    for name in (
        schema.PURCHASE_URL,
        schema.WINDOW_ID,
        schema.ADMITTED_AT,
        schema.EXPIRES_AT,
        schema.ORDER_ID,
    ):
        assert name not in item
    messages = work_messages(aws, sale.sale_id, expected=len(honest) + 1)
    numbers = {m[schema.FAN_ID]: m[schema.QUEUE_NUMBER] for m in messages}
    assert numbers[cheater[schema.FAN_ID]] == len(honest) + 1


def _fan_of(kwargs: dict[str, Any]) -> str | None:
    return kwargs.get("Key", {}).get(schema.FAN_ID, {}).get("S")


def test_failed_records_retried_alone(
    aws: Aws, sale: SaleConfig, paused_stream: Callable[[], None]
) -> None:
    items = [browser_item(sale.sale_id) for _ in range(6)]
    fans = [item[schema.FAN_ID] for item in items]
    join(aws, items)
    records = [
        record
        for record in stream_records_of(aws, set(fans))
        if record["eventName"] == "INSERT"
    ]
    assert len(records) == len(fans)
    sequence = {
        record["dynamodb"]["Keys"][schema.FAN_ID]["S"]: record["dynamodb"][
            "SequenceNumber"
        ]
        for record in records
    }
    throttled, unsent = fans[1], fans[4]
    flaky = AwsClients(
        dynamodb=PartlyUnprocessedDynamoDB(aws.client, {throttled}),
        sqs=PartlyFailingSqs(aws.sqs, {unsent}),
    )

    first = forward_batch(records, aws.config, flaky)

    assert sorted(first.failed_sequence_numbers) == sorted(
        [sequence[throttled], sequence[unsent]]
    )
    assert first.forwarded == len(fans) - 2
    sent = work_messages(aws, sale.sale_id, expected=len(fans) - 2)
    assert {message[schema.FAN_ID] for message in sent} == set(fans) - {
        throttled,
        unsent,
    }
    item = aws.queue_table.get_item(Key={schema.FAN_ID: throttled})["Item"]
    assert schema.STREAM_SEQUENCE not in item

    second = forward_batch(records, aws.config, AwsClients(aws.client, aws.sqs))

    assert second.failed_sequence_numbers == []
    assert second.forwarded == 1
    # Every fan numbered a moment ago is sent again, and SQS drops the copies.
    assert second.resent == len(fans) - 1
    numbered = wait_for_numbers(aws, fans)
    assert numbered[throttled][schema.QUEUE_NUMBER] == len(fans) + 1
    assert sale_counter(aws, sale.sale_id) == len(fans) + 1
    retried = work_messages(aws, sale.sale_id, expected=2)
    assert {m[schema.FAN_ID]: m[schema.QUEUE_NUMBER] for m in retried} == {
        fan: int(numbered[fan][schema.QUEUE_NUMBER]) for fan in (throttled, unsent)
    }

    # The mapping now delivers the same records a third time.
    paused_stream()
    sentinel = browser_item(sale.sale_id)
    join(aws, [sentinel])
    number = wait_for_numbers(aws, [sentinel[schema.FAN_ID]])[sentinel[schema.FAN_ID]]

    assert number[schema.QUEUE_NUMBER] == len(fans) + 2
    assert wait_for_numbers(aws, fans) == numbered
    last = work_messages(aws, sale.sale_id, expected=1)
    assert [message[schema.FAN_ID] for message in last] == [sentinel[schema.FAN_ID]]


@pytest.mark.parametrize(
    ("operation", "code"),
    [("batch_get_item", "InternalServerError"), ("update_item", "ThrottlingException")],
    ids=["redelivery check", "counter"],
)
def test_failed_batch_call_retries_its_records(
    aws: Aws,
    sale: SaleConfig,
    paused_stream: Callable[[], None],
    operation: str,
    code: str,
) -> None:
    items = [browser_item(sale.sale_id) for _ in range(3)]
    fans = [item[schema.FAN_ID] for item in items]
    join(aws, items)
    records = stream_records_of(aws, set(fans))
    # The counter update is the one update_item without a fan's key.
    flaky = AwsClients(
        dynamodb=FlakyClient(
            aws.client,
            lambda name, kwargs: name == operation and _fan_of(kwargs) is None,
            code,
        ),
        sqs=aws.sqs,
    )

    first = forward_batch(records, aws.config, flaky)

    assert sorted(first.failed_sequence_numbers) == sorted(
        record["dynamodb"]["SequenceNumber"] for record in records
    )
    assert sale_counter(aws, sale.sale_id) == 0
    assert work_messages(aws, sale.sale_id) == []

    second = forward_batch(records, aws.config, AwsClients(aws.client, aws.sqs))

    assert second.failed_sequence_numbers == []
    numbered = wait_for_numbers(aws, fans)
    assert sorted(int(item[schema.QUEUE_NUMBER]) for item in numbered.values()) == [
        1,
        2,
        3,
    ]
    assert len(work_messages(aws, sale.sale_id, expected=3)) == 3
